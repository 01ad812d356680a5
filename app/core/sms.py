"""Text messages to phones (one-time codes), through the backend ``CARBON_SMS_BACKEND`` names.

* ``outbox`` (local and test): the message is kept in the ``sms_outbox`` table for the developer to
  read (the page ``/dev/outbox``, ``carbon-points sms outbox``), the number masked; refused in production.
* ``http``: the message is POSTed to a gateway, ``CARBON_SMS_HTTP_URL``, with the body
  ``CARBON_SMS_HTTP_TEMPLATE`` in which ``{phone}`` and ``{message}`` are replaced (JSON-escaped when
  the content type is JSON, form-encoded otherwise).

The number reaches the backend only in memory: nothing here stores it whole.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote_plus

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core import clock
from app.core.config import get_settings
from app.core.errors import DomainError, NotFound
from app.core.models import SmsOutboxMessage

log = logging.getLogger(__name__)


class SmsUnavailable(DomainError):
    status, code, title = 503, "sms_unavailable", "The text message could not be sent"


class OutboxRefused(NotFound):
    """The development outbox does not exist in production (as if there were no such page)."""


def mask(phone: str) -> str:
    """``+8613800138000`` → ``+86138****8000``: enough for a developer to tell numbers apart."""
    if len(phone) < 9:
        return "*" * len(phone)
    return phone[:-8] + "****" + phone[-4:]


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    recipient: str
    body: str
    created_at: datetime


def outbox_allowed() -> bool:
    return get_settings().environment != "production"


async def send(session: AsyncSession, phone: str, message: str) -> None:
    """Send ``message`` to ``phone`` (E.164) with the configured backend; ``sms_unavailable`` if it fails."""
    settings = get_settings()
    if settings.sms_backend == "outbox":
        if not outbox_allowed():
            raise SmsUnavailable("CARBON_SMS_BACKEND=outbox is for local and test environments")
        session.add(SmsOutboxMessage(recipient=mask(phone), body=message, created_at=clock.now()))
        await session.flush()
        return
    await _send_http(phone, message)


def _body(template: str, phone: str, message: str, content_type: str) -> str:
    if "json" in content_type:
        escape = lambda v: json.dumps(v, ensure_ascii=False)[1:-1]  # noqa: E731
    else:
        escape = quote_plus
    return template.replace("{phone}", escape(phone)).replace("{message}", escape(message))


async def _send_http(phone: str, message: str) -> None:
    settings = get_settings()
    if not settings.sms_http_url:
        raise SmsUnavailable("CARBON_SMS_HTTP_URL is not set")
    content_type = settings.sms_http_content_type
    body = _body(settings.sms_http_template, phone, message, content_type)
    try:
        async with httpx.AsyncClient(timeout=settings.sms_http_timeout_seconds) as client:
            response = await client.post(
                settings.sms_http_url, content=body.encode(), headers={"Content-Type": content_type}
            )
    except httpx.HTTPError as exc:
        log.warning("sms gateway unreachable", extra={"error": type(exc).__name__})
        raise SmsUnavailable("the SMS gateway could not be reached") from exc
    if not response.is_success:
        log.warning("sms gateway refused", extra={"status": response.status_code})
        raise SmsUnavailable(f"the SMS gateway answered {response.status_code}")


async def outbox(session: AsyncSession, limit: int = 50) -> list[OutboxEntry]:
    """The development outbox, newest first (refused in production)."""
    if not outbox_allowed():
        raise OutboxRefused("the development outbox does not exist in production")
    query = select(SmsOutboxMessage).order_by(sa.desc(col(SmsOutboxMessage.id))).limit(limit)
    rows = (await session.execute(query)).scalars()
    return [OutboxEntry(r.id or 0, r.recipient, r.body, r.created_at) for r in rows]
