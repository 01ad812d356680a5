"""The one Jinja2 environment of the pages, and :func:`render`.

Templates live in a folder per domain and are named by it: ``app/public/templates/public/home.html``
is ``public/home.html``; the shared layout and includes are ``web/...`` in ``app/web/templates``.
Autoescaping is on for every template. A partial for htmx is a block of the full page's template
rendered alone (``render(..., block="results")``), so each page has one template.
"""

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2_fragments import render_block

from app.core.config import get_settings
from app.web import i18n, portals
from app.web.audit_labels import audit_action, audit_subject
from app.web.badges import status_badge

APP_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"


def _template_dirs() -> list[str]:
    """``app/web/templates`` first, then every domain's ``templates`` folder."""
    shared = APP_DIR / "web" / "templates"
    domains = sorted(p for p in APP_DIR.glob("*/templates") if p.is_dir() and p != shared)
    return [str(shared), *map(str, domains)]


@cache
def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>``: the URL changes with the file, so it can be cached for a year."""
    file = (STATIC_DIR / path).resolve()
    if not file.is_relative_to(STATIC_DIR) or not file.is_file():
        raise ValueError(f"no static file {path!r}")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{path}?v={digest}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_template_dirs()),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        number=i18n.number,
        datetime=i18n.datetime_,
        date=i18n.date_,
        mass=i18n.mass,
        tonnes=i18n.tonnes,
        audit_action=audit_action,
        audit_subject=audit_subject,
    )
    env.globals.update(
        static=static_url, languages=i18n.LANGUAGES, status_badge=status_badge, portal_of=portals.portal
    )
    return env


environment = _environment()


def context(request: Request, values: dict[str, Any]) -> dict[str, Any]:
    """What every template may use, besides the page's own ``values``."""
    from app.web import csrf

    web = getattr(request.state, "web", None)
    return {
        "request": request,
        "path": request.url.path,
        "language": i18n.current(),
        "viewer": web.viewer if web else None,
        "csrf_token": csrf.token(request),
        "request_id": getattr(request.state, "request_id", None),
        "timezone": get_settings().timezone,
        **values,
    }


def render(
    request: Request,
    template: str,
    values: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The page (or one ``block`` of it, for htmx) as an HTML response."""
    ctx = context(request, values or {})
    if block:
        html = render_block(environment, template, block, ctx)
    else:
        html = environment.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
