"""The SDK's and the CLI's view of the batches sent: list_batches(), get_batch(), rejected_csv() and
``carbon-operator batches``, against a scripted platform."""

import json
from urllib.parse import parse_qs, urlsplit

import httpx
from carbon_operator.cli import app
from typer.testing import CliRunner

from tests.operators_sdk.test_sdk_client import Scripted, make_client, sleeps  # noqa: F401  (fixtures)

BASE = "http://platform.test"
CLEAN_ENV = {"CARBON_BASE_URL": None, "CARBON_CLIENT_ID": None, "CARBON_OPERATOR_KEY": None}

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
    async def test_list_batches_sends_the_filters_and_types_the_page(self, make_client):  # noqa: F811
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

    async def test_get_batch_and_its_rejected_records_as_csv(self, make_client):  # noqa: F811
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


class TestCommand:
    """``carbon-operator batches`` run as an engineer runs it, against a scripted platform."""

    def run(self, tmp_path, operator_key, client_id, transport: Scripted, *args: str):
        key = operator_key.save(tmp_path / "k.pem", overwrite=True)

        async def no_sleep(_: float) -> None:
            return None

        return CliRunner(env=CLEAN_ENV).invoke(
            app,
            ["--base-url", BASE, "--client-id", client_id, "--key", str(key), "batches", *args],
            obj={"transport": httpx.MockTransport(transport), "sleep": no_sleep},
        )

    def test_lists_the_batches_sent(self, tmp_path, operator_key, client_id):
        transport = Scripted(httpx.Response(200, json={"items": [BATCH], "next_cursor": None}))
        result = self.run(tmp_path, operator_key, client_id, transport, "--with-rejections", "--limit", "5")
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            "b-1  2026-11-30T10:00:00+08:00  records 3  accepted 1  duplicate 0  rejected 2\n"
        )
        (request,) = transport.requests
        assert query(request) == {"limit": "5", "has_rejections": "true"}

    def test_shows_one_batch_and_writes_its_rejected_records(self, tmp_path, operator_key, client_id):
        csv_text = "\ufeffrecord_id,external_user_id,behaviour_type,occurred_at,code,message\r\n"
        transport = Scripted(httpx.Response(200, json=DETAIL), httpx.Response(200, text=csv_text))
        shown = self.run(tmp_path, operator_key, client_id, transport, "b-1", "--rejected")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["reject_codes"] == [{"code": "not_entrusted", "count": 2}]
        out = tmp_path / "rejected.csv"
        written = self.run(tmp_path, operator_key, client_id, transport, "b-1", "--csv", str(out))
        assert written.exit_code == 0, written.output
        assert written.stdout == f"rejected records written to {out}\n"
        assert out.read_bytes().decode("utf-8") == csv_text.removeprefix("\ufeff")
        first, second = transport.requests
        assert (urlsplit(str(first.url)).path, query(first)) == (
            "/v1/operator/behaviour-batches/b-1",
            {"limit": "50", "status": "rejected"},
        )
        assert query(second) == {"format": "csv"}

    def test_a_batch_of_another_operator_is_reported_with_its_code(self, tmp_path, operator_key, client_id):
        problem = {"type": "about:blank", "title": "Not found", "status": 404, "code": "batch_not_found"}
        transport = Scripted(
            httpx.Response(404, json=problem, headers={"content-type": "application/problem+json"})
        )
        result = self.run(tmp_path, operator_key, client_id, transport, "b-2")
        assert result.exit_code == 1
        assert "batch_not_found" in result.stderr
