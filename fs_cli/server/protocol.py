"""uvicorn HTTP protocols with a request-header read timeout (slow-client / slowloris protection).

uvicorn (0.54) offers `timeout_keep_alive` (idle time after a response), `limit_concurrency` and
`h11_max_incomplete_event_size` (header size), but no deadline for receiving a request's headers: its keep-alive
timer is not armed on a fresh connection and any received byte cancels it, so a client that dribbles header bytes
holds a connection forever, and a connection that sends nothing at all is never closed. These subclasses arm one
timer on connect and at the first byte of each request; when it fires before the request's headers are complete,
the connection gets a 408 (if it sent anything) and is closed. The body is the app's job (`create_app(body_timeout=...)`).

`fs serve` passes the class by import string (workers are separate processes); the deadline comes from
FS_HEADER_TIMEOUT (seconds, default 10; 0 = off).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_ENV = "FS_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0
_TIMEOUT_BODY = b'{"error": "request headers not received in time", "fix": "send the whole request promptly"}'
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


def header_timeout() -> float:
    return float(os.environ.get(HEADER_TIMEOUT_ENV) or DEFAULT_HEADER_TIMEOUT)


class _HeaderDeadline:
    """Mixin over a uvicorn HTTP protocol. `self.cycle` is the request being answered (a new one appears once its
    headers are parsed), `self.loop` / `self.transport` are the protocol's own.

    The deadline runs from the first byte of a request (or from the connection: a client that connects and sends
    nothing is closed too). An idle keep-alive connection is left to uvicorn's `timeout_keep_alive`."""

    _header_timer: asyncio.TimerHandle | None = None
    _awaiting: Any = None
    _got_bytes = False
    _fresh = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._fresh, self._got_bytes = True, False
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if not self._got_bytes:  # the first byte of a request: its headers are due within the timeout from now
            self._got_bytes = True
            self._arm_header_deadline()
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._fresh, self._got_bytes = False, False
        self._cancel_header_deadline()  # idle now: uvicorn's keep-alive timer runs until the next byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        seconds = header_timeout()
        if seconds > 0:
            self._awaiting = self.cycle  # type: ignore[attr-defined]
            self._header_timer = self.loop.call_later(seconds, self._header_deadline)  # type: ignore[attr-defined]

    def _cancel_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        cycle = self.cycle  # type: ignore[attr-defined]
        started_since = cycle is not self._awaiting
        in_flight = cycle is not None and not cycle.response_complete
        if started_since or in_flight or self.transport.is_closing():  # type: ignore[attr-defined]
            return  # the headers arrived in time (the body has its own deadline in the app)
        if self._got_bytes:
            self.transport.write(_TIMEOUT_RESPONSE)  # type: ignore[attr-defined]
        self.transport.close()  # type: ignore[attr-defined]


class H11WithHeaderTimeout(_HeaderDeadline, H11Protocol):
    pass


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsWithHeaderTimeout(_HeaderDeadline, HttpToolsProtocol):
        pass

    ServingProtocol: type = HttpToolsWithHeaderTimeout  # what uvicorn's "auto" would pick
except ImportError:  # httptools is optional for uvicorn
    ServingProtocol = H11WithHeaderTimeout

# `fs serve` names it by import string (it imports nothing of the server; workers import it themselves).
SERVING_PROTOCOL = "fs_cli.server.protocol:ServingProtocol"
