"""The public disclosure lists: one page of a list as a table with cursor paging, or the whole list as CSV.

A domain's page names its columns and passes the service function that gives a page of the list
(the one the JSON route calls); :func:`respond` reads ``cursor`` and ``format`` from the query,
calls it, and renders the domain's template (which extends ``public/disclosure.html``) or answers
``text/csv`` with every row (``?format=csv``, at most :data:`CSV_MAX_ROWS`). A refusal of the service
(a filter it does not accept, a forged cursor) re-renders the page with the message beside the form.
"""

import csv
import io
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.responses import Response

from app.core.errors import DomainError
from app.core.pagination import InvalidCursor
from app.web import paging
from app.web.i18n import gettext
from app.web.templating import render

PAGE_SIZE = 20
CSV_PAGE = 200
CSV_MAX_ROWS = 20_000

Fetch = Callable[[str | None, int], Awaitable[Any]]  # (cursor, limit) → a Page or {"items", "next_cursor"}


@dataclass(frozen=True)
class Column:
    """A column: its heading, the cell the page shows, and the value the CSV gets (the cell when None)."""

    label: str
    cell: Callable[[Any], Any]
    raw: Callable[[Any], Any] | None = None


@dataclass
class Listing:
    """What a list page shows besides its rows: title, the CSV file name, the filters and their refusals."""

    title: str
    csv_name: str
    filters: Mapping[str, str | None] = field(default_factory=dict)
    refusals: Mapping[type[DomainError], tuple[str, str]] = field(
        default_factory=dict
    )  # error → (filter, message)
    extra: dict[str, Any] = field(default_factory=dict)


def _split(result: Any) -> tuple[Sequence[Any], str | None]:
    if isinstance(result, Mapping):
        return result["items"], result["next_cursor"]
    return result.items, result.next_cursor


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    """A cell as text a spreadsheet will not run (a leading ``=`` ``+`` ``-`` ``@`` gets a quote), numbers kept."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def csv_response(filename: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Response:
    """UTF-8 CSV with a byte-order mark, so spreadsheet programs read the Chinese right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[_csv_value(v) for v in row] for row in rows])
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def respond(
    request: Request, template: str, columns: Sequence[Column], fetch: Fetch, listing: Listing
) -> Response:
    cursor = request.query_params.get("cursor") or None
    if request.query_params.get("format") == "csv":
        items: list[Any] = []
        next_cursor: str | None = None
        try:
            while True:
                chunk, next_cursor = _split(await fetch(next_cursor, CSV_PAGE))
                items.extend(chunk)
                if next_cursor is None or len(items) >= CSV_MAX_ROWS:
                    break
        except DomainError as exc:
            return await _refused(request, template, columns, listing, exc)
        rows = [[(c.raw or c.cell)(item) for c in columns] for item in items[:CSV_MAX_ROWS]]
        return csv_response(listing.csv_name, [c.label for c in columns], rows)
    try:
        page_items, next_cursor = _split(await fetch(cursor, PAGE_SIZE))
    except DomainError as exc:
        return await _refused(request, template, columns, listing, exc)
    path = request.url.path
    return render(
        request,
        template,
        {
            "title": listing.title,
            "headers": [c.label for c in columns],
            "rows": [[c.cell(item) for c in columns] for item in page_items],
            "items": page_items,
            "filters": listing.filters,
            "errors": {},
            **paging.links(path, listing.filters, next_cursor, cursor),
            "csv_url": paging.url(path, {**listing.filters, "format": "csv"}),
            **listing.extra,
        },
    )


async def _refused(
    request: Request, template: str, columns: Sequence[Column], listing: Listing, exc: DomainError
) -> Response:
    if isinstance(exc, InvalidCursor):
        where, message = (
            "cursor",
            gettext("That page link is not valid (it may be out of date). Start from the first page."),
        )
    else:
        refusal = next((r for kind, r in listing.refusals.items() if isinstance(exc, kind)), None)
        if refusal is None:
            raise exc
        where, message = refusal[0], gettext(refusal[1])
    return render(
        request,
        template,
        {
            "title": listing.title,
            "headers": [c.label for c in columns],
            "rows": [],
            "items": [],
            "filters": listing.filters,
            "errors": {where: message},
            "next_url": None,
            "first_url": paging.url(request.url.path, listing.filters),
            "csv_url": paging.url(request.url.path, {**listing.filters, "format": "csv"}),
            **listing.extra,
        },
        status_code=400,
    )
