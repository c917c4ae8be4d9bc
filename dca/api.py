"""The Python API that apps embed: ``Assistant(index=..., model=...).ask(question) -> Answer``.

Thread-safety: an ``Assistant`` may be shared between threads; its calls run one at a
time (a lock), because one llama.cpp context serves one request at a time. For parallel
requests, create one Assistant per thread: models load once per process and are shared.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dca.answer import NO_ANSWER, PromptParts, answer_instruction, build_prompt, cited_numbers, is_refusal
from dca.config import Paths
from dca.errors import ConfigError
from dca.knowledge.retrieval import Hit, SearchConfig
from dca.runtime.llama import Completion, GenerationConfig, RuntimeConfig

SCHEMA_VERSION = 1


class Generator(Protocol):
    """What answering needs from a language model (LlamaRuntime, or a fake in tests)."""

    name: str
    n_ctx: int

    def chat_prompt(self, messages: list[dict[str, str]]) -> str: ...

    def tokenize(self, prompt: str) -> list[int]: ...

    def stream(self, prompt: str, config: GenerationConfig, completion: Completion | None = None) -> Iterator[str]: ...

    def load_adapter(self, name: str, path: Path) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Source:
    """A source given to the model, numbered as the answer cites it."""

    number: int
    path: str
    heading: str
    page: int | None
    char_start: int
    char_end: int
    score: float
    text: str

    @classmethod
    def from_hit(cls, number: int, hit: Hit) -> Source:
        c = hit.chunk
        return cls(
            number=number,
            path=c.path,
            heading=c.heading,
            page=c.page,
            char_start=c.char_start,
            char_end=c.char_end,
            score=hit.score,
            text=c.text,
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(kw_only=True)
class Answer:
    """An answer with its sources, token counts and timings (schema: docs/api.md)."""

    question: str
    text: str
    sources: list[Source]  # everything the model was shown
    citations: list[int]  # numbers of the sources the answer cites, in order of mention
    grounded: bool  # False when the answer says the sources do not contain it
    model: str
    adapter: str | None
    index: str | None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # retrieval_s, prompt_s, decode_s, total_s
    warnings: list[str] = field(default_factory=list)

    @property
    def cited_sources(self) -> list[Source]:
        return [s for s in self.sources if s.number in self.citations]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "question": self.question,
            "answer": self.text,
            "grounded": self.grounded,
            "citations": [s.to_json() for s in self.cited_sources],
            "sources": [s.to_json() for s in self.sources],
            "model": self.model,
            "adapter": self.adapter,
            "index": self.index,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "cached_tokens": self.cached_tokens,
                "completion_tokens": self.completion_tokens,
            },
            "finish_reason": self.finish_reason,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "warnings": self.warnings,
        }


@dataclass(frozen=True, kw_only=True)
class AskConfig:
    """How a question is answered; CLI flags map one-to-one."""

    k: int = 5  # sources retrieved per question
    mode: str = "hybrid"  # retrieval mode: dense, bm25 or hybrid
    retrieval: bool = True  # False: answer closed-book, without the index
    max_tokens: int = 512  # room kept for the answer
    temperature: float = 0.0
    seed: int | None = None
    adapter: str | None = None  # a LoRA adapter name (models/adapters/NAME.gguf) or path
    adapter_scale: float = 1.0
    style: str = "cited"  # grounded answers: "cited" sentences ending in [n], or "short" (the answer alone)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        answer_instruction(self.style)  # raises for an unknown style


def resolve_adapter(adapter: str, paths: Paths) -> tuple[str, Path]:
    """(name, path) of ``models/adapters/NAME.gguf`` or of a GGUF path."""
    path = Path(adapter).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path.stem, path.resolve()
    candidate = paths.models / "adapters" / f"{adapter}.gguf"
    if candidate.is_file():
        return adapter, candidate
    folder = paths.models / "adapters"
    known = sorted(p.stem for p in folder.glob("*.gguf")) if folder.is_dir() else []
    raise ConfigError(f"no adapter {adapter!r} (put NAME.gguf in {folder}; found: {', '.join(known) or 'none'})")


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
    ) -> None:
        self.paths = Paths.resolve(home)
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
            from dca.knowledge.store import KnowledgeIndex

            self._index = KnowledgeIndex.open(self.paths, str(self.index_name))
        return self._index

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from dca.runtime.llama import load_runtime

            self._generator = load_runtime(self._model, paths=self.paths, config=self._runtime_config)
        return self._generator

    def retrieve(self, question: str, config: AskConfig | None = None) -> list[Hit]:
        """The chunks ``ask`` would give the model for ``question``."""
        from dca.knowledge.retrieval import search

        config = config or self.config
        index = self._open_index()
        embedder = self._embedder
        if embedder is None and config.mode != "bm25":
            from dca.knowledge.embedding import load_embedder

            embedder = self._embedder = load_embedder(index.manifest.embedder, paths=self.paths)
        return search(index, question, embedder=embedder, config=SearchConfig(k=config.k, mode=config.mode))

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
    def ask(
        self,
        question: str,
        *,
        history: list[dict[str, str]] | None = None,
        on_text: Callable[[str], None] | None = None,
        config: AskConfig | None = None,
    ) -> Answer:
        """Answer ``question``; ``on_text`` receives the answer as it streams."""
        answer = None
        for piece in self._run(question, history or [], config or self.config):
            if isinstance(piece, Answer):
                answer = piece
            elif on_text:
                on_text(piece)
        assert answer is not None
        return answer

    def stream(
        self, question: str, *, history: list[dict[str, str]] | None = None, config: AskConfig | None = None
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated; the full Answer is then ``last_answer``."""
        for piece in self._run(question, history or [], config or self.config):
            if isinstance(piece, str):
                yield piece

    def _run(self, question: str, history: list[dict[str, str]], config: AskConfig) -> Iterator[str | Answer]:
        question = question.strip()
        if not question:
            raise ConfigError("the question is empty; ask something")
        with self._lock:
            started = time.perf_counter()
            use_index = config.retrieval and self.index_name is not None
            hits = self.retrieve(question, config) if use_index else []
            retrieved = time.perf_counter()
            generator = self.generator
            adapter_name = None
            if config.adapter:
                adapter_name, adapter_path = resolve_adapter(config.adapter, self.paths)
                generator.load_adapter(adapter_name, adapter_path)
            parts = self.build_prompt(question, hits, history=history, config=config)
            warnings = []
            if parts.dropped_sources:
                warnings.append(f"{parts.dropped_sources} retrieved sources did not fit the context window")
            if parts.dropped_turns:
                warnings.append(f"the {parts.dropped_turns} oldest conversation turns were dropped to fit")
            if parts.question_trimmed:
                warnings.append("the question was trimmed to fit the context window")
            completion = Completion()
            if use_index and not parts.sources:
                text = NO_ANSWER  # nothing retrieved: do not let the model guess
                yield text
            else:
                gen_config = GenerationConfig(
                    max_tokens=config.max_tokens,
                    temperature=config.temperature,
                    seed=config.seed,
                    adapter=adapter_name,
                    adapter_scale=config.adapter_scale,
                )
                yield from generator.stream(generator.chat_prompt(parts.messages), gen_config, completion)
                text = completion.text.strip()
            ended = time.perf_counter()
            sources = [Source.from_hit(n, hit) for n, hit in enumerate(parts.sources, start=1)]
            answer = Answer(
                question=question,
                text=text,
                sources=sources,
                citations=cited_numbers(text, len(sources)),
                grounded=bool(sources) and not is_refusal(text),
                model=generator.name,
                adapter=adapter_name,
                index=self.index_name if use_index else None,
                prompt_tokens=completion.prompt_tokens,
                cached_tokens=completion.cached_tokens,
                completion_tokens=completion.completion_tokens,
                finish_reason=completion.finish_reason or "stop",
                timings={
                    "retrieval_s": retrieved - started,
                    "prompt_s": completion.prompt_seconds,
                    "decode_s": completion.decode_seconds,
                    "total_s": ended - started,
                },
                warnings=warnings,
            )
            self.last_answer = answer
            yield answer

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
        self.history += [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.text}]
        self.last_answer = answer
        return answer

    def reset(self) -> None:
        self.history = []
        self.last_answer = None


def as_runnable(assistant: Assistant) -> Any:
    """A langchain-core Runnable: ``as_runnable(a).invoke("question") -> dict`` (Answer.to_json())."""
    from langchain_core.runnables import RunnableLambda

    return RunnableLambda(lambda question: assistant.ask(str(question)).to_json(), name="dca-assistant")
