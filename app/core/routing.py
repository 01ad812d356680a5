"""The route class every router uses: one session and one commit per request, before the response.

Since FastAPI 0.118 the code after ``yield`` in a dependency runs after the response is sent, so a
failed commit there would still have answered 200. Here the commit happens inside the route
handler: the response goes out only once the transaction (with its idempotency record and audit
entries) is durable. Errors roll everything back.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.core import audit, db, idempotency


class CommitRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run_in_transaction(request: Request) -> Response:
            async with db.sessionmaker()() as session:
                request.state.session = session
                try:
                    response = await handler(request)
                except idempotency.Replay as replay:
                    await session.rollback()
                    return replay.response
                except BaseException:
                    await session.rollback()
                    raise
                if response.status_code >= 400:
                    await session.rollback()
                    return response
                await idempotency.finish(request, session, response)
                await audit.flush(session)
                await session.commit()
                return response

        return run_in_transaction


def get_session(request: Request) -> AsyncSession:
    """The request's session (opened by :class:`CommitRoute`)."""
    return request.state.session
