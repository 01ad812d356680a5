"""Every string of the pages is in the catalogues, translated in Chinese and in English."""

from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "app" / "web" / "locale"


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def test_the_template_lists_every_string_of_the_code():
    """After changing a string: pybabel extract and update (docs/architecture.md, "Web pages")."""
    pot = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog(LOCALE / "messages.pot") if m.id}
    assert _extracted() == pot  # a plural by its singular, as extracted


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_string_is_translated(locale):
    catalog = _catalog(LOCALE / locale / "LC_MESSAGES" / "messages.po", locale)
    pot = {m.id for m in _catalog(LOCALE / "messages.pot") if m.id}
    entries = {m.id: m for m in catalog if m.id}
    assert set(entries) == pot
    assert [m.id for m in entries.values() if not m.string or m.fuzzy] == []
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert problems == []


def test_chinese_is_chinese():
    catalog = _catalog(LOCALE / "zh_CN" / "LC_MESSAGES" / "messages.po", "zh_CN")
    untranslated = [m.id for m in catalog if m.id and m.string == m.id]
    assert untranslated == []
