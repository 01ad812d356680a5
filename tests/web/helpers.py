"""Helpers of the web tests: a browser-like client, the CSRF token of a page, a signed-in staff account."""

import os
import re
import uuid

import httpx

from app.core import db
from app.organizations import service as org_service
from tests.factories import PASSWORD, unique

# The languages the browser walks take: Chinese always; English too with CARBON_SHOTS=1 or
# CARBON_BROWSER_LANGUAGES=all (the in-process page tests and the catalogue test cover English in every run).
LANGUAGES: tuple[tuple[str, str | None], ...] = (
    (("zh", None), ("en", "English"))
    if os.environ.get("CARBON_SHOTS") == "1" or os.environ.get("CARBON_BROWSER_LANGUAGES") == "all"
    else (("zh", None),)
)

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def page_token(client: httpx.AsyncClient, path: str = "/") -> str:
    r = await client.get(path, headers=HTML)
    assert r.status_code == 200, r.text
    return csrf_token(r.text)


async def make_authority_account() -> str:
    username = unique("authority")
    async with db.session_scope() as session:
        await org_service.create_staff_user(session, username, PASSWORD, "authority")
    return username


async def make_org_staff(org_id: str) -> str:
    username = unique("staff")
    async with db.session_scope() as session:
        await org_service.create_staff_user(session, username, PASSWORD, "org", uuid.UUID(org_id))
    return username


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, next: str = "/"
) -> httpx.Response:
    token = await page_token(client, "/sign-in")
    return await client.post(
        "/sign-in",
        data={"csrf_token": token, "username": username, "password": password, "next": next},
        headers=HTML,
    )
