"""The Python API that apps embed: ``Assistant(index=..., model=...).ask(question) -> Answer``.

A thin facade over dca.pipeline (the one answering path). ``Assistant.start`` returns a
``ReasoningRun``: an iterator of typed events (thinking text, searches, samples, votes, the
answer) that can be paused, given context and resumed.

Thread-safety: an ``Assistant`` may be shared between threads; its calls run one at a
time (a lock), because one llama.cpp context serves one request at a time. For parallel
requests, create one Assistant per thread: models load once per process and are shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dca.answer import PromptParts, build_prompt
from dca.config import Paths
from dca.knowledge.retrieval import Hit, SearchConfig
from dca.pipeline import SCHEMA_VERSION, STAGES, Answer, AskConfig, Source, Stages, run_pipeline
from dca.reasoning.events import AnswerText, Event, Finished
from dca.reasoning.run import ReasoningRun
from dca.reasoning.think import Controls
from dca.runtime.generation import Generator
from dca.runtime.llama import RuntimeConfig

__all__ = ["SCHEMA_VERSION", "Answer", "AskConfig", "Assistant", "Conversation", "Source", "as_runnable"]


class Assistant:
    """Answers questions with a local model, grounded in a knowledge index.

    >>> assistant = Assistant(index="default")            # doctest: +SKIP
    >>> answer = assistant.ask("How do I pull a model?")   # doctest: +SKIP
    >>> answer.text, [s.path for s in answer.cited_sources]  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        index: str | None = "default",
        model: str | None = None,
        home: str | Path | None = None,
        runtime: RuntimeConfig | None = None,
        generator: Generator | None = None,
        embedder: Any = None,
        config: AskConfig | None = None,
        stages: Stages = STAGES,
    ) -> None:
        """``stages``: the answering path's steps (dca.pipeline.Stages); an experiment swaps one there."""
        self.paths = Paths.resolve(home)
        self.stages = stages
        self.index_name = index
        self.config = config or AskConfig()
        self._model = model
        self._runtime_config = runtime or RuntimeConfig()
        self._generator = generator
        self._embedder = embedder
        self._index: Any = None
        self._lock = threading.RLock()
        self.last_answer: Answer | None = None
        if index is not None:
            self._open_index()  # an unknown index is an error now, not at the first question

    # ---- lazily loaded parts -------------------------------------------------------------
    def _open_index(self) -> Any:
        if self._index is None:
            from dca.knowledge.stores import open_store

            self._index = open_store(self.paths, str(self.index_name))
        return self._index

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from dca.runtime.remote import load_generator

            self._generator = load_generator(self._model, paths=self.paths, config=self._runtime_config)
        return self._generator

    def index_size(self) -> int:
        """Chunks in the index (0 without one)."""
        return int(self._open_index().stats()["chunks"]) if self.index_name is not None else 0

    def retrieve(self, question: str, config: AskConfig | None = None) -> list[Hit]:
        """The chunks ``ask`` would give the model for ``question``."""
        from dca.knowledge.retrieval import search_index

        config = config or self.config
        search = SearchConfig(k=config.k, mode=config.mode, cutoff=config.k_cutoff)
        return search_index(self._open_index(), question, search, paths=self.paths, embedder=self._embedder)

    def build_prompt(
        self,
        question: str,
        hits: list[Hit],
        *,
        history: list[dict[str, str]] | None = None,
        config: AskConfig | None = None,
    ) -> PromptParts:
        """The messages ``ask`` sends for ``question`` and ``hits``, fitted to the model's context."""
        config = config or self.config
        generator = self.generator
        return build_prompt(
            question,
            hits,
            history=history or [],
            grounded=config.retrieval and self.index_name is not None,
            style=config.style,
            n_ctx=generator.n_ctx,
            answer_tokens=config.max_tokens,
            count_prompt_tokens=lambda messages: len(generator.tokenize(generator.chat_prompt(messages))),
        )

    # ---- answering -------------------------------------------------------------------------
    def start(
        self, question: str, *, history: list[dict[str, str]] | None = None, config: AskConfig | None = None
    ) -> ReasoningRun:
        """Begin answering ``question``: iterate the run for its events; the last is ``Finished(answer)``.

        Not iterating pauses it; ``run.add_context(note)`` adds a note to the thinking;
        ``run.cancel()`` stops it.
        """
        config = config or self.config
        controls = Controls()
        return ReasoningRun(self._events(question, history or [], config, controls), controls)

    def _events(
        self, question: str, history: list[dict[str, str]], config: AskConfig, controls: Controls
    ) -> Iterator[Event]:
        with self._lock:
            use_index = config.retrieval and self.index_name is not None
            if use_index:
                self._open_index()
            for event in run_pipeline(
                self.generator,
                question,
                config=config,
                paths=self.paths,
                retrieve=(lambda query: self.retrieve(query, config)) if use_index else None,
                index_name=self.index_name,
                history=history,
                controls=controls,
                stages=self.stages,
                embedder=self._open_index().manifest.embedder if use_index else None,
            ):
                if isinstance(event, Finished):
                    self.last_answer = event.result
                yield event

    def ask(
        self,
        question: str,
        *,
        history: list[dict[str, str]] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        config: AskConfig | None = None,
    ) -> Answer:
        """Answer ``question``; ``on_text`` receives the answer as it streams, ``on_event`` every event."""
        answer = None
        for event in self.start(question, history=history, config=config):
            if on_event:
                on_event(event)
            if isinstance(event, AnswerText) and on_text:
                on_text(event.text)
            elif isinstance(event, Finished):
                answer = event.result
        assert isinstance(answer, Answer)
        return answer

    def stream(
        self, question: str, *, history: list[dict[str, str]] | None = None, config: AskConfig | None = None
    ) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated (``str`` pieces), then the full ``Answer``.

        The Assistant's lock is held from the first piece until the stream ends or is closed:
        leaving a ``for`` loop early closes it at once (or call ``.close()`` on the stream), so
        another thread's question never waits on a stream nobody reads.
        """
        run = self.start(question, history=history, config=config)
        try:
            for event in run:
                if isinstance(event, AnswerText):
                    yield event.text
                elif isinstance(event, Finished):
                    yield event.result
        finally:
            run.cancel()  # releases the lock now, not when the garbage collector gets to it

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None


class Conversation:
    """A multi-turn chat over an Assistant: history kept, trimmed to the context window."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.history: list[dict[str, str]] = []
        self.last_answer: Answer | None = None

    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> Answer:
        answer = self.assistant.ask(question, history=self.history, on_text=on_text)
        self.record(answer)
        return answer

    def start(self, question: str) -> ReasoningRun:
        """Begin a turn as a pausable run of events; call ``record(answer)`` with its answer."""
        return self.assistant.start(question, history=self.history)

    def record(self, answer: Answer) -> None:
        """Add a finished turn to the history (the answer only: thinking is not carried over)."""
        self.history += [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.text}]
        self.last_answer = answer

    def reset(self) -> None:
        self.history = []
        self.last_answer = None


def as_runnable(assistant: Assistant) -> Any:
    """A langchain-core Runnable over ``assistant``: ``invoke("question") -> dict`` (Answer.to_json()),
    ``stream("question")`` yields the answer's text as it is generated, and ``ainvoke``/``astream``
    do the same without blocking the event loop (the model runs on a worker thread)."""
    import asyncio

    from langchain_core.runnables import Runnable

    class AssistantRunnable(Runnable[Any, Any]):
        name = "dca-assistant"

        def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> dict[str, Any]:
            return assistant.ask(str(input)).to_json()

        async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> dict[str, Any]:
            return await asyncio.to_thread(self.invoke, input, config)

        def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[str]:
            yield from (piece for piece in assistant.stream(str(input)) if isinstance(piece, str))

        async def astream(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            pieces: asyncio.Queue[Any] = asyncio.Queue()
            done = object()

            def produce() -> None:
                try:
                    for piece in assistant.stream(str(input)):
                        if isinstance(piece, str):
                            loop.call_soon_threadsafe(pieces.put_nowait, piece)
                except BaseException as exc:  # handed to the consumer, raised there
                    loop.call_soon_threadsafe(pieces.put_nowait, exc)
                finally:
                    loop.call_soon_threadsafe(pieces.put_nowait, done)

            worker = loop.run_in_executor(None, produce)
            while (piece := await pieces.get()) is not done:
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
            await worker

    return AssistantRunnable()
