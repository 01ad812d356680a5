"""The SDK's webhook verification (``carbon_operator.webhooks``) and the example receiver in ``operators/``."""

import importlib.util
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from carbon_operator import webhooks

from app.webhooks import signing

NOW = 1_767_225_600
SECRET, OLD = "whsec_current", "whsec_previous"
BODY = json.dumps(
    {
        "id": "0190f7c2-6b1e-7c3a-9a52-3f7d1b2c4e5f",
        "type": "order.redeemed",
        "created_at": "2026-01-01T00:00:00Z",
        "subject": {"type": "mall_order", "id": "3c1d"},
        "data": {"order_id": "3c1d", "points": 120},
    },
    separators=(",", ":"),
).encode()


def header(body: bytes = BODY, secrets: tuple[str, ...] = (SECRET,), t: int = NOW) -> str:
    return signing.signature(body, list(secrets), t)  # the platform's own signing code


class TestVerify:
    def test_the_platforms_signature_verifies_into_a_typed_event(self):
        event = webhooks.verify(BODY, header(), [SECRET], now=NOW + 10)
        assert event == webhooks.Event(
            id="0190f7c2-6b1e-7c3a-9a52-3f7d1b2c4e5f",
            type="order.redeemed",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            subject=webhooks.Subject("mall_order", "3c1d"),
            data={"order_id": "3c1d", "points": 120},
        )
        assert event.known is True

    def test_during_a_rotation_either_secret_verifies(self):
        both = header(secrets=(SECRET, OLD))
        assert both.count("v1=") == 2
        assert webhooks.verify(BODY, both, [OLD], now=NOW).id == "0190f7c2-6b1e-7c3a-9a52-3f7d1b2c4e5f"
        assert webhooks.verify(BODY, header(), ["whsec_other", SECRET], now=NOW).type == "order.redeemed"

    @pytest.mark.parametrize(
        ("body", "value", "secrets", "now", "code"),
        [
            (BODY.replace(b"120", b"121"), header(), [SECRET], NOW, "bad_signature"),
            (BODY, header(), ["whsec_wrong"], NOW, "bad_signature"),
            (BODY, header().replace(f"t={NOW}", f"t={NOW + 1}"), [SECRET], NOW, "bad_signature"),
            (BODY, header(), [SECRET], NOW + 301, "timestamp_out_of_tolerance"),
            (BODY, header(), [SECRET], NOW - 301, "timestamp_out_of_tolerance"),
            (BODY, "", [SECRET], NOW, "malformed_header"),
            (BODY, f"t={NOW}", [SECRET], NOW, "malformed_header"),
            (BODY, "v1=abc", [SECRET], NOW, "malformed_header"),
            (BODY, f"t=-{NOW},v1=abc", [SECRET], NOW, "malformed_header"),
            (BODY, f"t={NOW},t={NOW},v1=abc", [SECRET], NOW, "malformed_header"),
            (BODY, f"t={NOW},v1", [SECRET], NOW, "malformed_header"),
            (b"[1]", header(b"[1]"), [SECRET], NOW, "malformed_body"),
            (b"not json", header(b"not json"), [SECRET], NOW, "malformed_body"),
        ],
    )
    def test_refusals_say_why(self, body, value, secrets, now, code):
        with pytest.raises(webhooks.WebhookVerificationError) as refused:
            webhooks.verify(body, value, secrets, now=now)
        assert refused.value.code == code

    def test_the_window_is_inclusive_and_adjustable(self):
        assert webhooks.verify(BODY, header(), [SECRET], now=NOW + 300).type == "order.redeemed"
        with pytest.raises(webhooks.WebhookVerificationError):
            webhooks.verify(BODY, header(), [SECRET], tolerance=60, now=NOW + 61)

    def test_unknown_schemes_are_ignored_and_no_secret_is_an_error(self):
        assert webhooks.verify(BODY, header() + ",v0=legacy", [SECRET], now=NOW).subject.id == "3c1d"
        with pytest.raises(ValueError, match="at least one secret"):
            webhooks.verify(BODY, header(), [], now=NOW)

    def test_a_newer_type_is_parsed_but_not_known(self):
        body = BODY.replace(b"order.redeemed", b"order.refunded")
        assert webhooks.verify(body, header(body), [SECRET], now=NOW).known is False

    def test_the_sdk_lists_the_platforms_catalogue(self):
        from app.webhooks.service import EVENT_TYPES

        assert set(EVENT_TYPES) <= webhooks.EVENT_TYPES | {"webhook_subscription.disabled"}


def _example():
    path = Path(__file__).resolve().parents[2] / "operators" / "examples" / "webhook_receiver.py"
    spec = importlib.util.spec_from_file_location("webhook_receiver_example", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_receiver_verifies_and_handles_an_event_once(capsys):
    server = _example().serve(0, [SECRET])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        signed = {
            webhooks.SIGNATURE_HEADER: signing.signature(BODY, [SECRET], int(datetime.now(UTC).timestamp()))
        }
        first = httpx.post(url, content=BODY, headers=signed)
        again = httpx.post(url, content=BODY, headers=signed)
        tampered = httpx.post(url, content=BODY.replace(b"120", b"999"), headers=signed)
        unsigned = httpx.post(url, content=BODY)
    finally:
        server.shutdown()
        server.server_close()
    assert [(r.status_code, r.text) for r in (first, again, tampered, unsigned)] == [
        (200, "handled"),
        (200, "already handled"),
        (400, "bad_signature"),
        (400, "malformed_header"),
    ]
    assert (
        capsys.readouterr().out
        == 'event order.redeemed mall_order 3c1d {"order_id": "3c1d", "points": 120}\n'
    )
