"""The HTTP protocol ``carbon-points serve`` runs: uvicorn's httptools, a response written with one system call.

Real uvicorn servers on real sockets, each connection's transport counting the writes that reach it.
"""

import asyncio
import contextlib
import socket

import pytest
import uvicorn
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.httpserver import HttpToolsOneWrite, _OneWrite


class _Counting:
    """The connection's real transport, keeping what each ``write`` gave it."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


@contextlib.asynccontextmanager
async def serving(app):
    """``app`` behind uvicorn with :class:`HttpToolsOneWrite` on a free port: (port, the writes that reached
    the sockets)."""
    writes: list[bytes] = []

    class Counted(HttpToolsOneWrite):
        def connection_made(self, transport):
            super().connection_made(_Counting(transport, writes))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, http=Counted, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield port, writes
    finally:
        server.should_exit = True
        await task


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response with a Content-Length: (head, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


def get(path: str, *extra: bytes) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nhost: test\r\n" + b"".join(extra) + b"\r\n"


def test_serve_runs_it_on_uvloop(serve_options):
    assert serve_options["http"] == "app.core.httpserver:HttpToolsOneWrite"
    assert serve_options["loop"] == "uvloop"
    assert import_from_string(serve_options["http"]) is HttpToolsOneWrite
    assert issubclass(HttpToolsOneWrite, HttpToolsProtocol)


class TestTheApp:
    async def test_each_response_is_one_write(self, app):
        async with serving(app) as (port, writes):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answers = []
            for path in ("/healthz", "/v1/no-such-thing", "/healthz"):  # keep-alive: one connection
                writer.write(get(path))
                answers.append(await read_response(reader))
            writer.close()
        assert [head.split(b"\r\n")[0] for head, _ in answers] == [
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 404 Not Found",
            b"HTTP/1.1 200 OK",
        ]
        assert answers[0][1] == b'{"status":"ok"}'
        assert b'"code":"not_found"' in answers[1][1]
        assert b"x-request-id: " in answers[0][0] and b"x-content-type-options: nosniff" in answers[1][0]
        assert writes == [head + body for head, body in answers]

    async def test_pipelined_requests_are_answered_in_order(self, app):
        async with serving(app) as (port, writes):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(get("/v1/no-such-thing") + get("/healthz"))
            first, second = await read_response(reader), await read_response(reader)
            writer.close()
        assert first[0].startswith(b"HTTP/1.1 404 ") and b'"code":"not_found"' in first[1]
        assert second[0].startswith(b"HTTP/1.1 200 ") and second[1] == b'{"status":"ok"}'
        assert b"".join(writes) == first[0] + first[1] + second[0] + second[1]
        assert len(writes) == 2

    async def test_connection_close_writes_the_response_then_closes(self, app):
        async with serving(app) as (port, writes):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(get("/healthz", b"connection: close\r\n"))
            received = await asyncio.wait_for(reader.read(), 5)  # to the end: the server closed
            writer.close()
        assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b'\r\n\r\n{"status":"ok"}')
        assert b"connection: close\r\n" in received
        assert writes == [received]


async def streaming(scope, receive, send):
    """Three chunks: two sent in one turn of the event loop, the third after the task yields."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"one ", "more_body": True})
    await send({"type": "http.response.body", "body": b"two ", "more_body": True})
    await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"three", "more_body": False})


async def test_a_streamed_response_is_written_once_a_turn():
    async with serving(streaming) as (port, writes):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/", b"connection: close\r\n"))
        received = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    assert body == b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n"
    assert writes == [head + b"\r\n\r\n4\r\none \r\n4\r\ntwo \r\n", b"5\r\nthree\r\n0\r\n\r\n"]


class _Recording:
    """A transport that keeps its writes and can be closing."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.closed_after: int | None = None

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closed_after = len(self.writes)

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str):
        return f"extra {name}"


class TestOneWrite:
    async def test_writes_of_a_turn_go_out_together_at_its_end(self):
        real = _Recording()
        transport = _OneWrite(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head ")
        transport.writelines([b"body ", b"", b"end"])
        assert real.writes == [] and transport.get_write_buffer_size() == 7 + 13
        await asyncio.sleep(0)
        assert real.writes == [b"head body end"]
        transport.write(b"")
        await asyncio.sleep(0)
        assert real.writes == [b"head body end"]

    async def test_close_writes_what_is_pending_first(self):
        real = _Recording()
        transport = _OneWrite(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"last words")
        transport.close()
        assert real.writes == [b"last words"] and real.closed_after == 1
        await asyncio.sleep(0)  # the turn's end writes nothing more
        assert real.writes == [b"last words"]

    async def test_nothing_is_written_to_a_connection_already_lost(self):
        real = _Recording()
        transport = _OneWrite(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"too late")
        real.closing = True
        await asyncio.sleep(0)
        assert real.writes == []

    def test_everything_else_is_the_transports(self):
        transport = _OneWrite(_Recording(), None)  # type: ignore[arg-type]
        assert transport.get_extra_info("peername") == "extra peername"
        with pytest.raises(AttributeError):
            transport.no_such_method  # noqa: B018
