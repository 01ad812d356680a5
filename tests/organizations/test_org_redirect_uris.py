"""Operators register the exact redirect URIs of the authorization code flow (issue 14, step 1)."""

import pytest

from tests.factories import authority_token, bearer, make_operator, make_org


async def test_admin_registers_lists_and_removes(client):
    op = await make_operator(client)
    admin = bearer(op.extra["admin_token"])
    url = f"/v1/organizations/{op.id}/redirect-uris"
    r = await client.post(url, json={"uri": "https://app.example.cn/oauth/callback"}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["uri"] == "https://app.example.cn/oauth/callback"
    r = await client.post(url, json={"uri": "http://127.0.0.1:8765/cb"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.get(url, headers=admin)
    assert [u["uri"] for u in r.json()] == [
        "https://app.example.cn/oauth/callback",
        "http://127.0.0.1:8765/cb",
    ]
    authority = await authority_token(client)
    r = await client.get(url, headers=bearer(authority))  # authority-visible
    assert r.status_code == 200 and len(r.json()) == 2
    r = await client.post(url, json={"uri": "https://app.example.cn/oauth/callback"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "redirect_uri_exists"
    r = await client.delete(f"{url}/{created['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["uri"] == created["uri"]
    r = await client.delete(f"{url}/{created['id']}", headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "redirect_uri_not_found"
    assert [u["uri"] for u in (await client.get(url, headers=admin)).json()] == ["http://127.0.0.1:8765/cb"]


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example.cn/cb",  # http off loopback
        "https://*.example.cn/cb",  # wildcard
        "https://app.example.cn/cb#frag",
        "https://user@app.example.cn/cb",
        "https:///cb",
        "javascript:alert(1)//x",
        "ftp://app.example.cn/cb",
        "https://app.example.cn/c b",
        "https://app.example.cn:99999/cb",
        "https://app.example.cn\\@evil.example/cb",
    ],
)
async def test_unacceptable_uris_are_refused(client, uri):
    op = await make_operator(client)
    url = f"/v1/organizations/{op.id}/redirect-uris"
    r = await client.post(url, json={"uri": uri}, headers=bearer(op.extra["admin_token"]))
    assert r.status_code == 422, r.text
    assert r.json()["code"] in {"invalid_redirect_uri", "validation_error"}
    assert (await client.get(url, headers=bearer(op.extra["admin_token"]))).json() == []


async def test_only_the_operators_own_admin(client):
    op, other = await make_operator(client), await make_operator(client)
    url = f"/v1/organizations/{op.id}/redirect-uris"
    r = await client.post(
        url, json={"uri": "https://x.example.cn/cb"}, headers=bearer(other.extra["admin_token"])
    )
    assert r.status_code == 403 and r.json()["code"] == "not_your_organization"
    r = await client.get(url, headers=bearer(other.extra["admin_token"]))
    assert r.status_code == 403
    r = await client.post(url, json={"uri": "https://x.example.cn/cb"}, headers=op.headers)  # client token
    assert r.status_code == 403
    merchant = await make_org(client, "merchant")
    r = await client.post(
        f"/v1/organizations/{merchant.id}/redirect-uris",
        json={"uri": "https://x.example.cn/cb"},
        headers=merchant.headers,
    )
    assert r.status_code == 403 and r.json()["code"] == "not_an_operator"


async def test_production_refuses_loopback_http(client, monkeypatch):
    from app.core.config import get_settings

    op = await make_operator(client)
    monkeypatch.setattr(get_settings(), "environment", "production")
    r = await client.post(
        f"/v1/organizations/{op.id}/redirect-uris",
        json={"uri": "http://127.0.0.1:8765/cb"},
        headers=bearer(op.extra["admin_token"]),
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_redirect_uri"
