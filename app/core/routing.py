"""The route class every router uses: one session and one commit per request, before the response.

Since FastAPI 0.118 the code after ``yield`` in a dependency runs after the response is sent, so a
failed commit there would still have answered 200. Here the commit happens inside the route
handler: the response goes out only once the transaction (with its idempotency record and audit
entries) is durable. Errors roll everything back.
"""

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.core import audit, caching, callers, db, idempotency
from app.core.errors import DomainError, documented_codes, responses, with_codes


class CommitRoute(APIRoute):
    """Also documents the errors of the route's dependencies: a dependency function carrying
    ``problem_responses`` (the auth dependencies do) adds them to the route's ``responses``; one
    carrying ``cache_control`` makes the route's anonymous answers cacheable (:mod:`app.core.caching`);
    one carrying ``reads_only`` makes a GET's raw statements run without a transaction
    (:func:`app.core.db.raw_connection`): only for routes that read and write nothing."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        found: list[type[DomainError]] = []
        for call in _dependency_calls(self.dependant):
            for err in getattr(call, "problem_responses", ()):
                if isinstance(err, tuple):  # (error, methods it applies to)
                    err, methods = err
                    if not set(methods) & (self.methods or set()):
                        continue
                if err not in found:
                    found.append(err)
        for status, entry in responses(
            *found
        ).items():  # a copy: routes may share the dicts they were declared with
            self.responses[status] = with_codes(self.responses.get(status), documented_codes(entry))
        self.cache_control: str | None = None  # public GETs: see app.core.caching
        if "GET" in (self.methods or ()):
            for call in _dependency_calls(self.dependant):  # the route's own come after its router's
                self.cache_control = getattr(call, "cache_control", None) or self.cache_control
        if self.cache_control is not None:
            caching.document(self.responses)
        # a GET whose dependency says it only reads (``reads_only``): no BEGIN/COMMIT round trips
        self.reads_only = "GET" in (self.methods or ()) and any(
            getattr(call, "reads_only", False) for call in _dependency_calls(self.dependant)
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run_in_transaction(request: Request) -> Response:
            async with db.sessionmaker()() as session:
                request.state.session = session
                if self.reads_only:
                    session.info[db.READS_ONLY] = True
                response = await _answer(request, session, handler(request), session.commit, session.rollback)
                if self.cache_control is not None and response.status_code < 400:
                    return caching.answer(request, response, self.cache_control)
                return response

        return run_in_transaction


async def _answer(
    request: Request,
    session: AsyncSession,
    work: Awaitable[Response],
    commit: Callable[[], Awaitable[Any]],
    rollback: Callable[[], Awaitable[Any]],
) -> Response:
    """The request's work, then its end: committed with its audit entries and its idempotency record, or
    rolled back (a replayed key, a refusal, an error)."""
    try:
        response = await work
    except idempotency.Replay as replay:
        await rollback()
        return replay.response
    except DomainError as exc:
        await _end_refused(session, exc.keep_changes, commit, rollback)
        raise
    except BaseException:
        await rollback()
        raise
    if response.status_code >= 400:
        # a page that refuses but counted something (a one-time code's attempt) keeps it
        await _end_refused(session, getattr(request.state, "keep_changes", False), commit, rollback)
        return response
    idempotency.check_taken(session)
    callers.check_taken(session)
    # the audit entries and the response kept under its Idempotency-Key: one statement
    await audit.flush(session, stored=idempotency.record(request, response))
    await commit()
    return response


async def _end_refused(
    session: AsyncSession,
    keep: bool,
    commit: Callable[[], Awaitable[Any]],
    rollback: Callable[[], Awaitable[Any]],
) -> None:
    """A refused request's transaction: rolled back, unless what it wrote must stand (``keep_changes``)."""
    if keep:
        await audit.flush(session)
        await commit()
    else:
        await rollback()


def _dependency_calls(dependant: Dependant):
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


async def get_session(request: Request) -> AsyncSession:
    """The request's session (opened by :class:`CommitRoute`); async, so no thread hop per request."""
    return request.state.session


def _direct_arguments(route: APIRoute) -> list[tuple[str, Callable[..., Any] | None]]:
    """The endpoint's session (None) and its caller (the dependency's ``resolve``), by parameter name; any
    other dependency is refused when the route is declared."""
    arguments: list[tuple[str, Callable[..., Any] | None]] = []
    for sub in route.dependant.dependencies:
        if sub.call is get_session:
            arguments.append((str(sub.name), None))
        elif hasattr(sub.call, "resolve"):
            arguments.append((str(sub.name), sub.call.resolve))  # type: ignore[union-attr]
        else:
            raise TypeError(
                f"{route.path}: a direct route takes only the session and its caller (a write also its body)"
            )
    return arguments


async def _resolve(
    arguments: list[tuple[str, Callable[..., Any] | None]], request: Request, session: AsyncSession
) -> dict[str, Any]:
    return {
        name: session if resolve is None else await resolve(request, session) for name, resolve in arguments
    }


class DirectReadRoute(CommitRoute):
    """A GET that a person's app makes on every open (their balance): the same caller, checks, statement
    and answer as a :class:`CommitRoute` GET with a ``reads_only`` dependency, at a fraction of the cost.

    The endpoint may take only the request's session (:func:`get_session`) and its caller: a dependency
    carrying ``resolve(request, session)`` (:func:`app.auth.dependencies.require` makes them), which is
    called directly instead of FastAPI's dependency solving; the session's raw statements run on a plain
    pooled asyncpg connection (:class:`app.core.db.DirectLease`), each its own transaction, taken only if a
    statement needs one (a caller whose standing is kept and a read shared with other requests',
    :mod:`app.core.coalesce`, take none); the endpoint's result is validated against the response model and
    serialised to JSON once. Anything else in the signature is refused when the route is declared, not when
    it is called.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        if not self.reads_only or self.response_model is None:
            raise TypeError(f"{path}: a direct read is a GET with a reads_only caller and a response model")
        params = self.dependant
        if params.path_params or params.query_params or params.header_params or params.cookie_params:
            raise TypeError(f"{path}: a direct read takes no parameters")
        self._arguments = _direct_arguments(self)
        self._answer = TypeAdapter(self.response_model)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # called by APIRoute.__init__, before this class's own __init__ has looked at the signature
        async def read(request: Request) -> Response:
            async with db.direct_lease() as lease, db.carrier_session() as session:
                request.state.session = session
                session.info[db.READS_ONLY] = True
                if lease is not None:
                    session.info[db.DIRECT] = lease
                result = await self.endpoint(**await _resolve(self._arguments, request, session))
                callers.check_taken(session)  # a standing left to a statement no statement checked: a mistake
            answer = self._answer
            body = answer.dump_json(answer.validate_python(result, from_attributes=True))
            return Response(body, media_type="application/json")

        return read


class DirectWriteRoute(CommitRoute):
    """A POST made at a city's peak (an order at lunch): the same caller, checks, statements, transaction
    and answers as a :class:`CommitRoute` POST, without FastAPI's dependency solving or an ORM session.

    The endpoint takes the request's session, its caller (as :class:`DirectReadRoute`'s) and one JSON body
    model, and answers a ``Response`` (serialised once, by the endpoint). A body sent as ``application/json``
    that parses and validates is handed over directly, and the transaction is a plain pooled asyncpg
    connection's (:func:`app.core.db.direct_connection`, taken when the first statement needs it and given
    back when the request ends), begun by the first statement that needs one
    (:class:`app.core.db.DirectTransaction`): the session's raw statements
    (:func:`app.core.db.raw_connection`), its audit entries and the idempotency record run on it, committed
    before the response leaves. Reads, and a write that is a whole change by itself
    (:func:`app.core.db.statement_connection`: an order), run before any on their own: a request that has only
    those sends neither ``BEGIN`` nor ``COMMIT``. The endpoint must not use the ORM (nothing would commit it):
    a session that did is refused and the transaction rolled back. Any other body (another content type, bad
    JSON, a value the model refuses) takes the :class:`CommitRoute` path, which answers exactly what FastAPI
    answers; so does every request while :data:`app.core.db.direct_reads` is off.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        params = self.dependant
        if self.methods != {"POST"} or params.path_params or params.query_params:
            raise TypeError(f"{path}: a direct write is a POST without path or query parameters")
        if params.header_params or params.cookie_params or len(params.body_params) != 1:
            raise TypeError(f"{path}: a direct write takes one JSON body and no header or cookie parameters")
        field = params.body_params[0]
        annotation = field.field_info.annotation
        if getattr(field.field_info, "embed", False) or annotation is None:
            raise TypeError(f"{path}: a direct write's body is its model, not embedded in an object")
        self._arguments = _direct_arguments(self)
        self._body_name = str(field.name)
        self._body = TypeAdapter(annotation)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        through_fastapi = super().get_route_handler()

        async def write(request: Request) -> Response:
            data = await self._data(request)
            if data is None or not db.direct_reads:
                return await through_fastapi(request)
            async with db.DirectTransaction() as lease, db.carrier_session() as session:
                request.state.session = session
                session.info[db.DIRECT] = lease

                async def work() -> Response:
                    kwargs = await _resolve(self._arguments, request, session)
                    response = await self.endpoint(**kwargs, **{self._body_name: data})
                    if not isinstance(response, Response):
                        raise TypeError(f"{self.path}: a direct write's endpoint answers a Response")
                    if session.in_transaction() or session.new or session.dirty or session.deleted:
                        raise RuntimeError(f"{self.path}: a direct write used the ORM session")
                    return response

                return await _answer(request, session, work(), lease.commit, lease.rollback)

        return write

    async def _data(self, request: Request) -> Any:
        """The body as the model, or None where FastAPI's own reading must answer (and explain) it."""
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            return None
        try:
            return self._body.validate_python(orjson.loads(await request.body()))
        except (orjson.JSONDecodeError, ValidationError):
            return None
