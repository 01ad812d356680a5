"""Languages of the pages: Chinese first, English too; dates, numbers and masses as people read them.

The catalogues are the ``.po`` files in ``app/web/locale`` (kept in the repository); they are
compiled in memory the first time a language is used, so there is no build step to forget.
The language of the request being served sits in a context variable, set by the web middleware
from the ``lang`` cookie (Chinese when there is none).
"""

import gettext as _gettext_module
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from app.core.config import get_settings

LOCALE_DIR = Path(__file__).parent / "locale"
COOKIE = "lang"


@dataclass(frozen=True)
class Language:
    tag: str  # BCP 47, for <html lang> and the cookie
    locale: str  # Babel / gettext
    name: str  # in its own language, for the switch


LANGUAGES = (Language("zh-CN", "zh_CN", "中文"), Language("en", "en", "English"))
DEFAULT = LANGUAGES[0]
_BY_TAG = {lang.tag.lower(): lang for lang in LANGUAGES}

_current: ContextVar[Language] = ContextVar("language", default=DEFAULT)


def language_for(tag: str | None) -> Language:
    """The language a cookie value names; Chinese for anything else."""
    return _BY_TAG.get((tag or "").strip().lower(), DEFAULT)


def use(language: Language) -> Token[Language]:
    """Make ``language`` the current one (returns the token to reset it)."""
    return _current.set(language)


def reset(token: Token[Language]) -> None:
    _current.reset(token)


def current() -> Language:
    return _current.get()


@cache
def translations(locale: str) -> _gettext_module.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return _gettext_module.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
    buffer.seek(0)
    return _gettext_module.GNUTranslations(buffer)


def gettext(message: str) -> str:
    return translations(current().locale).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current().locale).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Marks a string for the catalogue without translating it yet (module-level tables)."""
    return message


# --- formatting ------------------------------------------------------------------------------


def _babel_locale() -> Locale:
    return Locale.parse(current().locale)


def zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def number(value: int | float | Decimal | None) -> str:
    """Grouped digits in the current language (``12,345``)."""
    if value is None:
        return "—"
    return format_decimal(value, locale=_babel_locale())


def datetime_(value: datetime | None, format: str = "medium") -> str:
    """A moment in the platform's time zone (setting ``CARBON_TIMEZONE``)."""
    if value is None:
        return "—"
    return _format_datetime(value, format, tzinfo=zone(), locale=_babel_locale())


def date_(value: date | datetime | None, format: str = "medium") -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(zone()).date()
    return _format_date(value, format, locale=_babel_locale())


def quantity(text: str | Decimal, unit: str) -> str:
    """A record's quantity as people read it: ``12.4 km``, ``1 item`` (``12.4000`` as stored)."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        return f"{text} {unit}"
    if not value.is_finite():
        return f"{text} {unit}"
    shown = number(value.normalize())
    one = value == 1
    if unit == "km":
        return gettext("%(value)s km") % {"value": shown}
    if unit == "item":
        return (gettext("%(value)s item") if one else gettext("%(value)s items")) % {"value": shown}
    if unit == "trip":
        return (gettext("%(value)s trip") if one else gettext("%(value)s trips")) % {"value": shown}
    return f"{shown} {unit}"


def tonnes(grams: int | None) -> str:
    """Grams as tonnes with three decimals (to the kilogram): ``1,234.568``."""
    if grams is None:
        return "—"
    return format_decimal(Decimal(grams) / 1_000_000, format="#,##0.000", locale=_babel_locale())


def mass(grams: int | None) -> str:
    """Grams as people read them: ``850 g``, ``12.3 kg``, ``4,567.89 t`` (units in the current language)."""
    if grams is None:
        return "—"
    locale = _babel_locale()
    if abs(grams) < 1_000:
        return gettext("%(value)s g") % {"value": format_decimal(grams, locale=locale)}
    if abs(grams) < 1_000_000:
        value = format_decimal(Decimal(grams) / 1_000, format="#,##0.#", locale=locale)
        return gettext("%(value)s kg") % {"value": value}
    value = format_decimal(Decimal(grams) / 1_000_000, format="#,##0.##", locale=locale)
    return gettext("%(value)s t") % {"value": value}
