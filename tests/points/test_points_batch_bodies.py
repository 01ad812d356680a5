"""A signed batch's body as it is kept: zlib-compressed by the API, read back byte for byte; the rows kept
before (``identity``) read as they are; a kept body altered in the database no longer matches its hash."""

import hashlib
import uuid
import zlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.core import clock, db
from app.points import bodies
from app.points import service as points_service
from app.points.service import SignatureOutcome
from tests.factories import assert_problem, make_operator, signed, unique
from tests.factories_points import enrol, ensure_rule, make_methodology, record

LIST = "/v1/operator/behaviour-batches"
BODY = (
    b'{"records": [' + b", ".join(b'{"record_id": "r-%d", "quantity": 1.5}' % i for i in range(500)) + b"]}"
)


class TestCodec:
    def test_kept_compressed_and_read_back_byte_for_byte(self):
        kept, encoding = bodies.stored(BODY)
        assert encoding == "zlib"
        assert len(kept) < len(BODY) // 4
        assert bodies.original(kept, encoding, len(BODY)) == BODY
        sha = hashlib.sha256(BODY).hexdigest()
        assert bodies.checked(kept, encoding, sha, len(BODY)) == BODY

    def test_a_body_kept_before_is_read_as_it_is(self):
        assert bodies.original(memoryview(BODY), "identity", 10) == BODY  # no bound: it was never compressed
        assert bodies.checked(BODY, "identity", hashlib.sha256(BODY).hexdigest(), 10) == BODY
        assert bodies.checked(BODY + b" ", "identity", hashlib.sha256(BODY).hexdigest(), 10) is None

    @pytest.mark.parametrize(
        "alter",
        [
            pytest.param(lambda kept: kept[:-1], id="cut"),
            pytest.param(lambda kept: kept + b" ", id="a byte after its end"),
            pytest.param(lambda kept: kept[:2] + bytes([kept[2] ^ 0xFF]) + kept[3:], id="a byte changed"),
            pytest.param(lambda kept: BODY, id="not zlib at all"),
            pytest.param(lambda kept: b"", id="empty"),
        ],
    )
    def test_altered_bytes_give_no_body(self, alter):
        kept, encoding = bodies.stored(BODY)
        assert bodies.original(alter(kept), encoding, len(BODY)) is None
        assert bodies.checked(alter(kept), encoding, hashlib.sha256(BODY).hexdigest(), len(BODY)) is None

    def test_a_body_longer_than_any_request_gives_none(self):
        bomb = zlib.compress(b"\0" * 3_000_000, 9)  # ~3 KB kept
        assert bodies.original(bomb, "zlib", 2_000_000) is None
        assert bodies.original(bomb, "zlib", 3_000_000) == b"\0" * 3_000_000


@pytest.fixture
async def batch(client):
    """An operator's batch of two records as sent (its exact bytes) and accepted."""
    await ensure_rule()
    btype = await make_methodology()
    op = await make_operator(client)
    ext = (await enrol(client, op))["external_user_id"]
    now = clock.now()
    records = [
        record(ext, btype, quantity=1.0, start=now - timedelta(hours=5), record_id="r-1"),
        record(ext, btype, quantity=2.0, start=now - timedelta(hours=4), record_id="r-2"),
    ]
    body, headers = signed(op, {"records": records})
    headers["Idempotency-Key"] = unique("batch")
    r = await client.post(LIST, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == {"accepted": 2, "duplicate": 0, "rejected": 0}
    return op, uuid.UUID(r.json()["batch_id"]), body


async def _row(batch_id: uuid.UUID):
    async with db.session_scope() as session:
        return (
            await session.execute(
                sa.text("SELECT body, body_encoding, body_sha256 FROM behaviour_batches WHERE id = :id"),
                {"id": batch_id},
            )
        ).one()


async def _set_body(batch_id: uuid.UUID, body: bytes, encoding: str) -> None:
    async with db.session_scope() as session:
        await session.execute(
            sa.text("UPDATE behaviour_batches SET body = :body, body_encoding = :encoding WHERE id = :id"),
            {"id": batch_id, "body": body, "encoding": encoding},
        )


async def _checks(batch_id: uuid.UUID) -> tuple[bool, SignatureOutcome, bool]:
    async with db.session_scope() as session:
        (facts,) = await points_service.batches(session, [batch_id])
        (check,) = await points_service.check_batches(session, [batch_id], after=None, limit=10)
    return facts.body_hash_ok, check.outcome, check.body_hash_ok


async def _statuses(client, op, batch_id: uuid.UUID) -> list[tuple[str, str]]:
    r = await client.get(f"{LIST}/{batch_id}", headers=op.headers)
    assert r.status_code == 200, r.text
    return [(x["record_id"], x["status"]) for x in r.json()["results"]["items"]]


class TestKept:
    async def test_a_batch_is_kept_compressed_and_verifies(self, client, batch):
        op, batch_id, body = batch
        kept, encoding, sha = await _row(batch_id)
        assert encoding == "zlib"
        assert zlib.decompress(kept) == body and len(kept) < len(body)
        assert sha == hashlib.sha256(body).hexdigest()
        assert await _checks(batch_id) == (True, SignatureOutcome.verified, True)
        assert await _statuses(client, op, batch_id) == [("r-1", "accepted"), ("r-2", "accepted")]

    async def test_a_batch_kept_before_reads_and_verifies_as_it_did(self, client, batch):
        op, batch_id, body = batch
        await _set_body(batch_id, body, "identity")
        assert await _checks(batch_id) == (True, SignatureOutcome.verified, True)
        assert await _statuses(client, op, batch_id) == [("r-1", "accepted"), ("r-2", "accepted")]

    async def test_an_altered_body_no_longer_matches_and_is_refused_clearly(self, client, batch):
        op, batch_id, body = batch
        kept, *_ = await _row(batch_id)
        await _set_body(batch_id, kept[:-4], "zlib")
        assert await _checks(batch_id) == (False, SignatureOutcome.body_hash_mismatch, False)
        r = await client.get(f"{LIST}/{batch_id}", headers=op.headers)
        assert_problem(r, 500, "batch_body_unreadable")
        # the same body kept whole but not the one received: it decompresses, its hash does not match
        await _set_body(batch_id, zlib.compress(body.replace(b"r-1", b"r-9")), "zlib")
        assert await _checks(batch_id) == (False, SignatureOutcome.body_hash_mismatch, False)

    async def test_an_unknown_encoding_is_refused_by_the_database(self, batch):
        _, batch_id, body = batch
        with pytest.raises(sa.exc.IntegrityError, match="ck_behaviour_batches_body_encoding_known"):
            await _set_body(batch_id, body, "gzip")


async def test_batches_are_read_a_few_at_a_time_in_order_of_receipt(client, batch, monkeypatch):
    op, first, _ = batch
    later = []
    for n in range(2):
        ext = (await enrol(client, op))["external_user_id"]
        body, headers = signed(
            op, {"records": [record(ext, await make_methodology(), record_id=f"later-{n}")]}
        )
        headers["Idempotency-Key"] = unique("batch")
        clock.set_offset(timedelta(seconds=n + 1))  # received after the first, in this order
        try:
            r = await client.post(LIST, content=body, headers=headers)
        finally:
            clock.set_offset(timedelta(0))
        assert r.status_code == 200, r.text
        later.append(uuid.UUID(r.json()["batch_id"]))
    kept, *_ = await _row(later[0])
    await _set_body(later[0], kept[:-1], "zlib")
    monkeypatch.setattr(points_service, "BODIES_AT_ONCE", 2)  # three batches: two reads of bodies
    wanted = [later[1], first, later[0], uuid.uuid4()]  # in no order, one unknown
    async with db.session_scope() as session:
        every = await points_service.batches(session, wanted)
        two = await points_service.batches(session, wanted, limit=2)
    assert [(b.id, b.body_hash_ok) for b in every] == [(first, True), (later[0], False), (later[1], True)]
    assert [b.id for b in two] == [first, later[0]]
