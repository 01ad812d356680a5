"""The route class every router uses: one session and one commit per request, before the response.

Since FastAPI 0.118 the code after ``yield`` in a dependency runs after the response is sent, so a
failed commit there would still have answered 200. Here the commit happens inside the route
handler: the response goes out only once the transaction (with its idempotency record and audit
entries) is durable. Errors roll everything back.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.core import audit, caching, db, idempotency
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
                try:
                    response = await handler(request)
                except idempotency.Replay as replay:
                    await session.rollback()
                    return replay.response
                except DomainError as exc:
                    await _end_refused(session, keep=exc.keep_changes)
                    raise
                except BaseException:
                    await session.rollback()
                    raise
                if response.status_code >= 400:
                    # a page that refuses but counted something (a one-time code's attempt) keeps it
                    await _end_refused(session, keep=getattr(request.state, "keep_changes", False))
                    return response
                # the audit entries and the response kept under its Idempotency-Key: one statement
                await audit.flush(session, stored=idempotency.record(request, response))
                await session.commit()
                if self.cache_control is not None:
                    return caching.answer(request, response, self.cache_control)
                return response

        return run_in_transaction


async def _end_refused(session: AsyncSession, *, keep: bool) -> None:
    """A refused request's transaction: rolled back, unless what it wrote must stand (``keep_changes``)."""
    if keep:
        await audit.flush(session)
        await session.commit()
    else:
        await session.rollback()


def _dependency_calls(dependant: Dependant):
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


async def get_session(request: Request) -> AsyncSession:
    """The request's session (opened by :class:`CommitRoute`); async, so no thread hop per request."""
    return request.state.session


class DirectReadRoute(CommitRoute):
    """A GET that a person's app makes on every open (their balance): the same caller, checks, statement
    and answer as a :class:`CommitRoute` GET with a ``reads_only`` dependency, at a fraction of the cost.

    The endpoint may take only the request's session (:func:`get_session`) and its caller: a dependency
    carrying ``resolve(request, session)`` (:func:`app.auth.dependencies.require` makes them), which is
    called directly instead of FastAPI's dependency solving; the session's raw statements run on a plain
    pooled asyncpg connection (:func:`app.core.db.direct_connection`), each its own transaction; the endpoint's result is validated against the response model and serialised to JSON
    once. Anything else in the signature is refused when the route is declared, not when it is called.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        if not self.reads_only or self.response_model is None:
            raise TypeError(f"{path}: a direct read is a GET with a reads_only caller and a response model")
        params = self.dependant
        if params.path_params or params.query_params or params.header_params or params.cookie_params:
            raise TypeError(f"{path}: a direct read takes no parameters")
        self._arguments: list[tuple[str, Callable[..., Any] | None]] = []
        for sub in params.dependencies:
            if sub.call is get_session:
                self._arguments.append((str(sub.name), None))
            elif hasattr(sub.call, "resolve"):
                self._arguments.append((str(sub.name), sub.call.resolve))  # type: ignore[union-attr]
            else:
                raise TypeError(f"{path}: a direct read takes only the session and its caller")
        self._answer = TypeAdapter(self.response_model)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # called by APIRoute.__init__, before this class's own __init__ has looked at the signature
        async def read(request: Request) -> Response:
            async with db.direct_connection() as conn, db.sessionmaker()() as session:
                request.state.session = session
                session.info[db.READS_ONLY] = True
                if conn is not None:
                    session.info[db.DIRECT] = conn
                kwargs = {
                    name: session if resolve is None else await resolve(request, session)
                    for name, resolve in self._arguments
                }
                result = await self.endpoint(**kwargs)
            answer = self._answer
            body = answer.dump_json(answer.validate_python(result, from_attributes=True))
            return Response(body, media_type="application/json")

        return read
