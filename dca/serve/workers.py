"""Warm models and the queue in front of each: one worker thread per model runs requests one at
a time (one llama.cpp context serves one request at a time); requests beyond the queue's room
are refused at once, and a cancelled request stops between two tokens.

Events cross from the worker thread to the event loop through an ``asyncio.Queue``; the
thread never touches the loop's objects except through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from collections.abc import Generator as Steps
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dca.config import Paths
from dca.errors import DcaError, RequestError
from dca.runtime.generation import Generator

log = logging.getLogger(__name__)
_DONE = object()


class Job:
    """One request's work on a worker thread, seen from the event loop as an async stream of items."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = threading.Event()
        self.started = threading.Event()

    def emit(self, item: Any) -> None:
        """From the worker thread: hand ``item`` to the request."""
        self._loop.call_soon_threadsafe(self._items.put_nowait, item)

    def cancel(self) -> None:
        """Stop the work at its next step (between two tokens), or before it starts."""
        self.cancelled.set()

    async def items(self, deadline: float) -> AsyncIterator[Any]:
        """The items the work emits, until it is done; a DcaError it raised is raised here.

        Past ``deadline`` (the loop's clock) the work is cancelled and a 504 is raised.
        """
        while True:
            left = deadline - self._loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                item = await asyncio.wait_for(self._items.get(), timeout=left)
            except TimeoutError:
                self.cancel()
                raise RequestError(
                    "the request took longer than the server's timeout and was stopped; ask for fewer tokens "
                    "or a smaller budget, or start the server with a longer --timeout",
                    status=504,
                    kind="timeout",
                ) from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class ModelWorker:
    """A loaded generator, the thread that runs it, and the bounded queue in front of it."""

    def __init__(self, name: str, generator: Generator, *, paths: Paths, max_queue: int) -> None:
        self.name = name
        self.generator = generator
        self.paths = paths
        self.max_queue = max_queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"dca-{name}")
        self._lock = threading.Lock()
        self.pending = 0  # requests queued or running
        self._durations: deque[float] = deque(maxlen=16)
        self._assistants: dict[str | None, Any] = {}  # index -> Assistant; made and used on the worker thread

    def retry_after(self) -> int:
        """Seconds a refused client should wait: the queue ahead of it at the recent pace."""
        pace = sum(self._durations) / len(self._durations) if self._durations else 5.0
        return max(1, round(pace * max(1, self.pending)))

    def submit(self, work: Callable[[Any, Job], Steps[Any, None, None]], loop: asyncio.AbstractEventLoop) -> Job:
        """Queue ``work(assistant_for, job)``, whose yielded items reach ``job.items()``; 429 when full."""
        with self._lock:
            if self.pending >= 1 + self.max_queue:
                raise RequestError(
                    f"model {self.name} is busy ({self.pending} requests ahead); retry after the Retry-After seconds",
                    status=429,
                    kind="rate_limit_error",
                )
            self.pending += 1
        job = Job(loop)
        self._executor.submit(self._run, work, job)
        return job

    def _run(self, work: Callable[[Any, Job], Steps[Any, None, None]], job: Job) -> None:
        began = time.perf_counter()
        try:
            if job.cancelled.is_set():
                return
            job.started.set()
            with contextlib.closing(work(self.assistant, job)) as items:
                for item in items:
                    if job.cancelled.is_set():
                        break
                    job.emit(item)
        except DcaError as exc:
            job.emit(exc)
        except Exception as exc:  # a bug: logged with its traceback, answered without one
            log.exception("request failed on model %s", self.name)
            job.emit(
                RequestError(
                    f"internal error ({type(exc).__name__}); see the server's log", status=500, kind="server_error"
                )
            )
        finally:
            if job.started.is_set():
                self._durations.append(time.perf_counter() - began)
            with self._lock:
                self.pending -= 1
            job.emit(_DONE)

    def assistant(self, index: str | None) -> Any:
        """The Assistant answering from ``index`` with this model (worker thread only: SQLite
        connections belong to the thread that opened them)."""
        if index not in self._assistants:
            from dca.api import Assistant

            self._assistants[index] = Assistant(index=index, generator=self.generator, home=self.paths.home)
        return self._assistants[index]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        for assistant in self._assistants.values():
            assistant.close()


def answer_work(question: str, history: list[dict[str, str]], index: str | None, configs: list[Any]):
    """The work of one chat request: for each choice, its pipeline events as (choice, event)."""

    def work(assistant_for: Callable[[str | None], Any], job: Job) -> Steps[Any, None, None]:
        assistant = assistant_for(index)
        for choice, config in enumerate(configs):
            run = assistant.start(question, history=history, config=config)
            try:
                for event in run:
                    if job.cancelled.is_set():
                        return
                    yield choice, event
            finally:
                run.cancel()  # closes the generation on this thread when the request went away

    return work
