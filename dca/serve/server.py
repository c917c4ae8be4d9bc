"""How ``dca serve`` holds its connections: uvicorn with an HTTP protocol that gives every
request's headers a deadline and keeps connections still sending headers from taking the slots
of complete requests.

Without this, 140 clients that send a partial header and then one byte every 2 s held all of
uvicorn's connection slots (its ``limit_concurrency`` counts every open connection), and every
other request, ``/health`` included, got 503 for as long as they went on. Now:

- a connection must finish a request's headers within ``header_timeout_s`` of opening (or of
  its previous response), else it is closed; trickling bytes does not extend the deadline;
- at most ``max_waiting`` connections may be waiting for headers at once: a new one closes the
  oldest waiting one (a real client sends its headers at once, so it is never the oldest);
- complete requests are limited separately (``max_requests``, in the app's guard), so waiting
  connections never take their slots.

This module imports uvicorn and h11: import it only to run a server.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from dca.serve.config import ServeConfig


def protocol_for(config: ServeConfig) -> type[asyncio.Protocol]:
    """An H11 protocol class bound to ``config``'s header deadline and waiting-connection cap;
    its waiting list is shared by all the connections of one server."""
    waiting: OrderedDict[Any, None] = OrderedDict()  # oldest first

    class _DeadlineH11(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline: asyncio.TimerHandle | None = None
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self in waiting and self.conn.their_state is not h11.IDLE:  # a request's headers are in
                self._headers_done()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_headers()  # the next request on this connection gets the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_done()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            self._headers_done()
            self._deadline = self.loop.call_later(config.header_timeout_s, self._close_waiting)
            waiting[self] = None
            while len(waiting) > config.max_waiting:
                oldest = next(iter(waiting))
                oldest._close_waiting()

        def _headers_done(self) -> None:
            waiting.pop(self, None)
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()  # type: ignore[union-attr]
                self._deadline = None

        def _close_waiting(self) -> None:
            self._headers_done()
            if not self.transport.is_closing():
                self.transport.close()

    return _DeadlineH11


def uvicorn_config(app: Any, config: ServeConfig) -> uvicorn.Config:
    """uvicorn's settings for ``app``: dca's protocol, no connection-count limit of uvicorn's own
    (the app's guard limits complete requests; the protocol limits waiting connections)."""
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=protocol_for(config),
        log_level="warning",
        limit_concurrency=None,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
    )


def run_server(app: Any, config: ServeConfig) -> None:
    """Serve ``app`` until interrupted."""
    uvicorn.Server(uvicorn_config(app, config)).run()
