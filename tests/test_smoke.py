"""The served app at a glance: ready, documented, and the foundation's routes in the OpenAPI document."""


async def test_health(client):
    r = await client.get("/healthz")
    assert r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"postgresql": "ok", "redis": "ok"}}


async def test_docs_and_openapi(client):
    r = await client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "Carbon points platform"
    foundation = {
        "/v1/auth/token": {"post"},
        "/v1/organizations": {"get", "post"},
        "/v1/organizations/{org_id}": {"get"},
        "/v1/organizations/{org_id}/approve": {"post"},
        "/v1/organizations/{org_id}/reject": {"post"},
        "/v1/organizations/{org_id}/suspend": {"post"},
        "/v1/organizations/{org_id}/reinstate": {"post"},
        "/v1/organizations/{org_id}/keys": {"get", "post"},
        "/v1/organizations/{org_id}/keys/{kid}": {"delete"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in foundation.items():
        assert set(spec["paths"][path]) == methods, path
        for method in methods:
            assert spec["paths"][path][method]["summary"], (method, path)
    token = spec["paths"]["/v1/auth/token"]["post"]
    assert {"400", "401", "403", "429"} <= set(token["responses"])
