"""Bad input in every position of every operation, as every role allowed to call it and anonymously.

Four classes of input used to reach PostgreSQL or Python unchecked and answer 500 (issue 11):
the NUL character, cursors a client forged, times and days at the edges of the calendar, and
integers beyond 64 bits. Here they are put everywhere, by enumeration rather than sampling:

* for each operation of the OpenAPI document a baseline request is built from its schema (the
  required parameters and body fields with plain valid values, the caller's own objects where a
  path names them, a signature over the body of a behaviour batch);
* each position — every path, query and header parameter, ``Idempotency-Key`` on POSTs, every body
  field at any depth (list items, map values), an unknown query parameter — gets each value of
  the four classes, those that fit its type in full (every edge time in a date-time field, every
  huge integer in an integer field) and one of each of the others;
* every ``cursor`` gets every forged cursor.

Each case is one request. No answer may be a 5xx; every error answer is problem+json; a forged
cursor sent by a caller allowed to list is 400 ``invalid_cursor``. Targeted cases with exact
answers follow (``TestExactAnswers``). The run prints how many requests it sent, and their statuses.
"""

import asyncio
import base64
import copy
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
from hypothesis import strategies as st

from app.core.pagination import encode_cursor
from tests.factories import make_org
from tests.factories_mall import make_item
from tests.factories_points import ensure_rule
from tests.factories_scenes import make_scene
from tests.factories_security import ROLES, make_cast
from tests.security.access import ACCESS, ALL_ROLES, ANONYMOUS

NUL = "a\x00b"
EDGE_TIMES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")
EDGE_DAYS = ("0001-01-01", "9999-12-31")
HUGE = (2**70, -(2**70), 2**63)
PROBLEM_JSON = "application/problem+json"
LANES = 6  # requests in flight at once
BATCHES = "/v1/operator/behaviour-batches"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


STRANGER = str(uuid.uuid4())
GENUINE = encode_cursor(["2026-01-01T00:00:00+08:00", STRANGER])
FORGED_CURSORS = (  # what a client can send: none of them a cursor this API gave out
    "garbage",
    NUL,
    "x" * 3000,
    _b64(json.dumps(["2026-01-01T00:00:00+08:00", STRANGER]).encode()),  # the old, unsigned format
    _b64(json.dumps([2**70, "0001-01-01T00:00:00+14:00"]).encode()),
    "v1.{}.{}".format(_b64(json.dumps([2**70, STRANGER]).encode()), GENUINE.rsplit(".", 1)[1]),  # tag kept
    "v2." + GENUINE.split(".", 1)[1],
    GENUINE[:-2],
)
ODD_CURSORS = tuple(  # genuine (signed here) but holding values no list gives out: typed-checked, never a 5xx
    encode_cursor(values) for values in ([2**70, STRANGER], ["0001-01-01T00:00:00+14:00", 1], [NUL, NUL], [])
)


# ---------------------------------------------------------------- the OpenAPI document, walked


@dataclass(frozen=True)
class Position:
    where: str  # path, query, header, body, form
    name: tuple  # the parameter's name, or the body field's path (keys; 0 for a list item)
    schema: dict


class Spec:
    def __init__(self, document: dict):
        self.document = document
        self._patterns: dict[str, str] = {}

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            schema = self.document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def variants(self, schema: dict) -> list[dict]:
        """The non-null alternatives of a schema (``anyOf``/``oneOf``), resolved."""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                return [v for option in schema[key] for v in self.variants(option)]
        return [] if schema.get("type") == "null" else [schema]

    def leaves(self, schema: dict, path: tuple = (), depth: int = 0) -> list[tuple[tuple, dict]]:
        out = []
        for variant in self.variants(schema):
            if depth > 6:
                break
            if variant.get("type") == "object" or "properties" in variant:
                for name, sub in variant.get("properties", {}).items():
                    out += self.leaves(sub, (*path, name), depth + 1)
                extra = variant.get("additionalProperties")
                if isinstance(extra, dict):
                    out += self.leaves(extra, (*path, "k"), depth + 1)
            elif variant.get("type") == "array":
                out += self.leaves(variant.get("items", {}), (*path, 0), depth + 1)
            else:
                out.append((path, variant))
        seen, unique = set(), []
        for path_, leaf in out:  # one leaf per path: the first variant's type decides the values
            if path_ not in seen:
                seen.add(path_)
                unique.append((path_, leaf))
        return unique

    def example(self, schema: dict, depth: int = 0) -> Any:
        """A plain value the schema accepts (required members only)."""
        variants = self.variants(schema)
        if not variants:
            return None
        s = variants[0]
        if "enum" in s:
            return s["enum"][0]
        if "const" in s:
            return s["const"]
        kind = s.get("type")
        if kind == "object" or "properties" in s:
            props = s.get("properties", {})
            return {name: self.example(props[name], depth + 1) for name in s.get("required", []) if depth < 6}
        if kind == "array":
            return [self.example(s.get("items", {}), depth + 1) for _ in range(s.get("minItems", 0))]
        if kind == "integer":
            low = s.get("minimum", s.get("exclusiveMinimum", 0) + 1 if "exclusiveMinimum" in s else 1)
            return min(max(low, 1), s.get("maximum", 10**6))
        if kind == "number":
            return float(min(max(s.get("minimum", 1), 1), s.get("maximum", 10**6)))
        if kind == "boolean":
            return False
        return self._text(s)

    def _text(self, s: dict) -> str:
        fmt = s.get("format")
        if fmt == "date-time":
            return "2026-01-01T00:00:00+08:00"
        if fmt == "date":
            return "2026-01-01"
        if fmt == "uuid":
            return "00000000-0000-4000-8000-000000000000"
        if fmt == "uri":
            return "https://example.com/a.png"
        length = max(s.get("minLength", 1), 1)
        if "pattern" in s:
            return self._matching(s["pattern"], length)
        return "a" * length

    def _matching(self, pattern: str, length: int) -> str:
        if pattern not in self._patterns:
            settings = hypothesis.settings(database=None, derandomize=True)
            self._patterns[pattern] = hypothesis.find(
                st.from_regex(pattern, fullmatch=True), lambda text: len(text) >= length, settings=settings
            )
        return self._patterns[pattern]


@dataclass
class Operation:
    method: str
    path: str
    spec: dict

    def positions(self, spec: Spec) -> list[Position]:
        out = [
            Position(p["in"], (p["name"],), spec.resolve(p.get("schema", {})))
            for p in self.spec.get("parameters", [])
        ]
        if self.method == "POST":
            out.append(Position("header", ("Idempotency-Key",), {"type": "string"}))
        out.append(Position("query", ("unknown",), {"type": "string"}))
        for content_type, content in self.spec.get("requestBody", {}).get("content", {}).items():
            where = "form" if content_type == "application/x-www-form-urlencoded" else "body"
            out += [Position(where, path, leaf) for path, leaf in spec.leaves(content["schema"])]
        return out

    def body_schema(self) -> tuple[str | None, dict | None]:
        for content_type, content in self.spec.get("requestBody", {}).get("content", {}).items():
            return ("form" if content_type == "application/x-www-form-urlencoded" else "body"), content[
                "schema"
            ]
        return None, None


def bad_values(position: Position) -> list[Any]:
    """The values of the classes that fit the position's type, one of each of the others."""
    if position.where == "query" and position.name == ("cursor",):
        return [*FORGED_CURSORS, *ODD_CURSORS]
    if position.name == ("unknown",):  # not the app's: only the middleware's NUL guard reads it
        return [NUL]
    kind, fmt = position.schema.get("type"), position.schema.get("format")
    times = {"date-time": EDGE_TIMES, "date": (*EDGE_DAYS, EDGE_TIMES[0])}.get(fmt, EDGE_TIMES[:1])
    integers = HUGE if kind in ("integer", "number") else HUGE[:1]
    return [NUL, *times, *integers]


# ---------------------------------------------------------------- requests


def _set(body: Any, path: tuple, value: Any, spec: Spec, schema: dict) -> Any:
    """``body`` with the field at ``path`` set to ``value`` (missing containers made from the schema)."""
    if not path:
        return value
    variant = next(iter(spec.variants(schema)), {})
    head, rest = path[0], path[1:]
    if head == 0:
        items = list(body) if isinstance(body, list) and body else [spec.example(variant.get("items", {}))]
        items[0] = _set(items[0], rest, value, spec, variant.get("items", {}))
        return items
    out = dict(body) if isinstance(body, dict) else {}
    props = variant.get("properties", {})
    sub = props.get(head) or (
        variant.get("additionalProperties") if isinstance(variant.get("additionalProperties"), dict) else {}
    )
    current = out.get(head)
    if current is None and rest:
        current = spec.example(sub)
    out[head] = _set(current, rest, value, spec, sub)
    return out


@dataclass
class Request:
    method: str
    path_params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    body_kind: str | None

    def send_kwargs(self, path_template: str) -> dict:
        url = path_template
        for name, value in self.path_params.items():
            url = url.replace("{" + name + "}", quote(str(value), safe=""))
        kwargs: dict[str, Any] = {
            "method": self.method,
            "url": url,
            "headers": dict(self.headers),
            "params": {k: str(v) for k, v in self.query.items()},
        }
        if self.body_kind == "form":
            kwargs["data"] = {k: str(v) for k, v in (self.body or {}).items()}
        elif self.body_kind == "body":
            kwargs["content"] = json.dumps(self.body).encode()
            kwargs["headers"]["Content-Type"] = "application/json"
        return kwargs


def baseline(op: Operation, spec: Spec, known: dict[str, str]) -> Request:
    path_params, query, headers = {}, {}, {}
    for p in op.spec.get("parameters", []):
        value = known.get(p["name"]) or spec.example(p.get("schema", {}))
        if p["in"] == "path":
            path_params[p["name"]] = value
        elif p.get("required"):
            (query if p["in"] == "query" else headers)[p["name"]] = value
    body_kind, schema = op.body_schema()
    body = spec.example(schema) if schema else None
    return Request(op.method, path_params, query, headers, body, body_kind)


def cases(op: Operation, spec: Spec, base: Request, allowed: bool):
    """``(what, value, request)``: each value in each position for a caller allowed to call ``op``.

    A caller refused before anything is read gets one request per class, its value in every position.
    """
    positions = op.positions(spec)
    if allowed:
        for position in positions:
            for value in bad_values(position):
                yield f"{position.where} {position.name}", value, mutated(base, op, position, value, spec)
        return
    for value in (NUL, EDGE_TIMES[0], HUGE[0]):
        request = base
        for position in positions:
            if position.name != ("unknown",):  # the middleware would answer before the refusal
                request = mutated(request, op, position, value, spec)
        yield "every position", value, request


def mutated(base: Request, op: Operation, position: Position, value: Any, spec: Spec) -> Request:
    request = copy.deepcopy(base)
    text = value if isinstance(value, str) else str(value)
    name = position.name[0] if position.name else None
    if position.where == "path":
        request.path_params[name] = text
    elif position.where == "query":
        request.query[name] = text
    elif position.where == "header":
        request.headers[name] = text
    elif position.where == "form":
        request.body = {**(request.body or {}), name: text}
    else:
        request.body = _set(request.body, position.name, value, spec, op.body_schema()[1])
    return request


# ---------------------------------------------------------------- who calls


def callers(method: str, path: str) -> list[str]:
    """Every role the access table allows, and anonymous; a public operation: anonymous and the authority."""
    allowed = set(ACCESS.get((method, path), ALL_ROLES))
    if allowed == set(ALL_ROLES):
        return [ANONYMOUS, "authority"]
    return [role for role in ROLES if role in allowed or role == ANONYMOUS]


@pytest.fixture
async def cast(client):
    await ensure_rule()
    return await make_cast(client)


async def _known_ids(client, cast) -> dict[str, dict[str, str]]:
    """Real objects by path parameter and role, so that requests get past the 404s."""
    spare = await make_org(client, "operator", authority=cast.authority)
    scene = await make_scene(client, cast.orgs["scene_operator"])
    item = await make_item(client, cast.orgs["merchant"])
    common = {
        "external_user_id": cast.user["external_user_id"],
        "user_id": cast.user["user_id"],
        "expert_id": cast.expert_id,
        "scene_id": scene["id"],
        "item_id": item["id"],
    }
    own = {role: {"org_id": org.id} for role, org in cast.orgs.items()}
    own["operator"] = {"org_id": cast.operator.id}
    return {role: {**common, **own.get(role, {"org_id": spare.id})} for role in ROLES}


def _operations(document: dict) -> list[Operation]:
    ops = [
        Operation(method.upper(), path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    return sorted(ops, key=lambda op: (op.method == "DELETE", op.path, op.method))  # destructive calls last


async def test_bad_input_in_every_position_never_answers_5xx(app, client, cast, capsys):
    started = time.monotonic()
    spec = Spec(app.openapi())
    known = await _known_ids(client, cast)
    statuses: Counter = Counter()
    sent = Counter()
    failures: list[str] = []
    operations = _operations(spec.document)
    lanes = asyncio.Semaphore(LANES)

    async def send(op: Operation, role: str, what: str, value: Any, request: Request) -> None:
        kwargs = request.send_kwargs(op.path)
        kwargs["headers"] = {**cast.headers[role], **kwargs["headers"]}
        if op.method == "POST":
            kwargs["headers"].setdefault("Idempotency-Key", uuid.uuid4().hex)
        if op.path == BATCHES and role == "operator":
            kwargs["headers"].setdefault(
                "x-content-signature", cast.operator.sign(kwargs.get("content", b""))
            )
        async with lanes:
            response = await client.request(**kwargs)
        sent[role] += 1
        statuses[response.status_code] += 1
        case = f"{op.method} {op.path} as {role}: {what} = {repr(value)[:80]}"
        if response.status_code >= 500:
            failures.append(f"{case} → {response.status_code} {response.text[:300]}")
        elif response.status_code >= 400 and not response.headers.get("content-type", "").startswith(
            PROBLEM_JSON
        ):
            failures.append(f"{case} → {response.status_code} not problem+json")
        elif (
            what == "query ('cursor',)"
            and value in FORGED_CURSORS
            and (response.status_code, response.json().get("code")) != (400, "invalid_cursor")
        ):
            failures.append(f"{case} → {response.status_code} {response.text[:200]}, not invalid_cursor")

    for op in operations:  # one operation at a time (destructive ones last); its cases side by side
        for role in callers(op.method, op.path):
            allowed = role in ACCESS.get((op.method, op.path), ALL_ROLES)
            base = baseline(op, spec, known[role])
            await asyncio.gather(*(send(op, role, *case) for case in cases(op, spec, base, allowed)))
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            json.dumps(
                {
                    "bad_input": {
                        "operations": len(operations),
                        "requests": sum(sent.values()),
                        "by_role": dict(sent),
                        "by_status": {str(k): v for k, v in sorted(statuses.items())},
                        "failures": len(failures),
                        "seconds": round(elapsed, 1),
                    }
                }
            )
        )
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:60])


# ---------------------------------------------------------------- exact answers


def assert_problem(response, status: int, code: str) -> None:
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


async def _count(sql: str, **params) -> int:
    import sqlalchemy as sa

    from app.core import db

    async with db.session_scope() as session:
        return (await session.execute(sa.text(sql), params)).scalar_one()


class TestNulText:
    async def test_a_nul_in_a_name_is_refused_and_nothing_is_written(self, client):
        from tests.factories import application

        body = application(name="Acme\x00 Ltd")
        r = await client.post("/v1/organizations", json=body)
        assert_problem(r, 422, "validation_error")
        assert r.json()["errors"][0]["loc"] == ["body", "name"]
        assert (
            await _count("SELECT count(*) FROM organizations WHERE credit_code = :c", c=body["credit_code"])
            == 0
        )
        assert (
            await _count("SELECT count(*) FROM staff_users WHERE username = :u", u=body["admin"]["username"])
            == 0
        )

    async def test_a_nul_in_an_item_title_or_description_is_refused(self, client):
        from tests.factories_mall import item_body, make_merchant

        merchant = await make_merchant(client)
        for field in ("title", "description"):
            r = await client.post(
                "/v1/mall/items", json=item_body(**{field: "cup\x00"}), headers=merchant.headers
            )
            assert_problem(r, 422, "validation_error")
        assert (
            await _count("SELECT count(*) FROM mall_items WHERE merchant_id = :m", m=uuid.UUID(merchant.id))
            == 0
        )

    @pytest.mark.parametrize(
        "url",
        [
            "/v1/public/certificates/CN%00",
            "/v1/public/operators?limit=1%00",
            "/v1/methodologies?behaviour_type=a%00b",
        ],
    )
    async def test_a_nul_in_the_path_or_query_is_refused(self, client, url):
        assert_problem(await client.get(url), 422, "validation_error")

    async def test_a_nul_in_a_record_id_or_evidence_rejects_that_record_only(self, client):
        from tests.factories import make_operator
        from tests.factories_points import enrol, make_methodology, record, submit

        await ensure_rule()
        operator = await make_operator(client)
        person = await enrol(client, operator)
        btype = await make_methodology()
        good = record(person["external_user_id"], btype)
        bad_id = record(person["external_user_id"], btype, record_id="r\x00")
        bad_evidence = record(person["external_user_id"], btype, evidence="e\x00")
        r = await submit(client, operator, [bad_id, good, bad_evidence])
        assert r.status_code == 200, r.text
        assert [(o["status"], o["code"]) for o in r.json()["results"]] == [
            ("rejected", "invalid_record"),
            ("accepted", None),
            ("rejected", "invalid_record"),
        ]
        assert (
            await _count(
                "SELECT count(*) FROM behaviour_records WHERE user_id = :u", u=uuid.UUID(person["user_id"])
            )
            == 1
        )


class TestForgedCursors:
    async def test_only_a_cursor_this_api_gave_out_is_read(self, client):
        from tests.factories import make_org

        for _ in range(2):
            await make_org(client, "verifier")
        first = (await client.get("/v1/public/verifiers", params={"limit": 1})).json()
        genuine = first["next_cursor"]
        second = await client.get("/v1/public/verifiers", params={"limit": 1, "cursor": genuine})
        assert second.status_code == 200 and second.json()["items"] != first["items"]
        head, payload, tag = genuine.split(".")
        values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        for forged in (
            f"{head}.{_b64(json.dumps(['A', values[1]]).encode())}.{tag}",  # tampered: another name, same tag
            f"{head}.{payload}.{tag[:-1]}{'A' if tag[-1] != 'A' else 'B'}",  # tampered tag
            payload,  # the old format: the bare base64 JSON
            _b64(json.dumps([2**70, "0001-01-01T00:00:00+14:00"]).encode()),
            "v1.\x00.\x00",
            "x" * 5000,
        ):
            r = await client.get("/v1/public/verifiers", params={"cursor": forged})
            assert_problem(r, 400, "invalid_cursor")

    async def test_a_cursor_with_nul_is_an_invalid_cursor_not_a_validation_error(self, client):
        assert_problem(await client.get("/v1/public/operators?cursor=%00"), 400, "invalid_cursor")

    async def test_a_genuine_cursor_of_another_list_is_refused_where_its_values_do_not_fit(
        self, client, cast
    ):
        other = encode_cursor([41])  # the ledger's kind of cursor (an entry id)
        r = await client.get("/v1/me/behaviours", params={"cursor": other}, headers=cast.user_headers)
        assert_problem(r, 400, "invalid_cursor")


class TestCalendarEdges:
    @pytest.mark.parametrize("day", ["0001-01-01T00:00:00+14:00", "0001-01-01", "9999-12-31"])
    async def test_a_report_of_the_first_or_last_day_of_the_calendar(self, client, day):
        from tests.factories import authority_token, bearer

        authority = await authority_token(client)
        r = await client.get(
            "/v1/reports/used-points", params={"from": day, "to": "2026-01-01"}, headers=bearer(authority)
        )
        assert_problem(r, 422, "validation_error")
        assert r.json()["errors"][0]["loc"] == ["query", "from"]

    async def test_a_sale_window_or_consent_at_the_edges(self, client):
        from tests.factories import make_operator
        from tests.factories_mall import item_body, make_merchant
        from tests.factories_points import phone

        merchant = await make_merchant(client)
        for edge in EDGE_TIMES:
            r = await client.post(
                "/v1/mall/items", json=item_body(sale_starts_at=edge), headers=merchant.headers
            )
            assert_problem(r, 422, "validation_error")
        operator = await make_operator(client)
        body = {
            "external_user_id": "edge",
            "identifier": {"type": "phone", "value": phone()},
            "consent": {"agreement_version": "v1", "accepted_at": EDGE_TIMES[0]},
        }
        assert_problem(
            await client.post("/v1/operator/users", json=body, headers=operator.headers),
            422,
            "validation_error",
        )


class TestHugeIntegers:
    async def test_a_price_filter_beyond_64_bits(self, client):
        for price in (2**70, 2**63, -(2**70)):
            r = await client.get("/v1/mall/items", params={"min_price": price})
            assert_problem(r, 422, "validation_error")
        r = await client.get("/v1/mall/items", params={"min_price": 2**63 - 1})
        assert (r.status_code, r.json()["items"]) == (200, [])

    async def test_a_quantity_or_limit_beyond_64_bits(self, client, cast):
        from tests.factories_mall import make_item

        item = await make_item(client, cast.orgs["merchant"])
        headers = {**cast.user_headers, "Idempotency-Key": uuid.uuid4().hex}
        r = await client.post(
            "/v1/me/orders", json={"item_id": item["id"], "quantity": 2**70}, headers=headers
        )
        assert_problem(r, 422, "validation_error")
        assert_problem(
            await client.get("/v1/public/operators", params={"limit": 2**70}), 422, "validation_error"
        )


class TestNulInJose:
    """NUL in ``kid`` or ``jti``: the path's own 401, never a lookup of the NUL."""

    async def test_a_user_token(self, client, cast):
        from app.auth import keys
        from app.core import security

        token = cast.user_headers["Authorization"].removeprefix("Bearer ")
        claims = security.unverified_claims(token)
        real = keys.active()
        for kid, jti in (("a\x00b", claims["jti"]), (real.kid, "a\x00b")):
            forged = security.sign_jwt(
                {**claims, "jti": jti}, security.SigningKey(kid, real.algorithm, real.private_pem, {})
            )
            r = await client.get("/v1/me/account", headers={"Authorization": f"Bearer {forged}"})
            assert_problem(r, 401, "invalid_token")

    async def test_a_client_assertion(self, client, cast):
        from app.core import security

        op = cast.operator
        assertions = [
            security.sign_jwt(
                {
                    "iss": op.id,
                    "sub": op.id,
                    "aud": "http://test/v1/auth/token",
                    "jti": uuid.uuid4().hex,
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 60,
                },
                security.SigningKey("a\x00b", op.algorithm, op.private_pem, {}),
            ),
            op.assertion(jti="a\x00b"),
        ]
        for assertion in assertions:
            r = await client.post(
                "/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion": assertion,
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                },
            )
            assert_problem(r, 401, "malformed_assertion")

    async def test_a_batch_signature(self, client, cast):
        from app.core import security

        op = cast.operator
        body = json.dumps({"records": [{"record_id": "r1"}]}).encode()
        signature = security.sign_detached(body, op.private_pem, op.algorithm, "a\x00b")
        headers = {
            **op.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
            "X-Content-Signature": signature,
        }
        r = await client.post(BATCHES, content=body, headers=headers)
        assert_problem(r, 401, "malformed_signature")
        assert await _count("SELECT count(*) FROM behaviour_batches WHERE signature = :s", s=signature) == 0
