"""All SQL of the browser sessions, on the raw asyncpg connection of the request's transaction.

Resolving a session reads its staff account and organisation in the same statement (one indexed
read a page, as the bearer-token check in ``app.auth.service`` does): a disabled account or a
suspended organisation ends the session at its next request.
"""

import uuid
from datetime import datetime

import asyncpg

Conn = asyncpg.Connection


async def insert(
    conn: Conn,
    session_id: uuid.UUID,
    token_sha256: bytes,
    staff_user_id: uuid.UUID,
    now: datetime,
    expires_at: datetime,
    ip: str,
    user_agent: str,
) -> None:
    await conn.execute(
        "INSERT INTO web_sessions (id, token_sha256, staff_user_id, created_at, last_seen_at, expires_at, ip,"
        " user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        session_id,
        token_sha256,
        staff_user_id,
        now,
        expires_at,
        ip,
        user_agent,
    )


async def find(conn: Conn, token_sha256: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT w.id, w.staff_user_id, w.created_at, w.last_seen_at, w.expires_at, s.username, s.role,"
        " s.org_id, s.is_org_admin, s.disabled_at, o.kind AS org_kind, o.status AS org_status, o.name AS org_name"
        " FROM web_sessions w JOIN staff_users s ON s.id = w.staff_user_id"
        " LEFT JOIN organizations o ON o.id = s.org_id WHERE w.token_sha256 = $1",
        token_sha256,
    )


async def touch(conn: Conn, session_id: uuid.UUID, now: datetime) -> None:
    await conn.execute("UPDATE web_sessions SET last_seen_at = $2 WHERE id = $1", session_id, now)


async def delete(conn: Conn, session_id: uuid.UUID) -> bool:
    return await conn.execute("DELETE FROM web_sessions WHERE id = $1", session_id) == "DELETE 1"


async def delete_for_staff(conn: Conn, staff_user_id: uuid.UUID) -> int:
    status = await conn.execute("DELETE FROM web_sessions WHERE staff_user_id = $1", staff_user_id)
    return int(status.split()[-1])


async def delete_for_username(conn: Conn, username: str) -> int:
    status = await conn.execute(
        "DELETE FROM web_sessions w USING staff_users s WHERE s.id = w.staff_user_id AND s.username = $1",
        username,
    )
    return int(status.split()[-1])


async def purge(conn: Conn, now: datetime, idle_before: datetime) -> int:
    status = await conn.execute(
        "DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2", now, idle_before
    )
    return int(status.split()[-1])


async def exists(conn: Conn, session_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM web_sessions WHERE id = $1)", session_id))
