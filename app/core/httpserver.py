"""uvicorn's HTTP/1.1 protocol (httptools), each response written with one system call.

uvicorn writes a response's status line and headers when the app starts the response, and its body when the
app sends it; uvloop writes each at once: two ``write`` system calls and two TCP segments a response, and a
client woken for each. Here what the protocol writes in one turn of the event loop is joined and written at
the end of the turn (a Starlette response starts and ends in one turn): one system call a response. ``serve``
runs it (``uvicorn.run(http=...)``).
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _OneWrite:
    """A transport whose writes within one turn of the event loop go out as one, at the end of the turn;
    everything else is the transport's own. Closing it writes what is pending first."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, lines: list[bytes]) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return  # close() wrote it
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():  # the connection was lost meanwhile: nobody to write to
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpToolsOneWrite(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` writing through a :class:`_OneWrite` transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWrite(transport, self.loop))  # type: ignore[arg-type]


PROTOCOL = f"{__name__}:{HttpToolsOneWrite.__name__}"
"""What ``uvicorn.run(http=...)`` and ``uvicorn --http`` take to run :class:`HttpToolsOneWrite`."""
