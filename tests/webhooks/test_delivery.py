"""The delivery worker against a real HTTP server on loopback: signed posts after commit, retries with the same
event id, per-subject order, a slow endpoint beside a fast one, disabling, redelivery, SSRF refusals."""

import asyncio
import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from carbon_operator import webhooks as sdk

from app.core import audit, clock, db
from app.core.config import get_settings
from app.webhooks import delivery, service
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from tests.factories import assert_problem, bearer, make_org

SECRET = "whsec_test-secret-for-delivery"


class Receiver:
    """An HTTP server on a free loopback port: answers each POST with the next planned status (200 once the
    plan is used up), after ``delay`` seconds; keeps what it received. ``by_event`` plans the answers to one
    event's posts (by ``Carbon-Event-Id``) whatever order concurrent posts arrive in."""

    def __init__(self, plan: list[int] | None = None, delay: float = 0.0) -> None:
        self.plan, self.delay, self.received = list(plan or []), delay, []
        self.by_event: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                    planned = receiver.by_event.get(self.headers["Carbon-Event-Id"]) or receiver.plan
                    code = planned.pop(0) if planned else 200
                time.sleep(receiver.delay)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"upstream down " * 600)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self) -> list[str]:
        return [headers["Carbon-Event-Id"] for headers, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(plan: list[int] | None = None, delay: float = 0.0) -> Receiver:
        made.append(Receiver(plan, delay))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
async def worker():
    w = delivery.Worker()
    yield w
    await w.close()


@pytest.fixture
def moved_clock():
    def move(delta: timedelta) -> None:
        clock.set_offset(delta)

    yield move
    clock.set_offset(timedelta(0))


async def subscribe(org_id: str, url: str, types: tuple[str, ...] = ("order.redeemed",)) -> uuid.UUID:
    now = clock.now()
    sub = WebhookSubscription(
        org_id=uuid.UUID(org_id),
        url=url,
        event_types=list(types),
        secret_sealed=service.seal_secret(SECRET),
        created_at=now,
        updated_at=now,
    )
    async with db.session_scope() as session:
        session.add(sub)
    return sub.id


async def emit(org_id: str, subject: str = "order-1", kind: str = "order.redeemed") -> uuid.UUID:
    async with db.session_scope() as session:
        return await service.emit(
            session,
            org_id=uuid.UUID(org_id),
            type=kind,
            subject_type="mall_order",
            subject_id=subject,
            payload={"order_id": subject, "points": 120},
        )


async def deliveries(subscription_id: uuid.UUID) -> list[WebhookDelivery]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)  # type: ignore[arg-type]
            .order_by(WebhookDelivery.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def attempts(delivery_id: int | None) -> list[WebhookAttempt]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)  # type: ignore[arg-type]
            .order_by(WebhookAttempt.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def subscription(subscription_id: uuid.UUID) -> WebhookSubscription:
    async with db.session_scope() as session:
        found = await session.get(WebhookSubscription, subscription_id)
        assert found is not None
        return found


class TestDelivered:
    async def test_after_commit_signed_and_verified_by_the_sdk(self, client, authority, receivers, worker):
        org = await make_org(client, "merchant", authority=authority)
        r = receivers()
        sub = await subscribe(org.id, r.url)
        event_id = await emit(org.id)

        await worker.run_once()

        assert r.ids() == [str(event_id)]
        headers, body = r.received[0]
        assert headers["Carbon-Event-Type"] == "order.redeemed"
        assert headers["Content-Type"] == "application/json"
        event = sdk.verify(body, headers["Carbon-Signature"], [SECRET])
        assert (event.id, event.type, event.subject, event.data, event.known) == (
            str(event_id),
            "order.redeemed",
            sdk.Subject("mall_order", "order-1"),
            {"order_id": "order-1", "points": 120},
            True,
        )
        with pytest.raises(sdk.WebhookVerificationError) as refused:
            sdk.verify(body.replace(b"120", b"999"), headers["Carbon-Signature"], [SECRET])
        assert refused.value.code == "bad_signature"
        with pytest.raises(sdk.WebhookVerificationError) as late:
            sdk.verify(body, headers["Carbon-Signature"], [SECRET], now=time.time() + 301)
        assert late.value.code == "timestamp_out_of_tolerance"
        [d] = await deliveries(sub)
        assert (d.status, d.attempts, d.delivered_at is not None) == ("delivered", 1, True)
        [a] = await attempts(d.id)
        assert (a.status_code, a.error, a.response_excerpt) == (200, None, "ok")

    async def test_never_for_a_rolled_back_change(self, client, authority, receivers, worker):
        org = await make_org(client, "merchant", authority=authority)
        r = receivers()
        sub = await subscribe(org.id, r.url)

        with pytest.raises(RuntimeError):
            async with db.session_scope() as session:
                await service.emit(
                    session,
                    org_id=uuid.UUID(org.id),
                    type="order.redeemed",
                    subject_type="mall_order",
                    subject_id="rolled-back",
                    payload={},
                )
                raise RuntimeError("the change fails after the event was written")
        await worker.run_once()

        assert (r.received, await deliveries(sub)) == ([], [])

    async def test_fails_three_times_then_succeeds_with_the_same_event_id(
        self, client, authority, receivers, worker, moved_clock
    ):
        org = await make_org(client, "merchant", authority=authority)
        r = receivers([500, 502, 503])
        sub = await subscribe(org.id, r.url)
        event_id = await emit(org.id)

        await worker.run_once()
        for hours in (1, 2, 3):
            [d] = await deliveries(sub)
            assert (d.status, d.next_attempt_at > clock.now()) == ("pending", True)
            moved_clock(timedelta(hours=hours))  # past the longest jitter of the attempt's delay
            await worker.run_once()

        assert r.ids() == [str(event_id)] * 4
        [d] = await deliveries(sub)
        assert (d.status, d.attempts) == ("delivered", 4)
        history = await attempts(d.id)
        assert [(a.status_code, a.error) for a in history] == [
            (500, "HTTP 500"),
            (502, "HTTP 502"),
            (503, "HTTP 503"),
            (200, None),
        ]
        assert history[0].response_excerpt == ("upstream down " * 600)[:500]
        assert (await subscription(sub)).failing_since is None

    async def test_events_of_one_subject_in_order(self, client, authority, receivers, worker, moved_clock):
        org = await make_org(client, "merchant", authority=authority)
        r = receivers()
        await subscribe(org.id, r.url, ("order.created", "order.redeemed"))
        first = await emit(org.id, "order-9", "order.created")
        second = await emit(org.id, "order-9", "order.redeemed")
        other = await emit(org.id, "order-10", "order.created")
        r.by_event[str(first)] = [
            500
        ]  # the first and the other order's are posted at once: either may land first

        await worker.run_once()  # the first fails: the second waits behind it, another order does not
        assert sorted(r.ids()) == sorted([str(first), str(other)])
        moved_clock(timedelta(hours=1))
        await worker.run_once()
        await worker.run_once()

        assert [i for i in r.ids() if i != str(other)] == [str(first), str(first), str(second)]


class TestIsolation:
    async def test_a_slow_endpoint_does_not_delay_another(self, client, authority, receivers, worker):
        slow_org = await make_org(client, "merchant", authority=authority)
        fast_org = await make_org(client, "merchant", authority=authority)
        slow, fast = receivers(delay=2.0), receivers()
        slow_sub = await subscribe(slow_org.id, slow.url)
        fast_sub = await subscribe(fast_org.id, fast.url)
        await emit(slow_org.id)
        await emit(fast_org.id)

        started = time.monotonic()
        await worker.run_once(wait=False)
        while (await deliveries(fast_sub))[0].status != "delivered":
            assert time.monotonic() - started < 1.5, "the fast endpoint waited for the slow one"
            await asyncio.sleep(0.02)
        assert [d.status for d in await deliveries(slow_sub)] == ["pending"]
        assert worker.inflight == {slow_sub: 1}
        while (
            not slow.received
        ):  # its post is on its way (on a busy machine it may land after the fast one's answer)
            assert time.monotonic() - started < 10, "the slow endpoint's post never arrived"
            await asyncio.sleep(0.02)
        await worker.run_once(wait=False)  # the busy subscription gets nothing more meanwhile
        assert len(slow.received) == 1

        await worker.close()
        assert [d.status for d in await deliveries(slow_sub)] == ["delivered"]
        assert worker.inflight == {}


class TestGivingUp:
    async def test_disabled_after_a_day_of_failures_then_resumed_and_replayed(
        self, client, authority, receivers, worker, moved_clock
    ):
        org = await make_org(client, "merchant", authority=authority)
        r = receivers([500] * 50)
        sub = await subscribe(org.id, r.url)
        event_id = await emit(org.id)
        started = clock.now()

        await worker.run_once()
        moved_clock(timedelta(hours=25))
        report = await worker.run_once()

        assert report.disabled == [sub]
        s = await subscription(sub)
        assert s.status == "disabled"
        assert s.disabled_reason == (
            f"no successful delivery since {s.failing_since.isoformat()}: every attempt failed for 24 hours"
        )
        assert abs((s.failing_since - started).total_seconds()) < 60
        [d] = await deliveries(sub)
        assert (d.status, d.attempts) == ("failed", 2)
        async with db.session_scope() as session:
            [entry] = await audit.entries_for(session, "webhook_subscription", [str(sub)])
        assert (entry.actor, entry.action, entry.data["reason"]) == (
            "platform",
            "webhook_subscription.disabled",
            s.disabled_reason,
        )
        await emit(org.id, "order-2")  # while disabled: in GET /v1/events only, no delivery
        await worker.run_once()
        assert len(r.received) == 2

        # fixed and resumed by the admin, the failed event is replayed (same id)
        r.plan.clear()
        resumed = await client.post(f"/v1/webhooks/subscriptions/{sub}/resume", headers=org.headers)
        assert resumed.status_code == 200, resumed.text
        since = (started - timedelta(minutes=1)).isoformat()
        replay = await client.post(
            f"/v1/webhooks/subscriptions/{sub}/redeliver-failed", params={"since": since}, headers=org.headers
        )
        assert replay.status_code == 202, replay.text
        assert replay.json() == {"redelivered": 1, "delivery_ids": [d.id]}
        await worker.run_once()
        assert r.ids() == [str(event_id)] * 3
        assert [(x.status, x.attempts) for x in await deliveries(sub)] == [("delivered", 3)]


class TestReplayRoutes:
    async def test_list_show_and_redeliver_one(self, client, authority, receivers, worker):
        org = await make_org(client, "merchant", authority=authority)
        other = await make_org(client, "merchant", authority=authority)
        r = receivers([503])
        sub = await subscribe(org.id, r.url)
        event_id = await emit(org.id)
        await worker.run_once()

        listed = await client.get(f"/v1/webhooks/subscriptions/{sub}/deliveries", headers=org.headers)
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert (item["event_id"], item["status"], item["attempts"], item["last_attempt"]["status_code"]) == (
            str(event_id),
            "pending",
            1,
            503,
        )
        assert listed.json()["next_cursor"] is None
        one = await client.post(
            f"/v1/webhooks/subscriptions/{sub}/deliveries/{item['id']}/redeliver", headers=org.headers
        )
        assert one.status_code == 202, one.text
        assert (one.json()["status"], len(one.json()["attempt_history"])) == ("pending", 1)
        await worker.run_once()
        assert r.ids() == [str(event_id)] * 2

        shown = await client.get(
            f"/v1/webhooks/subscriptions/{sub}/deliveries/{item['id']}", headers=org.headers
        )
        assert [a["status_code"] for a in shown.json()["attempt_history"]] == [503, 200]
        assert shown.json()["status"] == "delivered"
        assert shown.json()["next_attempt_at"] is None
        delivered = await client.get(
            f"/v1/webhooks/subscriptions/{sub}/deliveries", params={"status": "failed"}, headers=org.headers
        )
        assert delivered.json()["items"] == []

        # another organisation sees nothing of it; a wrong id and a bad cursor are told apart
        for path in (f"/deliveries/{item['id']}", "/deliveries"):
            assert_problem(
                await client.get(f"/v1/webhooks/subscriptions/{sub}{path}", headers=other.headers),
                404,
                "subscription_not_found",
            )
        assert_problem(
            await client.post(
                f"/v1/webhooks/subscriptions/{sub}/deliveries/{item['id']}/redeliver", headers=other.headers
            ),
            404,
            "subscription_not_found",
        )
        assert_problem(
            await client.post(
                f"/v1/webhooks/subscriptions/{sub}/deliveries/999999999/redeliver", headers=org.headers
            ),
            404,
            "delivery_not_found",
        )
        assert_problem(
            await client.get(
                f"/v1/webhooks/subscriptions/{sub}/deliveries", params={"cursor": "x"}, headers=org.headers
            ),
            400,
            "invalid_cursor",
        )
        assert_problem(
            await client.post(
                f"/v1/webhooks/subscriptions/{sub}/redeliver-failed",
                params={"since": "yesterday"},
                headers=org.headers,
            ),
            422,
            "validation_error",
        )
        assert_problem(
            await client.get(f"/v1/webhooks/subscriptions/{sub}/deliveries", headers=bearer(authority)),
            403,
            "forbidden_role",
        )


class TestSafety:
    @pytest.fixture
    def production(self, monkeypatch):
        monkeypatch.setattr(get_settings(), "environment", "production")

    @pytest.mark.parametrize(
        "address", ["169.254.169.254", "10.0.0.1", "::ffff:127.0.0.1", "100.100.100.200"]
    )
    async def test_refused_in_production_and_recorded(
        self, client, authority, receivers, worker, monkeypatch, production, address
    ):
        org = await make_org(client, "merchant", authority=authority)
        r = receivers()
        sub = await subscribe(org.id, f"https://hooks.example.com:{r.server.server_port}/in")
        asked = []

        async def resolve(host: str, port: int) -> list[str]:
            asked.append((host, port))
            return [address]

        monkeypatch.setattr(delivery, "resolve", resolve)
        await emit(org.id)
        await worker.run_once()

        assert (asked, r.received) == ([("hooks.example.com", r.server.server_port)], [])
        [d] = await deliveries(sub)
        [a] = await attempts(d.id)
        assert (d.status, a.status_code, a.error) == (
            "pending",
            None,
            f"UnsafeAddress: {address} is not a public address",
        )

    async def test_one_private_answer_refuses_the_name(self, production, monkeypatch):
        async def resolve(host: str, port: int) -> list[str]:
            return ["93.184.216.34", "192.168.1.10"]

        monkeypatch.setattr(delivery, "resolve", resolve)
        with pytest.raises(delivery.UnsafeAddress, match="192.168.1.10 is not a public address"):
            await delivery.safe_address("hooks.example.com", 443)
        with pytest.raises(delivery.UnsafeAddress, match="127.0.0.1 is not a public address"):
            await delivery.safe_address("127.0.0.1", 443)

    @pytest.mark.parametrize(
        ("address", "safe"),
        [
            ("93.184.216.34", True),
            ("2606:4700::1111", True),
            ("127.0.0.1", False),
            ("::1", False),
            ("0.0.0.0", False),
            ("169.254.169.254", False),
            ("fe80::1", False),
            ("fd00:ec2::254", False),
            ("100.64.0.1", False),
            ("224.0.0.1", False),
            ("ff02::1", False),
            ("192.0.2.1", False),
            ("255.255.255.255", False),
            ("::ffff:10.0.0.1", False),
            ("64:ff9b::a9fe:a9fe", False),
            ("2002:a9fe:a9fe::1", False),
        ],
    )
    def test_addresses(self, address, safe):
        if safe:
            delivery.check_address(address, allow_loopback=False)
        else:
            with pytest.raises(delivery.UnsafeAddress):
                delivery.check_address(address, allow_loopback=False)

    async def test_connects_to_the_checked_address_with_the_host_named(
        self, client, authority, receivers, worker, monkeypatch
    ):
        """Outside production loopback is allowed; the name is resolved once and the connection goes to
        the address checked, the Host header keeping the name."""
        org = await make_org(client, "merchant", authority=authority)
        r = receivers()
        port = r.server.server_port
        await subscribe(org.id, f"http://hooks.example.com:{port}/in")
        answers = iter([["127.0.0.1"]])

        async def resolve(host: str, port: int) -> list[str]:
            return next(answers)  # a second resolution would fail the test (StopIteration)

        monkeypatch.setattr(delivery, "resolve", resolve)
        await emit(org.id)
        await worker.run_once()

        [(headers, body)] = r.received
        assert headers["Host"] == f"hooks.example.com:{port}"
        assert json.loads(body)["type"] == "order.redeemed"


def test_retry_delays_grow_with_full_jitter_to_an_hour():
    class Top:
        def uniform(self, low: float, high: float) -> float:
            return high

    assert [delivery.retry_delay(n, Top()).total_seconds() for n in range(1, 9)] == [  # type: ignore[arg-type]
        10,
        30,
        90,
        270,
        810,
        2430,
        3600,
        3600,
    ]
