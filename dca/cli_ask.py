"""``dca ask`` and ``dca chat``: questions in, grounded answers with their sources out."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from dca.cli_common import JsonFlag, print_json, user_errors
from dca.errors import DcaError

IndexOpt = Annotated[str, typer.Option("--index", "-i", help="Knowledge index to answer from.")]
ModelOpt = Annotated[str | None, typer.Option(help="Catalog generator, registered model or GGUF path.")]
AdapterOpt = Annotated[str | None, typer.Option(help="LoRA adapter: models/adapters/NAME.gguf or a path.")]
KOpt = Annotated[int, typer.Option("--k", help="Sources to retrieve.")]
NoRetrieval = Annotated[bool, typer.Option("--no-retrieval", help="Answer closed-book, without the index.")]
MaxTokens = Annotated[int, typer.Option(help="Most tokens in the answer.")]
NCtx = Annotated[int, typer.Option(help="Context window in tokens.")]
Temperature = Annotated[float, typer.Option(help="0 = greedy.")]
Style = Annotated[
    str, typer.Option(help="cited: sentences ending in [n]; short: the answer alone (sources listed below it).")
]


def _assistant(index: str, model: str | None, n_ctx: int, no_retrieval: bool) -> Any:
    from dca.api import Assistant
    from dca.runtime.llama import RuntimeConfig

    return Assistant(index=None if no_retrieval else index, model=model, runtime=RuntimeConfig(n_ctx=n_ctx))


def _config(
    k: int,
    no_retrieval: bool,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    adapter: str | None,
    style: str = "cited",
) -> Any:
    from dca.api import AskConfig

    return AskConfig(
        k=k,
        retrieval=not no_retrieval,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        adapter=adapter,
        style=style,
    )


def _write(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _print_sources(answer: Any, all_sources: bool = False) -> None:
    shown = answer.sources if all_sources else answer.cited_sources
    if not shown:
        if answer.sources and not all_sources:
            typer.echo("(no source cited)")
        return
    typer.echo("Sources:" if not all_sources else "Sources given to the model:")
    for source in shown:
        where = f" > {source.heading}" if source.heading else ""
        where += f" (page {source.page})" if source.page else ""
        typer.echo(f"  [{source.number}] {source.path}{where}")


def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    index: IndexOpt = "default",
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    k: KOpt = 5,
    no_retrieval: NoRetrieval = False,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as it is generated.")] = False,
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    style: Style = "cited",
    n_ctx: NCtx = 4096,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question from your documents, citing its sources."""
    config = _config(k, no_retrieval, max_tokens, temperature, seed, adapter, style)
    assistant = _assistant(index, model, n_ctx, no_retrieval)
    printer = _write if stream and not as_json else None
    answer = assistant.ask(question, on_text=printer, config=config)
    if as_json:
        print_json(answer.to_json())
        return
    if stream:
        typer.echo()
    else:
        typer.echo(answer.text)
    for warning in answer.warnings:
        typer.echo(f"warning: {warning}", err=True)
    _print_sources(answer, all_sources=style == "short")


def chat(
    index: IndexOpt = "default",
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    k: KOpt = 5,
    no_retrieval: NoRetrieval = False,
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.0,
    style: Style = "cited",
    n_ctx: NCtx = 4096,
) -> None:
    """Talk with your documents: /sources, /index NAME, /reset, /exit. Ctrl-C stops an answer."""
    from dca.api import Conversation

    config = _config(k, no_retrieval, max_tokens, temperature, None, adapter, style)
    conversation = Conversation(_assistant(index, model, n_ctx, no_retrieval))
    conversation.assistant.config = config
    typer.echo("dca chat: ask a question; /sources, /index NAME, /reset, /exit.")
    while True:
        try:
            line = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            conversation.reset()
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
                conversation.assistant = _assistant(name, model, n_ctx, False)
                conversation.assistant.config = config
                typer.echo(f"(now answering from index {name})")
            except DcaError as exc:  # report and keep the chat alive
                typer.echo(f"error: {exc}", err=True)
            continue
        if line.startswith("/"):
            typer.echo("commands: /sources, /index NAME, /reset, /exit")
            continue
        try:
            answer = conversation.ask(line, on_text=_write)
            typer.echo()
            _print_sources(answer, all_sources=style == "short")
        except KeyboardInterrupt:
            typer.echo("\n(stopped)")
        except DcaError as exc:  # one bad turn must not end the chat
            typer.echo(f"error: {exc}", err=True)


def register(app: typer.Typer) -> None:
    app.command("ask")(user_errors(ask))
    app.command("chat")(user_errors(chat))
