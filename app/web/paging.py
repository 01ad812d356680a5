"""Links of a page that lists by cursor: the URL of its next page and of its first."""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode


def url(path: str, params: Mapping[str, Any]) -> str:
    """``path`` with the parameters that have a value (None and "" left out)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def links(
    path: str, params: Mapping[str, Any], next_cursor: str | None, cursor: str | None, key: str = "cursor"
) -> dict[str, str | None]:
    """``next_url`` (when there is a next page) and ``first_url`` (when this page is not the first), keeping the
    list's own parameters: what the pager (``web/includes/pager.html``) takes. ``key``: the cursor's parameter
    (a page with two lists pages each by its own)."""
    return {
        "next_url": url(path, {**params, key: next_cursor}) if next_cursor else None,
        "first_url": url(path, params) if cursor else None,
    }
