"""A methodology version is published only after its expert panel passed (SZ 12–13)."""

from tests.factories import authority_token, bearer
from tests.factories_methodologies import submitted
from tests.factories_scenes import pass_review


async def publish(client, authority: str, version_id: str):
    return await client.post(f"/v1/methodologies/{version_id}/publish", headers=bearer(authority))


class TestMethodologyGate:
    async def test_publishing_needs_a_passed_review(self, client):
        authority = await authority_token(client)
        version = await submitted(client, authority)
        r = await publish(client, authority, version["id"])
        assert (r.status_code, r.json()["code"]) == (409, "review_not_passed")

        await pass_review(client, authority, "methodology_version", version["id"], outcome="fail")
        r = await publish(client, authority, version["id"])
        assert (r.status_code, r.json()["code"]) == (409, "review_not_passed")
        assert "failed" in r.json()["detail"]

        await pass_review(client, authority, "methodology_version", version["id"])
        r = await publish(client, authority, version["id"])
        assert (r.status_code, r.json()["status"]) == (200, "published")
