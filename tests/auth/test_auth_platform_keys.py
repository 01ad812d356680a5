"""The platform's signing keys rotate without logging anyone out."""

import sqlalchemy as sa

from app.auth import keys
from app.core import db, security
from tests.factories import authority_token, bearer


async def rotate() -> str:
    async with db.session_scope() as session:
        return await keys.rotate(session)


class TestRotation:
    async def test_old_tokens_keep_working_new_tokens_carry_the_new_kid(self, client):
        before = await authority_token(client)
        old_kid = security.unverified_header(before)["kid"]

        new_kid = await rotate()
        assert new_kid != old_kid
        assert keys.active().kid == new_kid

        r = await client.get("/v1/organizations?limit=1", headers=bearer(before))
        assert r.status_code == 200, r.text

        after = await authority_token(client)
        assert security.unverified_header(after)["kid"] == new_kid
        assert security.unverified_header(after)["alg"] == "ES256"
        r = await client.get("/v1/organizations?limit=1", headers=bearer(after))
        assert r.status_code == 200, r.text

        r = await client.get("/.well-known/jwks.json")
        assert r.status_code == 200
        published = {k["kid"]: k for k in r.json()["keys"]}
        assert {old_kid, new_kid} <= set(published)
        assert published[new_kid]["alg"] == "ES256"
        assert published[new_kid]["use"] == "sig"
        assert set(published[new_kid]) == {"kty", "crv", "x", "y", "kid", "alg", "use"}

    async def test_only_one_key_signs(self, client):
        await rotate()
        await rotate()
        async with db.session_scope() as session:
            active = (
                (
                    await session.execute(
                        sa.text("SELECT kid FROM platform_signing_keys WHERE retired_at IS NULL")
                    )
                )
                .scalars()
                .all()
            )
        assert active == [keys.active().kid]

    async def test_a_key_rotated_by_another_process_is_picked_up(self, client, monkeypatch):
        """Another process rotated: this one learns the new kid from the first token that carries it."""
        claims = security.unverified_claims(await authority_token(client))
        new_kid = await rotate()
        async with db.session_scope() as session:
            row = (
                await session.execute(
                    sa.text("SELECT algorithm, private_pem FROM platform_signing_keys WHERE kid = :k"),
                    {"k": new_kid},
                )
            ).one()
        keys._keys.pop(new_kid)  # as if the rotation happened in another process
        monkeypatch.setattr(keys, "_loaded_at", 0.0)
        token = security.sign_jwt(
            {k: claims[k] for k in ("iss", "sub", "typ", "role", "exp")},
            security.SigningKey(new_kid, row.algorithm, row.private_pem, {}),
        )
        r = await client.get("/v1/organizations?limit=1", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert keys.active().kid == new_kid

    async def test_token_with_an_unknown_kid(self, client):
        claims = security.unverified_claims(await authority_token(client))
        token = security.sign_jwt(
            claims, security.SigningKey("unknown", "ES256", security.generate_es256_pem(), {})
        )
        r = await client.get("/v1/organizations?limit=1", headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["code"] == "invalid_token"
        assert r.json()["detail"] == "unknown signing key"
