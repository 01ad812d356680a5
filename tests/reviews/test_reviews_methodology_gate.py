"""A methodology version is published only after its expert panel passed (SZ 12–13)."""

from tests.factories import authority_token
from tests.factories_methodologies import act, submitted
from tests.factories_scenes import pass_review


class TestMethodologyGate:
    async def test_publishing_needs_a_passed_review(self, client):
        authority = await authority_token(client)
        version = await submitted(client, authority)
        r = await act(client, authority, "methodologies", version["id"], "publish")
        assert (r.status_code, r.json()["code"]) == (409, "review_not_passed")

        await pass_review(client, authority, "methodology_version", version["id"], outcome="fail")
        r = await act(client, authority, "methodologies", version["id"], "publish")
        assert (r.status_code, r.json()["code"]) == (409, "review_not_passed")
        assert "failed" in r.json()["detail"]

        await pass_review(client, authority, "methodology_version", version["id"])
        r = await act(client, authority, "methodologies", version["id"], "publish")
        assert (r.status_code, r.json()["status"]) == (200, "published")
