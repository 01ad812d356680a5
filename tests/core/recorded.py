"""Statements on the real server for the tests of :mod:`app.core.coalesce`: each remembers the values it was sent
and its connection, counts how many run at once, may be held at a gate, and fails when told to."""

import asyncio

import asyncpg

from app.core import db


class Recorded:
    """``statement(conn, values, sql)`` runs ``sql`` with ``values`` as ``$1`` (an ``int[]``) after the gate
    opens, or fails (division by zero) if ``fail_on`` is among them. ``sent``: each statement's values."""

    def __init__(self, gate: asyncio.Event | None = None, fail_on: int | None = None):
        self.sent: list[list[int]] = []
        self.connections: list[db.Conn] = []
        self.gate, self.fail_on = gate, fail_on
        self.running = self.most_running = 0

    async def statement(self, conn: db.Conn, values: list[int], sql: str) -> list[asyncpg.Record]:
        self.sent.append(values)
        self.connections.append(conn)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.fail_on in values:
                await conn.fetch("SELECT 1 / 0")
            return await conn.fetch(sql, values)
        finally:
            self.running -= 1
