"""The SDK's and the CLI's view of the batches sent: list_batches(), get_batch(), rejected_csv() and
``carbon-operator batches``, against a scripted platform."""

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.operators_sdk.test_sdk_client import Scripted, make_client, sleeps  # noqa: F401  (fixtures)

BATCH = {
    "id": "b-1",
    "received_at": "2026-11-30T10:00:00+08:00",
    "kid": "k1",
    "body_sha256": "0" * 64,
    "records": 3,
    "accepted": 1,
    "duplicate": 0,
    "rejected": 2,
}
DETAIL = {
    **BATCH,
    "reject_codes": [{"code": "not_entrusted", "count": 2}],
    "results": {
        "items": [
            {
                "index": 1,
                "record_id": "r-2",
                "external_user_id": "u-9",
                "behaviour_type": "metro",
                "occurred_at": "2026-11-30T08:00:00+08:00",
                "status": "rejected",
                "code": "not_entrusted",
                "message": "no entrustment",
                "reduction_g": 0,
                "points": 0,
            }
        ],
        "next_cursor": None,
    },
}


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


class TestClient:
    async def test_list_batches_sends_the_filters_and_types_the_page(self, make_client):
        transport = Scripted(httpx.Response(200, json={"items": [BATCH], "next_cursor": "c2"}))
        async with make_client(transport) as client:
            page = await client.list_batches(
                received_from="2026-11-01T00:00:00+08:00", has_rejections=True, limit=10, cursor="c1"
            )
        assert (page.items[0].id, page.items[0].rejected, page.next_cursor) == ("b-1", 2, "c2")
        (request,) = transport.requests
        assert urlsplit(str(request.url)).path == "/v1/operator/behaviour-batches"
        assert query(request) == {
            "limit": "10",
            "received_from": "2026-11-01T00:00:00+08:00",
            "has_rejections": "true",
            "cursor": "c1",
        }

    async def test_get_batch_and_its_rejected_records_as_csv(self, make_client):
        csv_text = "\ufeffrecord_id,external_user_id,behaviour_type,occurred_at,code,message\r\n"
        transport = Scripted(httpx.Response(200, json=DETAIL), httpx.Response(200, text=csv_text))
        async with make_client(transport) as client:
            detail = await client.get_batch("b-1", status="rejected")
            text = await client.rejected_csv("b-1")
        assert [(r.record_id, r.code) for r in detail.results.items] == [("r-2", "not_entrusted")]
        assert [(c.code, c.count) for c in detail.reject_codes] == [("not_entrusted", 2)]
        assert text == csv_text.removeprefix("\ufeff")
        first, second = transport.requests
        assert (urlsplit(str(first.url)).path, query(first)) == (
            "/v1/operator/behaviour-batches/b-1",
            {"limit": "100", "status": "rejected"},
        )
        assert query(second) == {"format": "csv"}
