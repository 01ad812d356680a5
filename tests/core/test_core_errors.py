"""The error contract (RFC 9457 problem+json with a stable code) and the commit-per-request route."""

import random

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from app.auth.dependencies import Operator, Session
from app.core import audit, db, errors
from app.core.errors import Conflict, Forbidden
from app.core.observability import RequestMiddleware
from app.core.routing import CommitRoute
from app.organizations import service as org_service
from tests.factories import application, assert_problem, authority_token, bearer, make_operator

PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance", "request_id"}


async def _refuse() -> None:
    raise Forbidden("a dependency said no", code="dependency_refused")


async def _explode() -> None:
    raise LookupError("dependency internals: dsn=postgresql://secret")


def probe_app() -> FastAPI:
    """A throw-away app on the session's database, with routes that misbehave on purpose."""
    app = FastAPI()
    errors.install(app)
    router = APIRouter(prefix="/probe", route_class=CommitRoute)

    @router.get("/operator")
    async def operator_only(principal: Operator) -> dict:
        return {"role": principal.role, "org": str(principal.org_id)}

    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internals: password=hunter2")

    @router.get("/refused", dependencies=[Depends(_refuse)])
    async def refused() -> dict:
        return {}

    @router.get("/dependency-boom", dependencies=[Depends(_explode)])
    async def dependency_boom() -> dict:
        return {}

    @router.post("/write-then-conflict/{value}")
    async def write_then_conflict(value: int, session: Session) -> dict:
        await session.execute(sa.text("INSERT INTO probe_rows (id) VALUES (:v)"), {"v": value})
        audit.record(session, actor="probe", action="probe.write", subject_type="probe", subject_id=value)
        raise Conflict("changed my mind")

    @router.post("/write-then-400/{value}")
    async def write_then_400(value: int, session: Session):
        await session.execute(sa.text("INSERT INTO probe_rows (id) VALUES (:v)"), {"v": value})
        return JSONResponse({"no": True}, status_code=400)

    @router.post("/write/{value}")
    async def write(value: int, session: Session, twice: bool = False) -> dict:
        await session.execute(sa.text("INSERT INTO probe_rows (id) VALUES (:v)"), {"v": value})
        if twice:  # the deferred unique constraint fails at COMMIT, after the handler returned
            await session.execute(sa.text("INSERT INTO probe_rows (id) VALUES (:v)"), {"v": value})
        return {"written": value}

    @router.get("/no-connection")
    async def no_connection(request: Request, direct: bool = False) -> dict:
        # a role PostgreSQL lets open no connection: it refuses as it does when max_connections is reached
        url = request.app.state.full_url
        if direct:
            await asyncpg.connect(db.plain_url(url))
        engine = db.create_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        finally:
            await engine.dispose()
        return {}

    app.include_router(router)
    app.add_middleware(RequestMiddleware)
    return app


FULL_ROLE = "carbon_probe_full"
"""A login role with CONNECTION LIMIT 0 (not a superuser, so the limit holds)."""


@pytest.fixture(scope="module")
async def probe(app):
    async with db.session_scope() as session:
        await session.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS probe_rows (id bigint,"
                " CONSTRAINT probe_rows_id_key UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await session.execute(
            sa.text(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{FULL_ROLE}') THEN"
                f" CREATE ROLE {FULL_ROLE} LOGIN CONNECTION LIMIT 0; END IF; END $$"
            )
        )
    probing = probe_app()
    url = sa.engine.make_url(app.state.urls.database_url).set(username=FULL_ROLE, password=None)
    probing.state.full_url = url.render_as_string(hide_password=False)
    transport = httpx.ASGITransport(app=probing, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    async with db.session_scope() as session:
        await session.execute(sa.text("DROP TABLE probe_rows"))


async def probe_rows(value: int) -> int:
    async with db.session_scope() as session:
        return (
            await session.execute(sa.text("SELECT count(*) FROM probe_rows WHERE id = :v"), {"v": value})
        ).scalar()


def value() -> int:
    return random.randint(1, 2**62)


class TestRequestErrors:
    async def test_malformed_json(self, client):
        r = await client.post(
            "/v1/organizations", content=b'{"kind": "operator",', headers={"Content-Type": "application/json"}
        )
        body = assert_problem(r, 400, "malformed_json")
        assert body["title"] == "Malformed JSON"
        assert body["instance"] == "/v1/organizations"

    async def test_missing_fields(self, client):
        r = await client.post("/v1/organizations", json={"kind": "operator"})
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"] == [
            {"loc": ["body", "name"], "msg": "Field required"},
            {"loc": ["body", "credit_code"], "msg": "Field required"},
            {"loc": ["body", "admin"], "msg": "Field required"},
        ]
        assert set(body) == PROBLEM_KEYS | {"errors"}

    async def test_body_of_the_wrong_type(self, client):
        r = await client.post("/v1/organizations", json=[1, 2])
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["loc"] == ["body"]

    async def test_bad_path_parameter(self, client):
        token = await authority_token(client)
        r = await client.get("/v1/organizations/not-a-uuid", headers=bearer(token))
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["loc"] == ["path", "org_id"]

    async def test_unknown_route(self, client):
        body = assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
        assert body["title"] == "Not Found"

    async def test_wrong_method(self, client):
        r = await client.delete("/v1/organizations")
        body = assert_problem(r, 405, "method_not_allowed")
        assert body["title"] == "Method Not Allowed"
        assert r.headers["allow"] == "GET, POST"


class TestBodyLimit:
    @pytest.fixture(autouse=True)
    def small_limit(self, settings, monkeypatch):
        monkeypatch.setattr(settings, "max_body_bytes", 1000)

    async def test_declared_length_over_the_limit(self, client):
        r = await client.post("/v1/organizations", json=application(name="x" * 2000))
        body = assert_problem(r, 413, "payload_too_large")
        assert body["detail"] == "the body is limited to 1000 bytes"
        assert r.headers["x-content-type-options"] == "nosniff"

    async def test_chunked_body_over_the_limit(self, client):
        async def chunks():
            for _ in range(20):
                yield b" " * 100

        r = await client.post(
            "/v1/organizations", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
        body = assert_problem(r, 413, "payload_too_large")
        assert body["detail"] == "the body is limited to 1000 bytes"

    async def test_chunked_form_over_the_limit(self, client):
        async def chunks():
            yield b"grant_type=password&username=a&password="
            for _ in range(20):
                yield b"x" * 100

        r = await client.post(
            "/v1/auth/token", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert_problem(r, 413, "payload_too_large")

    async def test_chunked_body_under_the_limit_passes(self, client):
        payload = httpx.Request("POST", "/", json=application()).content

        async def chunks():
            yield payload[:50]
            yield payload[50:]

        r = await client.post(
            "/v1/organizations", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 201, r.text

    async def test_nonsense_content_length(self, client):
        r = await client.post("/v1/organizations", content=b"{}", headers={"Content-Length": "abc"})
        assert_problem(r, 413, "payload_too_large")


class TestUnexpectedErrors:
    async def test_exception_in_a_route_is_a_500_without_internals(self, client, monkeypatch):
        async def broken(session, data):
            raise RuntimeError("secret internals: password=hunter2")

        monkeypatch.setattr(org_service, "apply", broken)
        r = await client.post("/v1/organizations", json=application(), headers={"X-Request-ID": "trace-42"})
        body = assert_problem(r, 500, "internal_error")
        assert body["request_id"] == "trace-42"
        assert "hunter2" not in r.text
        assert "RuntimeError" not in r.text
        assert body["detail"] == "Something went wrong on our side; quote the request id when reporting it."

    async def test_probe_route_exception(self, probe):
        r = await probe.get("/probe/boom")
        assert_problem(r, 500, "internal_error")
        assert "hunter2" not in r.text
        assert r.headers["x-frame-options"] == "DENY"

    async def test_exception_in_a_dependency(self, probe):
        r = await probe.get("/probe/dependency-boom")
        assert_problem(r, 500, "internal_error")
        assert "secret" not in r.text

    async def test_domain_error_in_a_dependency(self, probe):
        body = assert_problem(await probe.get("/probe/refused"), 403, "dependency_refused")
        assert body["detail"] == "a dependency said no"

    @pytest.mark.parametrize("direct", [False, True])
    async def test_a_database_taking_no_more_connections_is_a_503_to_retry(self, probe, direct, caplog):
        with caplog.at_level("WARNING"):
            r = await probe.get("/probe/no-connection", params={"direct": direct})
        body = assert_problem(r, 503, "database_unavailable")
        assert body["detail"] == (
            "The database takes no more connections at the moment; nothing was done. Retry shortly."
        )
        assert r.headers["retry-after"] == "1"
        assert not [
            rec for rec in caplog.records if rec.levelname == "ERROR"
        ]  # expected under load: a warning
        assert [rec.getMessage() for rec in caplog.records if rec.levelname == "WARNING"] == [
            "database unavailable"
        ]

    async def test_the_error_is_logged_with_the_request_id(self, probe, caplog):
        with caplog.at_level("ERROR"):
            r = await probe.get("/probe/boom", headers={"X-Request-ID": "log-me-1"})
        assert r.status_code == 500
        records = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "log-me-1"]
        assert len(records) == 1
        assert records[0].exc_info[0] is RuntimeError


class TestCommitRoute:
    async def test_domain_error_rolls_back_writes_and_audit_entries(self, probe):
        v = value()
        r = await probe.post(f"/probe/write-then-conflict/{v}")
        assert_problem(r, 409, "conflict")
        assert await probe_rows(v) == 0
        async with db.session_scope() as session:
            entries = (
                await session.execute(
                    sa.text(
                        "SELECT count(*) FROM audit_entries WHERE subject_type = 'probe' AND subject_id = :v"
                    ),
                    {"v": str(v)},
                )
            ).scalar()
        assert entries == 0

    async def test_error_response_rolls_back(self, probe):
        v = value()
        r = await probe.post(f"/probe/write-then-400/{v}")
        assert r.status_code == 400
        assert await probe_rows(v) == 0

    async def test_success_is_committed_before_the_response(self, probe):
        v = value()
        r = await probe.post(f"/probe/write/{v}")
        assert r.json() == {"written": v}
        assert await probe_rows(v) == 1

    async def test_a_failed_commit_never_answers_success(self, probe):
        v = value()
        r = await probe.post(f"/probe/write/{v}?twice=true")
        assert_problem(r, 500, "internal_error")
        assert await probe_rows(v) == 0

    async def test_operator_only_route_with_a_client_credentials_token(self, client, probe):
        operator = await make_operator(client)
        r = await probe.get("/probe/operator", headers=operator.headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"role": "operator", "org": operator.id}
        r = await probe.get("/probe/operator", headers=bearer(operator.extra["admin_token"]))
        assert r.status_code == 200  # the operator's staff act as the operator too
        authority = await authority_token(client)
        r = await probe.get("/probe/operator", headers=bearer(authority))
        assert_problem(r, 403, "forbidden_role")
