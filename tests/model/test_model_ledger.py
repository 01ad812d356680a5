"""Model-based test: the real API and an in-memory reference model, side by side.

A hypothesis ``RuleBasedStateMachine`` enrols people (one person may be enrolled by two operators:
one account), submits signed behaviour batches (fresh, retried with the same key, resent with a new
key, sent twice at once; with duplicate record ids, reused evidence and overlapping times), orders
mall items, cancels orders, redeems vouchers, withdraws entrustments, claws points back, moves the
clock forward and runs the points and voucher expiry jobs. A third operator, ``c``, is never trusted to
enrol anyone: people confirm it themselves through the authorization code flow (the authorize pages, the
one-time code from the development outbox, the consent, the code exchanged with PKCE), its refresh tokens
rotate (an old one used again revokes the family), people withdraw entrustments on their own page ``/me``
(signed in with phone and code), and the authority narrows or widens the scopes ``c`` may ask for. Every response is checked against what
the model says it must be, and after every step: ``ledger verify`` finds nothing; every person's
whole ledger (kind, amount, balance after: read through the points service, as the person's export
shows it) equals the model's; through every user token still working, the balance, lifetime points and
expiry breakdown equal the model's and the newest entries of ``/v1/me/ledger`` are exactly those the
model says that operator may see (its earnings, orders placed through it, their refunds, and expiries and
clawbacks that took points from a lot it credited); and every item's stock equals the model's. A user
token never lists another operator's records or orders, never orders without ``mall`` and never works
after the entrustment is withdrawn. Each example ends with the audit chain verified. Hypothesis picks rules
at random (and leaves some out of an example), so a scripted walk through the same machine also
reaches every branch on purpose (``test_a_walk_through_every_branch``).

The app's database pool lives on the test's event loop; hypothesis runs the machine in a worker
thread and every request goes through :class:`tests.factories_security.Bridge`. The platform's
clock is frozen (``clock.freeze``) and only moved forward, so lot expiries and voucher deadlines
are exact; it is released when the test ends.
"""

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal

import httpx
import hypothesis
import pytest
import sqlalchemy as sa
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from app.core import audit, clock, db
from app.mall import tasks as mall_tasks
from app.points import service as points_service
from app.points import tasks as points_tasks
from app.points.verify import verify
from tests.factories import (
    ALL_SCOPES,
    authority_token,
    bearer,
    make_operator,
    make_org,
    person_session,
    signed,
    unique,
)
from tests.factories_points import ensure_rule, make_methodology
from tests.factories_security import Bridge
from tests.oauth_flow import authorize_params, consent_to, exchange, oauth_operator, query_of, refresh
from tests.web.helpers import HTML, csrf_token

MAX_EXAMPLES = 20
STEPS = 25
FACTOR = Decimal("46.7")
MAX_RECORD = Decimal("60")
QUANTITIES = [0.5, 1.0, 3.3, 12.4, 30.0, 59.9, 61.0]

STATS = {"examples": 0, "steps": 0, "requests": 0, "checks": 0, "outcomes": {}, "rules": {}}


def counted(name: str) -> None:
    STATS["outcomes"][name] = STATS["outcomes"].get(name, 0) + 1


def local_midnight_after(moment: datetime, days: int) -> datetime:
    day = moment.astimezone(clock.zone()).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=clock.zone())


def quantized(q: float) -> Decimal:
    return Decimal(repr(q)).quantize(Decimal("0.0001"), ROUND_DOWN)


@dataclass
class Rule:
    version: int
    points_per_gram: Decimal
    daily_cap: int | None
    type_caps: dict
    lifetime_days: int
    effective_from: datetime
    effective_to: datetime | None


@dataclass
class Entrustment:
    operator: str  # "a" | "b"
    ext: str
    user: "Person"
    accepted_at: datetime
    withdrawn_at: datetime | None = None


@dataclass
class Grant:
    """What operator ``c`` holds for a person from the authorization code flow."""

    ext: str
    scope: set  # what the person granted
    token_scope: set  # the scopes of the current user token
    headers: dict
    refresh: str
    old: list = field(default_factory=list)  # rotated refresh tokens
    live: bool = True
    dead_code: str = ""  # why the tokens stopped: token_revoked | entrustment_withdrawn


@dataclass
class Person:
    user_id: str
    headers: dict
    phone: str
    lots: dict = field(default_factory=dict)  # expires_at -> remaining
    lot_ops: dict = field(
        default_factory=dict
    )  # expires_at -> the operators whose earnings went into the lot
    log: list = field(
        default_factory=list
    )  # the ledger: (kind, amount, balance_after, operators that see it)
    records: dict = field(default_factory=dict)  # operator -> record ids accepted for the person
    grant: Grant | None = None
    ledger: int = 0  # the account's balance: the sum of its entries
    entries: int = 0
    lifetime: int = 0
    spans: list = field(default_factory=list)  # accepted (start, end) of the test's type
    day_points: dict = field(default_factory=dict)  # local day -> points
    has_account: bool = False  # the account row appears with the first record that reaches the ledger checks
    via: str = ""  # the operator through which the person's user token was issued


@dataclass
class Item:
    id: str
    price: int
    stock: int | None
    per_user_limit: int | None
    valid_days: int
    policy: str
    held: dict = field(default_factory=dict)  # user_id -> units counted against the limit


@dataclass
class Order:
    id: str
    code: str
    item: Item
    person: Person
    quantity: int
    points: int
    taken: list  # [(lot expires_at, amount)]
    expires_at: datetime
    via: str  # the operator the ordering token was issued to
    status: str = "issued"


class World:
    """What the whole test shares: operators, merchant, the behaviour type, the rules, the bridge."""

    def __init__(self, client, bridge: Bridge, operators: dict, merchant, authority: str, btype: str, rules):
        self.client = client
        self.bridge = bridge
        self.operators = operators
        self.merchant = merchant
        self.authority = authority
        self.btype = btype
        self.rules = rules
        self.moment = clock.now()
        self.idempotency_ttl_hours = 48
        self.record_max_age_days = 90
        self.allowed_c = set(ALL_SCOPES)  # what the authority lets operator c ask for

    def browser(self) -> httpx.AsyncClient:
        """A browser of its own address (cookies of its own), on the same application."""
        ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        transport = httpx.ASGITransport(app=self.client._transport.app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url=self.client.base_url, timeout=60)

    def request(self, method: str, url: str, **kwargs):
        STATS["requests"] += 1
        return self.bridge.run(self.client.request(method, url, **kwargs))


class LedgerMachine(RuleBasedStateMachine):
    world: World  # set by the test

    def __init__(self):
        super().__init__()
        w = self.world
        w.moment = max(w.moment, clock.now()) + timedelta(seconds=1)
        clock.freeze(w.moment)
        if w.allowed_c != set(ALL_SCOPES):
            self._set_c_scopes(set(ALL_SCOPES))
        self.people: list[Person] = []
        self.entrustments: list[Entrustment] = []
        self.items: list[Item] = []
        self.orders: list[Order] = []
        self.sent: dict[tuple[str, str], dict] = {}  # (operator, record_id) -> first accepted outcome
        self.claimed: set[tuple[str, str]] = set()
        self.record_ids: dict[str, list[str]] = {"a": [], "b": [], "c": []}
        self.evidence: list[str] = []
        self.last_batch = None
        STATS["examples"] += 1

    # ------------------------------------------------------------------ helpers

    @property
    def now(self) -> datetime:
        return self.world.moment

    def rule_at(self, moment: datetime) -> Rule | None:
        for r in self.world.rules:
            if r.effective_from <= moment and (r.effective_to is None or moment < r.effective_to):
                return r
        return None

    def usable(self, p: Person) -> int:
        return sum(v for x, v in p.lots.items() if x > self.now)

    def _log(self, p: Person, kind: str, amount: int, ops) -> None:
        p.log.append((kind, amount, p.ledger, frozenset(ops)))

    def _debit(self, p: Person, points: int, kind: str, via: str | None = None) -> list:
        """Take ``points`` (soonest-expiring lots first); the entry is seen through ``via`` (an order's
        operator) or, for a clawback, through every operator that credited a lot it took from."""
        taken, left = [], points
        for x in sorted(p.lots):
            if x <= self.now or p.lots[x] <= 0 or left == 0:
                continue
            take = min(p.lots[x], left)
            p.lots[x] -= take
            taken.append((x, take))
            left -= take
        assert left == 0
        p.ledger -= points
        p.entries += 1
        ops = {via} if via else set().union(*(p.lot_ops.get(x, set()) for x, _ in taken))
        self._log(p, kind, -points, ops)
        return taken

    def _refund(self, p: Person, taken: list, via: str) -> None:
        points = sum(a for _, a in taken)
        expired = sum(a for x, a in taken if x <= self.now)
        for x, a in taken:
            if x > self.now:
                p.lots[x] += a
        p.ledger += points
        self._log(p, "refund", points, {via})
        if expired:  # a share whose lot has expired meanwhile expires at once
            p.ledger -= expired
            self._log(p, "expire", -expired, {via})
        p.entries += 2 if expired else 1

    def _tokens(self, p: Person) -> list[tuple[str, dict, set]]:
        """The person's user tokens still working: (operator, headers, scopes)."""
        tokens = [(p.via, p.headers, set(ALL_SCOPES))] if p.headers else []
        if p.grant and p.grant.live:
            tokens.append(("c", p.grant.headers, p.grant.token_scope))
        return tokens

    # ------------------------------------------------------------------ setup

    @initialize()
    def setup_items(self):
        w = self.world
        for price, stock, limit, days, policy in ((40, 3, 2, 5, "refund"), (25, None, None, 40, "forfeit")):
            body = {
                "title": unique("model item"),
                "points_price": price,
                "stock": stock,
                "per_user_limit": limit,
                "voucher_valid_days": days,
                "expiry_policy": policy,
            }
            r = w.request("POST", "/v1/mall/items", json=body, headers=w.merchant.headers)
            assert r.status_code == 201, r.text
            self.items.append(Item(r.json()["id"], price, stock, limit, days, policy))

    # ------------------------------------------------------------------ people

    @initialize()
    def first_people(self):
        """Three people (two at operator a, one at b) with points to spend."""
        for operator in ("a", "a", "b"):
            self._enrol(operator)
        for operator in ("a", "b"):
            mine = [e for e in self.entrustments if e.operator == operator]
            records = []
            for i, e in enumerate(mine):
                for hours in (30, 20, 10):
                    start = self.now - timedelta(hours=hours + i * 0.5)
                    records.append(self._make_record(e.ext, start, 12.4, unique("ev"), unique("r")))
            self._submit(operator, records, unique("batch"))

    @precondition(lambda self: len(self.people) < 5)
    @rule(operator=st.sampled_from(["a", "b"]))
    def enrol(self, operator):
        STATS["rules"]["enrol"] = STATS["rules"].get("enrol", 0) + 1
        self._enrol(operator)

    def _enrol(self, operator: str) -> None:
        w = self.world
        op = w.operators[operator]
        ext, number = unique("m"), f"+86139{uuid.uuid4().int % 10**8:08d}"  # hypothesis seeds `random`
        accepted = self.now - timedelta(days=30)
        r = w.request(
            "POST",
            "/v1/operator/users",
            headers=op.headers,
            json={
                "external_user_id": ext,
                "identifier": {"type": "phone", "value": number},
                "consent": {"agreement_version": "v1", "accepted_at": accepted.isoformat()},
            },
        )
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        t = w.request("POST", f"/v1/operator/users/{ext}/tokens", headers=op.headers)
        assert t.status_code == 200, t.text
        person = Person(user_id, bearer(t.json()["access_token"]), number, via=operator)
        self.people.append(person)
        self.entrustments.append(Entrustment(operator, ext, person, accepted))

    def _reissue_token(self, person: Person) -> None:
        """A token through another operator the person still entrusts, if any; else the person has none."""
        w = self.world
        live = [
            e for e in self.entrustments if e.user is person and e.withdrawn_at is None and e.operator != "c"
        ]
        if not live:
            person.headers, person.via = {}, ""
            return
        t = w.request(
            "POST", f"/v1/operator/users/{live[0].ext}/tokens", headers=w.operators[live[0].operator].headers
        )
        assert t.status_code == 200, t.text
        person.headers, person.via = bearer(t.json()["access_token"]), live[0].operator

    @precondition(lambda self: self.people)
    @rule(data=st.data())
    def enrol_at_the_other_operator(self, data):
        """The same phone number enrolled by the other operator: the same account."""
        STATS["rules"]["enrol_at_the_other_operator"] = (
            STATS["rules"].get("enrol_at_the_other_operator", 0) + 1
        )
        w = self.world
        first = data.draw(st.sampled_from([e for e in self.entrustments]))
        other = "b" if first.operator == "a" else "a"
        if any(e.user is first.user and e.operator == other for e in self.entrustments):
            return
        number = first.user.phone
        ext = unique("m")
        accepted = self.now - timedelta(days=30)
        r = w.request(
            "POST",
            "/v1/operator/users",
            headers=w.operators[other].headers,
            json={
                "external_user_id": ext,
                "identifier": {"type": "phone", "value": number},
                "consent": {"agreement_version": "v1", "accepted_at": accepted.isoformat()},
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["user_id"] == first.user.user_id
        counted("same person at a second operator")
        self.entrustments.append(Entrustment(other, ext, first.user, accepted))

    @precondition(lambda self: sum(e.withdrawn_at is None for e in self.entrustments) > 3)
    @rule(data=st.data())
    def withdraw(self, data):
        STATS["rules"]["withdraw"] = STATS["rules"].get("withdraw", 0) + 1
        w = self.world
        e = data.draw(st.sampled_from([e for e in self.entrustments if e.withdrawn_at is None]))
        r = w.request("DELETE", f"/v1/operator/users/{e.ext}", headers=w.operators[e.operator].headers)
        assert r.status_code == 200, r.text
        assert datetime.fromisoformat(r.json()["withdrawn_at"]) == self.now
        self._withdrawn(e)
        counted("entrustment withdrawn")
        r = w.request("DELETE", f"/v1/operator/users/{e.ext}", headers=w.operators[e.operator].headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")

    def _withdrawn(self, e: Entrustment) -> None:
        """The model after a withdrawal: the tokens issued through that operator stop at once, and operator
        c is told at its next refresh (``entrustment_withdrawn``)."""
        w = self.world
        e.withdrawn_at = self.now
        if e.user.via == e.operator:
            r = w.request("GET", "/v1/me/account", headers=e.user.headers)
            assert (r.status_code, r.json()["code"]) == (401, "entrustment_withdrawn"), r.text
            self._reissue_token(e.user)
        g = e.user.grant
        if e.operator == "c" and g is not None and g.ext == e.ext:
            if g.live:
                r = w.request("GET", "/v1/me/account", headers=g.headers)
                assert (r.status_code, r.json()["code"]) == (401, "entrustment_withdrawn"), r.text
            r = self._refresh_c(g.refresh)
            assert (r.status_code, r.json()["code"]) == (400, "entrustment_withdrawn"), r.text
            g.live, g.dead_code = False, "entrustment_withdrawn"
            counted("refresh refused: entrustment_withdrawn")

    # ------------------------------------------------------------------ operator c: the person decides

    def _set_c_scopes(self, scopes: set) -> None:
        w = self.world
        r = w.request(
            "PUT",
            f"/v1/organizations/{w.operators['c'].id}/allowed-scopes",
            json={"scopes": sorted(scopes), "reason": "model"},
            headers=bearer(w.authority),
        )
        assert r.status_code == 200, r.text
        assert set(r.json()["allowed_scopes"]) == scopes
        w.allowed_c = set(scopes)

    @rule(mall=st.booleans())
    def authority_sets_the_scopes_of_c(self, mall):
        """The authority lets operator c ask for ``mall`` or not; user tokens c gets from then on carry
        what the person granted within what c may ask for."""
        STATS["rules"]["authority_sets_the_scopes_of_c"] = (
            STATS["rules"].get("authority_sets_the_scopes_of_c", 0) + 1
        )
        self._set_c_scopes({"behaviours:submit", "account:read", *(["mall"] if mall else [])})
        counted(f"c may ask for mall: {mall}")

    def _refresh_c(self, token: str) -> httpx.Response:
        w = self.world
        STATS["requests"] += 1
        return w.bridge.run(refresh(w.client, w.operators["c"], token))

    @precondition(lambda self: self.people)
    @rule(data=st.data(), mall=st.booleans())
    def confirm_c_through_the_authorization_flow(self, data, mall):
        """The person confirms operator c: authorize page, phone, one-time code from the outbox, consent;
        c exchanges the code (PKCE) for a refresh token and a user token. A second exchange of the same code
        revokes what the first issued."""
        STATS["rules"]["confirm_c"] = STATS["rules"].get("confirm_c", 0) + 1
        w = self.world
        p = data.draw(st.sampled_from(self.people))
        if p.grant is not None and p.grant.live:
            return
        live = next(
            (e for e in self.entrustments if e.user is p and e.operator == "c" and e.withdrawn_at is None),
            None,
        )
        granted = {"behaviours:submit", "account:read", *(["mall"] if mall and "mall" in w.allowed_c else [])}
        op = w.operators["c"]
        started = authorize_params(op, scope=" ".join(s for s in ALL_SCOPES if s in granted))
        ext = live.ext if live else unique("m")
        replay = data.draw(st.booleans())

        async def walk():
            async with w.browser() as browser:
                browser.headers.update(HTML)
                location = await consent_to(browser, started, p.phone)
            got = query_of(location)
            assert got["state"] == started.state, location
            first = await exchange(w.client, op, got["code"], started.verifier, external_user_id=ext)
            again = await exchange(w.client, op, got["code"], started.verifier) if replay else None
            return first, again

        STATS["requests"] += 12
        r, again = w.bridge.run(walk())
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert (tokens["user_id"], tokens["external_user_id"]) == (p.user_id, ext), tokens
        assert set(tokens["scope"].split()) == granted
        p.grant = Grant(ext, granted, set(granted), bearer(tokens["access_token"]), tokens["refresh_token"])
        if live is None:
            self.entrustments.append(Entrustment("c", ext, p, self.now))
        counted("c confirmed by the person")
        if again is not None:  # the code used twice: what the first use issued is revoked
            assert (again.status_code, again.json()["code"]) == (400, "code_reused"), again.text
            p.grant.live, p.grant.dead_code = False, "token_revoked"
            r = w.request("GET", "/v1/me/account", headers=p.grant.headers)
            assert (r.status_code, r.json()["code"]) == (401, "token_revoked"), r.text
            counted("code reused: tokens revoked")

    @precondition(lambda self: any(p.grant for p in self.people))
    @rule(data=st.data(), reuse=st.booleans())
    def refresh_c(self, data, reuse):
        """c refreshes (the refresh token rotates, the user token carries the granted scopes c may still ask
        for), or uses an old refresh token again: the whole family is revoked."""
        STATS["rules"]["refresh_c"] = STATS["rules"].get("refresh_c", 0) + 1
        w = self.world
        g = data.draw(st.sampled_from([p.grant for p in self.people if p.grant]))
        if not g.live:
            r = self._refresh_c(g.refresh)
            assert (r.status_code, r.json()["code"]) == (400, g.dead_code), r.text
            counted(f"refresh refused: {g.dead_code}")
            return
        if reuse and g.old:
            r = self._refresh_c(data.draw(st.sampled_from(g.old)))
            assert (r.status_code, r.json()["code"]) == (400, "refresh_token_reused"), r.text
            g.live, g.dead_code = False, "token_revoked"
            r = w.request("GET", "/v1/me/account", headers=g.headers)
            assert (r.status_code, r.json()["code"]) == (401, "token_revoked"), r.text
            r = self._refresh_c(g.refresh)
            assert (r.status_code, r.json()["code"]) == (400, "token_revoked"), r.text
            counted("refresh token reused: family revoked")
            return
        r = self._refresh_c(g.refresh)
        assert r.status_code == 200, r.text
        tokens = r.json()
        g.token_scope = g.scope & w.allowed_c
        assert set(tokens["scope"].split()) == g.token_scope, (tokens, g.token_scope)
        assert tokens["refresh_token"] != g.refresh
        g.old.append(g.refresh)
        g.refresh, g.headers = tokens["refresh_token"], bearer(tokens["access_token"])
        counted("refreshed" + (" without mall" if "mall" in g.scope - g.token_scope else ""))

    @precondition(lambda self: sum(e.withdrawn_at is None for e in self.entrustments) > 3)
    @rule(data=st.data())
    def withdraw_on_my_page(self, data):
        """The person signs in on /me (phone, one-time code), exports their data (the whole ledger and every
        entrustment, with what they granted) and withdraws one entrustment."""
        STATS["rules"]["withdraw_on_my_page"] = STATS["rules"].get("withdraw_on_my_page", 0) + 1
        w = self.world
        e = data.draw(st.sampled_from([e for e in self.entrustments if e.withdrawn_at is None]))
        p = e.user
        op_id = w.operators[e.operator].id

        async def walk():
            async with w.browser() as browser:
                await person_session(browser, p.phone)
                export = await browser.get("/v1/me/export")
                async with db.sessionmaker()() as session:
                    entrustment = (
                        await session.execute(
                            sa.text(
                                "SELECT id FROM entrustments WHERE operator_id = :o AND user_id = :u"
                                " AND withdrawn_at IS NULL"
                            ),
                            {"o": op_id, "u": p.user_id},
                        )
                    ).scalar_one()
                    await session.rollback()
                form = await browser.get(f"/me/entrustments/{entrustment}/withdraw", headers=HTML)
                assert form.status_code == 200, form.text
                done = await browser.post(
                    f"/me/entrustments/{entrustment}/withdraw",
                    data={"csrf_token": csrf_token(form.text)},
                    headers=HTML,
                )
                return export, entrustment, done

        STATS["requests"] += 9
        export, entrustment, done = w.bridge.run(walk())
        assert export.status_code == 200, export.text
        body = export.json()
        assert [(x["kind"], x["amount"], x["balance_after"]) for x in body["ledger"]] == [
            (k, a, b) for k, a, b, _ in reversed(p.log)
        ]
        assert body["account"]["balance"] == self.usable(p)
        ids = {x: w.operators[x].id for x in ("a", "b", "c")}
        assert sorted(
            (
                x["operator_id"],
                x["external_user_id"],
                x["withdrawn_at"] is None,
                x["scope"],
                x["confirmed_by"],
            )
            for x in body["entrustments"]
        ) == sorted(
            (
                ids[m.operator],
                m.ext,
                m.withdrawn_at is None,
                " ".join(s for s in ALL_SCOPES if s in p.grant.scope)
                if m.operator == "c" and p.grant and m.ext == p.grant.ext
                else None,
                "person_otp" if m.operator == "c" else "operator_asserted",
            )
            for m in self.entrustments
            if m.user is p
        )
        assert (done.status_code, done.headers["location"]) == (303, f"/me?withdrawn={entrustment}"), (
            done.text
        )
        counted(f"withdrawn on /me: {e.operator}")
        self._withdrawn(e)

    @precondition(lambda self: self.people)
    @rule()
    def look_through_every_token(self):
        """Through each working user token: only the records that operator submitted for the person, only the
        orders placed through it (and none at all without ``mall``)."""
        STATS["rules"]["look_through_every_token"] = STATS["rules"].get("look_through_every_token", 0) + 1
        w = self.world
        for p in self.people:
            for via, headers, scopes in self._tokens(p):
                r = w.request("GET", "/v1/me/behaviours", params={"limit": 200}, headers=headers)
                assert r.status_code == 200, r.text
                items = r.json()["items"]
                assert {i["record_id"] for i in items} == p.records.get(via, set())
                assert {i["operator_id"] for i in items} <= {w.operators[via].id}
                r = w.request("GET", "/v1/me/orders", params={"limit": 200}, headers=headers)
                if "mall" not in scopes:
                    assert (r.status_code, r.json()["code"]) == (403, "scope_required"), r.text
                    counted("orders not listed without mall")
                    continue
                assert r.status_code == 200, r.text
                mine = {o.id for o in self.orders if o.person is p and o.via == via}
                assert {i["id"] for i in r.json()["items"]} == mine
                counted("looked through a token")

    # ------------------------------------------------------------------ behaviour batches

    def _draw_record(self, data, operator: str) -> dict:
        mine = [e for e in self.entrustments if e.operator == operator]
        kind = data.draw(st.sampled_from(["fresh"] * 6 + ["stranger", "old_id", "reused_evidence"]))
        ext = data.draw(st.sampled_from(mine)).ext if mine and kind != "stranger" else unique("stranger")
        hours = data.draw(st.integers(1, 40))
        minutes = data.draw(st.sampled_from([0, 5, 30]))
        start = self.now - timedelta(hours=hours, minutes=minutes)
        record_id = unique("r")
        if kind == "old_id" and self.record_ids[operator]:
            record_id = data.draw(st.sampled_from(self.record_ids[operator]))
        evidence = unique("ev")
        if kind == "reused_evidence" and self.evidence:
            evidence = data.draw(st.sampled_from(self.evidence))
        return self._make_record(ext, start, data.draw(st.sampled_from(QUANTITIES)), evidence, record_id)

    def _make_record(self, ext: str, start: datetime, quantity: float, evidence: str, record_id: str) -> dict:
        return {
            "record_id": record_id,
            "external_user_id": ext,
            "type": self.world.btype,
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=10)).isoformat(),
            "quantity": quantity,
            "unit": "km",
            "scene_id": None,
            "evidence": {"source": "model-card", "ref": evidence},
        }

    def _submit(self, operator: str, records: list[dict], key: str):
        body, headers = self._send(operator, records, key)
        expected, summary = self._expect(operator, records)
        r = self.world.request("POST", "/v1/operator/behaviour-batches", content=body, headers=headers)
        self._check(r, expected, summary, records)
        self.last_batch = (operator, records, body, headers, r.json(), self.now)

    def _expect(self, operator: str, records: list[dict]) -> tuple[list[dict], dict]:
        """The outcomes the platform must give, in request order, and apply them to the model."""
        results: list[dict | None] = [None] * len(records)
        first_index: dict[str, int] = {}
        dups, candidates = [], []
        for i, rec in enumerate(records):
            start, end = datetime.fromisoformat(rec["started_at"]), datetime.fromisoformat(rec["ended_at"])
            code = (
                "future_time"
                if end > self.now + timedelta(minutes=5)
                else (
                    "too_old" if start < self.now - timedelta(days=self.world.record_max_age_days) else None
                )
            )
            if code:
                results[i] = {"status": "rejected", "code": code, "points": 0, "reduction_g": 0}
                continue
            if rec["record_id"] in first_index:
                dups.append((i, first_index[rec["record_id"]]))
                continue
            first_index[rec["record_id"]] = i
            candidates.append(i)
        kept = []
        for i in candidates:
            rec = records[i]
            start = datetime.fromisoformat(rec["started_at"])
            person, code = None, None
            for e in self.entrustments:
                # only a live entrustment credits: once withdrawn, none of the person's records counts
                if (
                    e.operator == operator
                    and e.ext == rec["external_user_id"]
                    and e.accepted_at <= start
                    and (e.withdrawn_at is None)
                ):
                    person = e.user
                    break
            rule_ = self.rule_at(start)
            if person is None:
                code = "not_entrusted"
            elif rule_ is None:
                code = "out_of_effective_period"
            elif quantized(rec["quantity"]) > MAX_RECORD:
                code = "implausible_quantity"
            if code:
                results[i] = {"status": "rejected", "code": code, "points": 0, "reduction_g": 0}
                continue
            kept.append((i, person, rule_, start))
            person.has_account = True
        credits: dict[str, list] = {}
        for i, person, rule_, start in kept:
            rec = records[i]
            first = self.sent.get((operator, rec["record_id"]))
            if first is not None:
                results[i] = {**first, "status": "duplicate"}
                continue
            evidence = ("model-card", rec["evidence"]["ref"])
            end = start + timedelta(minutes=10)
            if evidence in self.claimed:
                results[i] = {
                    "status": "rejected",
                    "code": "evidence_already_claimed",
                    "points": 0,
                    "reduction_g": 0,
                }
                continue
            if any(s < end and start < e for s, e in person.spans):
                results[i] = {
                    "status": "rejected",
                    "code": "overlapping_behaviour",
                    "points": 0,
                    "reduction_g": 0,
                }
                continue
            self.claimed.add(evidence)
            person.spans.append((start, end))
            reduction = int((quantized(rec["quantity"]) * FACTOR).to_integral_value(ROUND_FLOOR))
            earned = int((reduction * rule_.points_per_gram).to_integral_value(ROUND_FLOOR))
            day = start.astimezone(clock.zone()).date()
            points = earned
            if rule_.daily_cap is not None:
                points = min(points, max(0, rule_.daily_cap - person.day_points.get(day, 0)))
            person.day_points[day] = person.day_points.get(day, 0) + points
            outcome = {
                "status": "accepted",
                "code": "capped" if points < earned else None,
                "points": points,
                "reduction_g": reduction,
                "methodology_version": f"{self.world.btype}@1",
                "rule_version": rule_.version,
            }
            results[i] = outcome
            person.records.setdefault(operator, set()).add(rec["record_id"])
            self.sent[(operator, rec["record_id"])] = outcome
            credits.setdefault(person.user_id, [person, 0, rule_])[1] += points
            person.lifetime += points
        for i, first in dups:
            results[i] = (
                {**results[first], "status": "duplicate"}
                if results[first]["status"] != "rejected"
                else dict(results[first])
            )
        for person, points, rule_ in credits.values():
            if points:
                x = local_midnight_after(self.now, rule_.lifetime_days)
                person.lots[x] = person.lots.get(x, 0) + points
                person.lot_ops.setdefault(x, set()).add(operator)
                person.ledger += points
                person.entries += 1
                self._log(person, "earn", points, {operator})
        for rec in records:
            if rec["record_id"] not in self.record_ids[operator]:
                self.record_ids[operator].append(rec["record_id"])
            self.evidence.append(rec["evidence"]["ref"])
        summary = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for r in results:
            summary[r["status"]] += 1
        return results, summary

    def _check(self, response, expected: list[dict], summary: dict, records: list[dict]) -> None:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["summary"] == summary, (body, expected)
        got = body["results"]
        assert len(got) == len(expected)
        for rec, g, e in zip(records, got, expected, strict=True):
            counted(f"record {e['status']}" + (f": {e['code']}" if e["code"] else ""))
            assert g["record_id"] == rec["record_id"]
            assert (g["status"], g["code"], g["points"], g["reduction_g"]) == (
                e["status"],
                e["code"],
                e["points"],
                e["reduction_g"],
            ), (rec, g, e)
            if e["status"] != "rejected":
                assert (g["methodology_version"], g["rule_version"]) == (
                    e["methodology_version"],
                    e["rule_version"],
                )
        STATS["checks"] += len(got)

    def _send(self, operator: str, records: list[dict], key: str):
        body, headers = signed(self.world.operators[operator], {"records": records})
        headers["Idempotency-Key"] = key
        return body, headers

    @rule(
        operator=st.sampled_from(["a", "b", "c"]),
        size=st.integers(1, 6),
        data=st.data(),
        then=st.sampled_from(["nothing", "retry with the same key", "resend with a new key", "race"]),
    )
    def submit_batch(self, operator, size, data, then):
        """A signed batch, and what an operator's client may do next: retry because it never saw the
        answer (same key), resend the same records (new key), or send them twice at once."""
        STATS["rules"]["submit_batch"] = STATS["rules"].get("submit_batch", 0) + 1
        records = [self._draw_record(data, operator) for _ in range(size)]
        if size > 1 and data.draw(st.booleans()):  # a record twice in one batch
            records.append(dict(records[0]))
        if then == "race":
            self._race(operator, records)
            return
        self._submit(operator, records, unique("batch"))
        if then == "retry with the same key":
            self._retry()
        elif then == "resend with a new key":
            self._submit(operator, records, unique("batch"))

    @precondition(lambda self: self.last_batch is not None)
    @rule()
    def retry_the_last_batch(self):
        """A retry some time later (the clock may have moved past the key's lifetime)."""
        STATS["rules"]["retry_the_last_batch"] = STATS["rules"].get("retry_the_last_batch", 0) + 1
        self._retry()

    def _retry(self) -> None:
        """The first answer, replayed while the key lives (``idempotency_ttl_hours``); after that the
        retry is a new request, whose records are duplicates (or too old by now)."""
        operator, records, body, headers, first, sent_at = self.last_batch
        r = self.world.request("POST", "/v1/operator/behaviour-batches", content=body, headers=headers)
        if self.now < sent_at + timedelta(hours=self.world.idempotency_ttl_hours):
            assert r.status_code == 200, r.text
            assert r.headers.get("idempotent-replayed") == "true"
            assert r.json() == first
            counted("batch replayed")
        else:
            assert "idempotent-replayed" not in r.headers
            expected, summary = self._expect(operator, records)
            self._check(r, expected, summary, records)
            counted("batch retried after its key expired")
            self.last_batch = (operator, records, body, headers, r.json(), self.now)  # the key lives again

    def _race(self, operator: str, records: list[dict]) -> None:
        """Two requests with the same records race (two keys): one is first, the other sees duplicates."""
        first = self._send(operator, records, unique("batch"))
        second = self._send(operator, records, unique("batch"))
        expected_first, summary_first = self._expect(operator, records)
        expected_second, summary_second = self._expect(operator, records)

        async def both():
            post = self.world.client.post
            return await asyncio.gather(
                post("/v1/operator/behaviour-batches", content=first[0], headers=first[1]),
                post("/v1/operator/behaviour-batches", content=second[0], headers=second[1]),
            )

        STATS["requests"] += 2
        r1, r2 = self.world.bridge.run(both())
        assert (r1.status_code, r2.status_code) == (200, 200), (r1.text, r2.text)
        winner, loser = (r1, r2) if r1.json()["summary"] == summary_first else (r2, r1)
        counted("batch raced")
        self._check(winner, expected_first, summary_first, records)
        self._check(loser, expected_second, summary_second, records)

    # ------------------------------------------------------------------ the mall

    @precondition(lambda self: self.people)
    @rule(
        data=st.data(),
        what=st.sampled_from(["order", "order", "cancel", "redeem", "guess a code"]),
        quantity=st.sampled_from([1, 1, 2]),
        retry=st.booleans(),
    )
    def shop(self, data, what, quantity, retry):
        """A person orders (and may retry with the same key), cancels an order, the merchant redeems a
        voucher at the counter, or someone guesses a voucher code."""
        STATS["rules"]["shop"] = STATS["rules"].get("shop", 0) + 1
        if what == "guess a code":
            w = self.world
            r = w.request(
                "POST", "/v1/merchant/vouchers/0000-0000-0000-0000/redeem", headers=w.merchant.headers
            )
            assert (r.status_code, r.json()["code"]) == (404, "voucher_not_found")
        elif what == "order" or not self.orders:
            tokens = [(p, t) for p in self.people for t in self._tokens(p)]
            if not tokens:
                return
            person, token = data.draw(st.sampled_from(tokens))
            self._order(person, data.draw(st.sampled_from(self.items)), quantity, retry, token)
        else:
            order = data.draw(st.sampled_from(self.orders))
            self._cancel(order) if what == "cancel" else self._redeem(order)

    def _order(self, person: Person, item: Item, quantity: int, retry: bool = False, token=None) -> None:
        """An order through ``token`` (operator, headers, scopes; default: the person's token via a or b)."""
        w = self.world
        via, person_headers, scopes = token or (person.via, person.headers, set(ALL_SCOPES))
        points = item.price * quantity
        held = item.held.get(person.user_id, 0)
        expected = None
        if "mall" not in scopes:
            expected = (403, "scope_required")
        elif item.stock is not None and item.stock < quantity:
            expected = (409, "out_of_stock")
        elif item.per_user_limit is not None and quantity > item.per_user_limit:
            expected = (409, "per_user_limit_exceeded")
        elif self.usable(person) < points:
            expected = (409, "insufficient_points")
        elif item.per_user_limit is not None and held + quantity > item.per_user_limit:
            expected = (409, "per_user_limit_exceeded")
        headers = {**person_headers, "Idempotency-Key": unique("order")}
        body = {"item_id": item.id, "quantity": quantity}
        r = w.request("POST", "/v1/me/orders", json=body, headers=headers)
        if expected:
            assert (r.status_code, r.json()["code"]) == expected, r.text
            counted(f"order refused: {expected[1]}")
            return
        counted("order placed")
        assert r.status_code == 201, r.text
        o = r.json()
        assert (o["points"], o["status"], o["quantity"], o["unit_price"]) == (
            points,
            "issued",
            quantity,
            item.price,
        )
        expires = self.now + timedelta(days=item.valid_days)
        assert datetime.fromisoformat(o["voucher"]["expires_at"]) == expires
        taken = self._debit(person, points, "redeem", via)
        if item.stock is not None:
            item.stock -= quantity
        item.held[person.user_id] = held + quantity
        self.orders.append(
            Order(o["id"], o["voucher"]["code"], item, person, quantity, points, taken, expires, via)
        )
        if retry:
            again = w.request("POST", "/v1/me/orders", json=body, headers=headers)
            assert (again.status_code, again.json()) == (201, o)
            assert again.headers.get("idempotent-replayed") == "true"
            counted("order replayed")

    def _closed_code(self, order: Order) -> str | None:
        if order.status == "redeemed":
            return "voucher_redeemed"
        if order.status == "cancelled":
            return "voucher_cancelled"
        if order.status == "expired" or order.expires_at <= self.now:
            return "voucher_expired"
        return None

    def _cancel(self, order: Order) -> None:
        """The person cancels through a token of the operator the order was placed through; through another
        operator's token the order is nobody's (404), without ``mall`` it cannot be touched (403)."""
        tokens = self._tokens(order.person)
        if not tokens:  # no operator acts for this person any more
            return
        via, headers, scopes = next((t for t in tokens if t[0] == order.via), tokens[0])
        r = self.world.request("POST", f"/v1/me/orders/{order.id}/cancel", headers=headers)
        if "mall" not in scopes or via != order.via:
            code = (403, "scope_required") if "mall" not in scopes else (404, "order_not_found")
            assert (r.status_code, r.json()["code"]) == code, r.text
            counted(f"cancel refused: {code[1]}")
            return
        closed = self._closed_code(order)
        if closed:
            assert (r.status_code, r.json()["code"]) == (409, closed), r.text
            counted(f"cancel refused: {closed}")
            return
        counted("cancelled")
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["refunded_points"]) == ("cancelled", order.points)
        order.status = "cancelled"
        self._refund(order.person, order.taken, order.via)
        if order.item.stock is not None:
            order.item.stock += order.quantity
        order.item.held[order.person.user_id] -= order.quantity

    def _redeem(self, order: Order) -> None:
        w = self.world
        r = w.request("POST", f"/v1/merchant/vouchers/{order.code}/redeem", headers=w.merchant.headers)
        closed = self._closed_code(order)
        if closed:
            assert (r.status_code, r.json()["code"]) == (409, closed), r.text
            counted(f"redeem refused: {closed}")
            return
        counted("redeemed")
        assert r.status_code == 200, r.text
        assert (r.json()["order_id"], r.json()["status"], r.json()["points"]) == (
            order.id,
            "redeemed",
            order.points,
        )
        order.status = "redeemed"

    # ------------------------------------------------------------------ the authority, time, jobs

    @precondition(lambda self: self.people)
    @rule(data=st.data(), points=st.sampled_from([1, 10, 57, 150, 1000]))
    def clawback(self, data, points):
        STATS["rules"]["clawback"] = STATS["rules"].get("clawback", 0) + 1
        self._clawback(data.draw(st.sampled_from(self.people)), points)

    def _clawback(self, person: Person, points: int) -> None:
        w = self.world
        r = w.request(
            "POST",
            f"/v1/points/accounts/{person.user_id}/clawback",
            json={"points": points, "reason": "model fraud"},
            headers=bearer(w.authority),
        )
        if not person.has_account:
            assert (r.status_code, r.json()["code"]) == (404, "account_not_found"), r.text
            counted("clawback refused: account_not_found")
            return
        if self.usable(person) < points:
            assert (r.status_code, r.json()["code"]) == (409, "insufficient_points"), r.text
            counted("clawback refused: insufficient_points")
            return
        counted("clawback")
        assert r.status_code == 200, r.text
        self._debit(person, points, "clawback")
        assert (r.json()["points"], r.json()["balance_after"]) == (points, person.ledger)

    @rule(days=st.sampled_from([1, 4, 30, 400, 731]), run_jobs=st.booleans())
    def move_the_clock(self, days, run_jobs):
        STATS["rules"]["move_the_clock"] = STATS["rules"].get("move_the_clock", 0) + 1
        self.world.moment = self.now + timedelta(days=days, minutes=7)
        clock.freeze(self.world.moment)
        counted(f"clock moved {days} days")
        if run_jobs:
            self.run_the_expiry_jobs()

    @rule()
    def run_the_expiry_jobs(self):
        """The points expiry job, then the voucher expiry job, at the (frozen) platform time."""
        STATS["rules"]["run_the_expiry_jobs"] = STATS["rules"].get("run_the_expiry_jobs", 0) + 1
        self.world.bridge.run(points_tasks.expire_all())
        for p in self.people:
            due = sum(v for x, v in p.lots.items() if x <= self.now and v > 0)
            ops = set().union(
                *(p.lot_ops.get(x, set()) for x, v in p.lots.items() if x <= self.now and v > 0)
            )
            for x in p.lots:
                if x <= self.now:
                    p.lots[x] = 0
            if due:
                counted("lots expired")
                p.ledger -= due
                p.entries += 1
                self._log(p, "expire", -due, ops)
        self.world.bridge.run(mall_tasks.expire_all())
        for order in self.orders:
            if order.status != "issued" or order.expires_at > self.now:
                continue
            order.status = "expired"
            counted(f"voucher expired: {order.item.policy}")
            if order.item.stock is not None:
                order.item.stock += order.quantity
            if order.item.policy == "refund":
                self._refund(order.person, order.taken, order.via)
                order.item.held[order.person.user_id] -= order.quantity

    # ------------------------------------------------------------------ after every step

    @invariant()
    def ledger_verifies_and_the_model_holds(self):
        STATS["steps"] += 1
        w = self.world

        async def violations():
            async with db.sessionmaker()() as session:
                found = await verify(session)
                await session.rollback()
            return found

        assert w.bridge.run(violations()) == []

        async def ledgers():  # every person's whole ledger, as the person's own export reads it
            async with db.sessionmaker()() as session:
                found = [
                    (await points_service.ledger(session, uuid.UUID(p.user_id), 200, None))["items"]
                    for p in self.people
                ]
                await session.rollback()
            return found

        for p, entries in zip(self.people, w.bridge.run(ledgers()), strict=True):
            assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
                (k, a, b) for k, a, b, _ in reversed(p.log)
            ]
            assert (len(p.log), p.log[-1][2] if p.log else 0) == (p.entries, p.ledger)
            for via, headers, _ in self._tokens(p):
                r = w.request("GET", "/v1/me/account", headers=headers)
                assert r.status_code == 200, r.text
                account = r.json()
                expiring = [
                    (datetime.fromisoformat(e["expires_at"]), e["points"]) for e in account["expiring"]
                ]
                assert expiring == sorted((x, v) for x, v in p.lots.items() if x > self.now and v > 0)
                assert (account["balance"], account["lifetime_points"]) == (self.usable(p), p.lifetime)
                r = w.request("GET", "/v1/me/ledger", params={"limit": 3}, headers=headers)
                assert r.status_code == 200, r.text
                seen = [(k, a, b) for k, a, b, ops in reversed(p.log) if via in ops][:3]
                assert [(e["kind"], e["amount"], e["balance_after"]) for e in r.json()["items"]] == seen, via
        for item in self.items:
            r = w.request("GET", f"/v1/mall/items/{item.id}")
            assert r.json()["stock"] == item.stock

    def teardown(self):
        async def chain():
            async with db.sessionmaker()() as session:
                result = await audit.verify(session)
                await session.rollback()
            return result

        result = self.world.bridge.run(chain())
        assert result.ok, result.broken


async def _rules() -> list[Rule]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT version, points_per_gram, daily_cap_points, type_daily_caps, lot_lifetime_days, effective_from,"
                " effective_to FROM exchange_rule_versions WHERE status IN ('published', 'retired')"
                " ORDER BY effective_from"
            )
        )
        return [
            Rule(
                r.version,
                Decimal(r.points_per_gram),
                r.daily_cap_points,
                r.type_daily_caps or {},
                r.lot_lifetime_days,
                r.effective_from,
                r.effective_to,
            )
            for r in rows
        ]


@pytest.fixture
async def world(client, settings, monkeypatch):
    """Operators, a merchant and a behaviour type of the test's own; the clock released afterwards."""
    await ensure_rule()
    monkeypatch.setattr(settings, "voucher_guess_limit_per_minute", 0)  # guessing is tested in tests/security
    monkeypatch.setattr(settings, "otp_per_phone_per_hour", 10_000)  # the budgets of codes: tests/oauth
    monkeypatch.setattr(settings, "otp_per_ip_per_hour", 10_000)
    btype = await make_methodology(factor=str(FACTOR), max_record=str(MAX_RECORD), max_day=None)
    authority = await authority_token(client)
    operators = {
        "a": await make_operator(client, authority),
        "b": await make_operator(client, authority),
        "c": await oauth_operator(client, trusted=False),  # people confirm it themselves
    }
    merchant = await make_org(client, "merchant", authority=authority)
    w = World(
        client, Bridge(asyncio.get_running_loop()), operators, merchant, authority, btype, await _rules()
    )
    w.idempotency_ttl_hours = settings.idempotency_ttl_hours
    w.record_max_age_days = settings.record_max_age_days
    STATS.update(examples=0, steps=0, requests=0, checks=0, outcomes={}, rules={})
    try:
        yield w
    finally:
        clock.freeze(None)
        clock.set_offset(timedelta(0))


async def test_the_api_follows_the_reference_model(world, capsys):
    machine = type("Machine", (LedgerMachine,), {"world": world})
    settings_ = hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        stateful_step_count=STEPS,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    await asyncio.to_thread(hypothesis.stateful.run_state_machine_as_test, machine, settings=settings_)
    with capsys.disabled():
        print(json.dumps({"model": STATS}, sort_keys=True))
    assert STATS["steps"] >= MAX_EXAMPLES * 5


def _walk(m: LedgerMachine) -> None:
    """Orders, cancellation, redemption, both expiry jobs and clawback, in an order that reaches every
    branch: refused orders (limit, stock, points), a refunded and a forfeited voucher expiry, lots
    expired by time before the job runs, then by the job, and a batch retried after its key died."""
    step = m.ledger_verifies_and_the_model_holds
    m.first_people()
    m.setup_items()
    step()
    a0, a1, b0 = m.people
    limited, open_ = (
        m.items
    )  # 40 points, 3 in stock, 2 a person, 5 days, refund | 25, unlimited, 40 days, forfeit
    m._order(a0, limited, 2, retry=True)
    step()
    m._order(a0, limited, 1)  # per_user_limit_exceeded: a0 holds 2
    m._order(a1, limited, 2)  # out_of_stock: 1 left
    m._order(a1, open_, 1)
    m._order(b0, open_, 1)
    step()
    first, a1_open, b0_open = m.orders
    m._cancel(first)
    m._order(a0, limited, 1)
    m._redeem(b0_open)
    m._cancel(b0_open)  # voucher_redeemed
    step()
    m._race(
        "a",
        [m._make_record(m.entrustments[1].ext, m.now - timedelta(hours=3), 3.3, unique("ev"), unique("r"))],
    )
    m.move_the_clock(days=6, run_jobs=True)  # a0's second limited order expires: refunded
    step()
    m._redeem(m.orders[-1])  # voucher_expired
    m.move_the_clock(days=45, run_jobs=True)  # a1's open order expires: forfeited
    step()
    m._cancel(a1_open)  # voucher_expired
    m._submit(
        "a",
        [m._make_record(m.entrustments[0].ext, m.now - timedelta(hours=2), 30.0, unique("ev"), unique("r"))],
        unique("batch"),
    )
    m._clawback(a1, 10)
    step()
    m.move_the_clock(days=731, run_jobs=False)  # every lot is past its time; the job has not run
    step()
    m._order(a0, open_, 1)  # insufficient_points
    m._clawback(a0, 1)  # insufficient_points
    m.run_the_expiry_jobs()
    step()
    m._retry()  # the key died long ago: a new request, whose records are too old now
    m._submit(
        "b",
        [m._make_record(m.entrustments[2].ext, m.now - timedelta(hours=1), 12.4, unique("ev"), unique("r"))],
        unique("batch"),
    )
    m._order(b0, open_, 2)
    step()
    m.teardown()


async def test_a_walk_through_every_branch(world):
    machine = type("Machine", (LedgerMachine,), {"world": world})()
    await asyncio.to_thread(_walk, machine)
    outcomes = STATS["outcomes"]
    for expected in (
        "order refused: per_user_limit_exceeded",
        "order refused: out_of_stock",
        "order refused: insufficient_points",
        "cancel refused: voucher_redeemed",
        "redeem refused: voucher_expired",
        "cancel refused: voucher_expired",
        "voucher expired: refund",
        "voucher expired: forfeit",
        "lots expired",
        "clawback",
        "clawback refused: insufficient_points",
        "batch retried after its key expired",
        "record rejected: too_old",
        "batch raced",
        "order replayed",
        "cancelled",
        "redeemed",
    ):
        assert outcomes.get(expected, 0) >= 1, (expected, outcomes)
