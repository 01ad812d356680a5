async def test_health(client):
    r = await client.get("/healthz")
    assert r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"postgresql": "ok", "redis": "ok"}}
