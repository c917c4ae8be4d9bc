"""``dca ask`` and ``dca chat``: questions in, grounded answers with their sources out."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated, Any

import typer

from dca.cli.common import (
    BackendOpt,
    BaseUrlOpt,
    JsonFlag,
    StoreOpt,
    ThinkingMode,
    plain,
    print_json,
    settings,
    user_errors,
)
from dca.cli.options import answer_options, with_settings
from dca.errors import ConfigError, DcaError

IndexOpt = Annotated[
    str | None, typer.Option("--index", "-i", help="Knowledge index to answer from (default: the index setting).")
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Catalog generator, registered model or GGUF path.")
]
NoLog = Annotated[bool, typer.Option("--no-log", help="Do not record this in the question log (`dca logs`).")]
Threads = Annotated[int | None, typer.Option(help="CPU threads (default: the threads setting; 0: physical cores).")]
GpuLayers = Annotated[
    int | None, typer.Option(help="Layers offloaded to a GPU (default: the gpu_layers setting; -1: all, 0: none).")
]
NCtx = Annotated[int, typer.Option(help="Context window in tokens.")]
Think = Annotated[bool, typer.Option("--think", help="Reason before answering, with the measured default strategy.")]
Thinking = Annotated[
    ThinkingMode,
    typer.Option(help="show (dimmed, live), hide (only the answer) or summary."),
]


def _assistant(
    index: str | None, model: str | None, n_ctx: int, no_retrieval: bool, threads: int | None, gpu_layers: int | None
) -> Any:
    from dca.api import Assistant
    from dca.runtime.llama import RuntimeConfig

    chosen = settings()
    runtime = RuntimeConfig(
        n_ctx=n_ctx, n_threads=chosen.pick("threads", threads), n_gpu_layers=chosen.pick("gpu_layers", gpu_layers)
    )
    index = None if no_retrieval else chosen.pick("index", index)
    return Assistant(index=index, model=chosen.pick("model", model), runtime=runtime)


def _check_k(k: int | None, assistant: Any) -> None:
    """An explicit --k above the index's size is a mistake worth a line (a setting is not checked:
    a small index then gives what it has)."""
    if k is not None and assistant.index_name is not None:
        size = assistant.index_size()
        if k > size:
            raise ConfigError(
                f"--k {k} is more than the {size} chunks in index {assistant.index_name!r}; use at most {size}"
            )


def _config(options: dict[str, Any], think: bool) -> Any:
    """The AskConfig of the flags given (bad values stop here, before any notice or model load)."""
    from dca.askconfig import ask_config

    config = ask_config(with_settings(options), think=think)
    if think and "strategy" not in options and not config.reasoning.thinks:
        typer.echo(
            "--think: answering directly. On questions over your documents, thinking scored below a "
            "direct answer with this model (HotpotQA, lab/NOTEBOOK.md); --strategy cot thinks anyway.",
            err=True,
        )
    return config


def _note_checks(answer: Any) -> None:
    """After a streamed answer, which showed the model's own text: what the checks changed in it
    (sentences the sources do not hold, dropped; the whole answer, refused; citations moved to
    the source that states their claim: the sources listed next follow the moves)."""
    if answer.unsupported_text or any(w.startswith("dropped ") for w in answer.warnings):
        typer.echo(plain(f"note: after its checks the answer is: {answer.text}"), err=True)
    if answer.citations_moved:
        moved = ", ".join(f"[{a}] -> [{b}]" for a, b in answer.citations_moved)
        typer.echo(f"note: citations moved to the source that states the claim: {moved}", err=True)


def _print_sources(answer: Any, all_sources: bool = False) -> None:
    """The sources cited (or all those given). A refusal lists what was read, closest first, so
    the user sees that the sources were searched and what they hold instead."""
    from dca.answer import is_refusal

    refused = bool(answer.sources) and is_refusal(answer.text)
    shown = answer.sources if all_sources or refused else answer.cited_sources
    if not shown:
        if answer.sources and not all_sources:
            typer.echo("(no source cited)")
        return
    typer.echo(
        "Read, and none states it (closest first):"
        if refused
        else "Sources:"
        if not all_sources
        else "Sources given to the model:"
    )
    from dca.knowledge.retrieval import location_label

    for source in shown:
        typer.echo(plain(f"  [{source.number}] {location_label(source.path, source.heading, source.page)}"))


def _question(question: str | None) -> str:
    """The question argument; ``-`` or none at all reads it from stdin when stdin is not a terminal."""
    if question not in (None, "-"):
        return str(question)
    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("give a question, or pipe one in: echo 'question' | dca ask -")
    with contextlib.suppress(AttributeError, ValueError):  # bad bytes: one clear error later, not here
        sys.stdin.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    text = sys.stdin.read()
    if not text.strip():
        raise ConfigError("stdin held no question; pipe one in: echo 'question' | dca ask -")
    return text.strip()


@answer_options("ask")
def ask(
    question: Annotated[
        str | None, typer.Argument(help="Your question; - (or nothing, with a pipe) reads it from stdin.")
    ] = None,
    index: IndexOpt = None,
    model: ModelOpt = None,
    think: Think = False,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as it is generated.")] = False,
    thinking: Thinking = "show",
    n_ctx: NCtx = 4096,
    threads: Threads = None,
    gpu_layers: GpuLayers = None,
    no_log: NoLog = False,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    *,
    options: dict[str, Any],
) -> None:
    """Answer a question from your documents, citing its sources (--think: reason first)."""
    from dca.cli.think import Display, consume

    question = _question(question)
    config = _config(options, think)
    display = Display(thinking)  # checks --thinking before the model loads
    assistant = _assistant(index, model, n_ctx, not config.retrieval, threads, gpu_layers)
    _check_k(options.get("k"), assistant)
    run = assistant.start(question, config=config)
    if as_json:
        answer = consume(run, lambda event: None, pause=False)
        print_json(answer.to_json())
        _log(answer, None, no_log)
        return
    live = stream or config.reasoning.thinks
    display.stream_answer = live
    answer = consume(run, display if live else (lambda event: None), pause=False)
    display.finish(answer)
    if not live:
        typer.echo(plain(answer.text))
    for warning in answer.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if live:
        _note_checks(answer)
    _print_sources(answer, all_sources=config.style == "short" or answer.reasoning is not None)
    _log(answer, None, no_log)


@answer_options("chat")
def chat(
    index: IndexOpt = None,
    model: ModelOpt = None,
    think: Think = False,
    thinking: Thinking = "show",
    n_ctx: NCtx = 4096,
    threads: Threads = None,
    gpu_layers: GpuLayers = None,
    no_log: NoLog = False,
    resume: Annotated[bool, typer.Option("--continue", help="Continue the last logged conversation.")] = False,
    store: StoreOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    *,
    options: dict[str, Any],
) -> None:
    """Talk with your documents: /sources, /index NAME, /reset, /exit. Ctrl-C stops an answer;
    during thinking it pauses to take a note (a second Ctrl-C cancels)."""
    from dca.api import Conversation
    from dca.cli.think import Display

    config = _config(options, think)
    Display(thinking)  # a bad --thinking fails before the model loads
    from dca.logbook import new_conversation

    conversation_id = _continued(resume) or new_conversation()
    conversation = Conversation(_assistant(index, model, n_ctx, not config.retrieval, threads, gpu_layers))
    conversation.assistant.config = config
    if resume:
        conversation.history = _history(conversation_id)
    typer.echo(
        'dca chat: ask a question; /sources, /index NAME, /reset, /exit. End a line with \\ to go on, or wrap lines in """.'
    )
    with contextlib.suppress(AttributeError, ValueError):  # a line in another encoding ends one turn, not the chat
        sys.stdin.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    _line_editing(no_log)
    while True:
        try:
            line = _read_turn()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        except UnicodeDecodeError:  # a line in another encoding: say so, keep the chat
            typer.echo("error: that line is not valid UTF-8 text; check the terminal's encoding and retype it")
            continue
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            conversation.reset()
            conversation_id = new_conversation()
            typer.echo("(conversation cleared)")
            continue
        if line == "/sources":
            if conversation.last_answer:
                _print_sources(conversation.last_answer, all_sources=True)
            else:
                typer.echo("(no answer yet)")
            continue
        if line.startswith("/index"):
            name = line.removeprefix("/index").strip()
            if not name:
                typer.echo(f"(index: {conversation.assistant.index_name})")
                continue
            try:
                conversation.assistant = _assistant(name, model, n_ctx, False, threads, gpu_layers)
                conversation.assistant.config = config
                typer.echo(f"(now answering from index {name})")
            except DcaError as exc:  # report and keep the chat alive
                typer.echo(f"error: {exc}", err=True)
            continue
        if line.startswith("/"):
            typer.echo("commands: /sources, /index NAME, /reset, /exit")
            continue
        try:
            answer = _chat_turn(conversation, line, thinking)
            if answer is None:
                typer.echo("\n(cancelled)")
                continue
            _note_checks(answer)  # a chat turn streams its answer
            _print_sources(answer, all_sources=config.style == "short")
            _log(answer, conversation_id, no_log)
        except KeyboardInterrupt:
            typer.echo("\n(stopped)")
        except DcaError as exc:  # one bad turn must not end the chat
            typer.echo(f"error: {exc}", err=True)


def _line_editing(no_log: bool) -> None:
    """Arrow keys and history on a terminal (readline); the history persists in DCA_HOME when the
    question log is on (it holds the same questions)."""
    if not sys.stdin.isatty():
        return
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input()
        return
    import atexit

    from dca.config import Paths
    from dca.logbook import logging_enabled

    if not logging_enabled(no_log):
        return
    history = Paths.resolve().home / "chat_history"
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(1000)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)

    atexit.register(save)


def _read_turn(read: Any = input) -> str:
    """One question: a line; lines ending in a backslash go on; a line of three double quotes
    opens a block that the next such line closes."""
    first = read("> ")
    if first.strip() == '"""':
        lines = []
        while (line := read("... ")).strip() != '"""':
            lines.append(line)
        return "\n".join(lines).strip()
    lines = [first]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(read("... "))
    return "\n".join(lines).strip()


def _log(answer: Any, conversation: str | None, no_log: bool) -> None:
    """Record the turn in the question log (a failure to log warns; it never costs the answer)."""
    from dca.config import Paths
    from dca.logbook import LogBook, logging_enabled, new_conversation

    if not logging_enabled(no_log):
        return
    try:
        LogBook(Paths.resolve()).record(answer, conversation=conversation or new_conversation())
    except DcaError as exc:
        typer.echo(f"warning: the question was not logged ({exc})", err=True)


def _continued(resume: bool) -> str | None:
    from dca.config import Paths
    from dca.logbook import LogBook

    if not resume:
        return None
    last = LogBook(Paths.resolve()).last_conversation()
    if last is None:
        raise ConfigError("there is no logged conversation to continue; start one with `dca chat`")
    return last


def _history(conversation: str) -> list[dict[str, str]]:
    from dca.config import Paths
    from dca.logbook import LogBook

    turns = LogBook(Paths.resolve()).recent(50, conversation=conversation)
    typer.echo(
        f"(continuing a conversation of {len(turns)} turns; the last question: {plain(turns[-1].question)[:80]})"
    )
    return [
        m for t in turns for m in ({"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer})
    ]


def _chat_turn(conversation: Any, line: str, thinking: str) -> Any:
    """One chat turn shown live; Ctrl-C during it pauses for a note. None when cancelled."""
    from dca.cli.think import Display, consume

    display = Display(thinking)
    run = conversation.start(line)
    answer = consume(run, display, pause=True)
    if answer is not None:
        display.finish(answer)
        conversation.record(answer)
    return answer


def register(app: typer.Typer) -> None:
    app.command("ask")(user_errors(ask))
    app.command("chat")(user_errors(chat))
