"""``dca serve``: the local OpenAI-compatible server (flags -> ServeConfig -> warm models -> uvicorn)."""

from __future__ import annotations

import os
import socket
import time
from typing import Annotated, Any

import typer

from dca.cli.common import BackendOpt, BaseUrlOpt, StoreOpt, user_errors
from dca.errors import ServeError


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="DCA_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 (env DCA_API_KEY)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Generator to keep loaded (repeat for more; the first is the default)."),
    ] = None,
    index: Annotated[
        str | None, typer.Option("--index", "-i", help="Knowledge index for requests that name none (default: none).")
    ] = None,
    n_ctx: Annotated[int, typer.Option(help="Context window of each model in tokens.")] = 4096,
    max_queue: Annotated[int, typer.Option(help="Requests waiting per model; more are answered 429.")] = 8,
    max_tokens: Annotated[int, typer.Option(help="Most answer tokens (or thinking budget) a request may ask.")] = 4096,
    timeout: Annotated[float, typer.Option(help="Seconds a request may run before it is stopped (504).")] = 600.0,
    store: StoreOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Serve the OpenAI API (chat with reasoning, embeddings) over warm local models."""
    from dca.config import Paths
    from dca.serve import ServeConfig

    config = ServeConfig(
        host=host,
        port=port,
        api_key=api_key or None,
        models=tuple(model or ()),
        index=index,
        n_ctx=n_ctx,
        max_queue=max_queue,
        max_tokens=max_tokens,
        timeout_s=timeout,
    )
    paths = Paths.resolve()
    _check_port(config.host, config.port)
    generators, embedder = _load(config, paths)
    from dca.serve.app import create_app

    app = create_app(config, generators=generators, paths=paths, embedder=embedder)
    where = f"[{config.host}]" if ":" in config.host else config.host
    typer.echo(f"dca serve: OpenAI API at http://{where}:{config.port}/v1 (models: {', '.join(generators)})", err=True)
    if config.api_key is None:
        typer.echo("dca serve: no API key; only this machine can connect", err=True)
    from dca.serve.server import run_server

    run_server(app, config)


def _check_port(host: str, port: int) -> None:
    """A clear error now rather than uvicorn's after the models have loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port") from None


def _load(config: Any, paths: Any) -> tuple[dict[str, Any], Any]:
    """The generators and the embedder, loaded before the first request (that is the point)."""
    from dca.errors import DcaError
    from dca.knowledge.embedding import embedder_for, load_embedder
    from dca.runtime.llama import RuntimeConfig
    from dca.runtime.remote import load_generator
    from dca.settings import load_settings

    chosen = load_settings(paths)
    # the index's own embedder (an unknown index is an error before any model loads), else the default
    embedder_name = embedder_for(paths, config.index, must_exist=True) if config.index is not None else None
    runtime = RuntimeConfig(n_ctx=config.n_ctx, n_threads=chosen["threads"], n_gpu_layers=chosen["gpu_layers"])
    generators: dict[str, Any] = {}
    for name in config.models or (chosen["model"],):
        began = time.perf_counter()
        generator = load_generator(name, paths=paths, config=runtime)
        generators[generator.name] = generator
        typer.echo(f"dca serve: loaded {generator.name} ({time.perf_counter() - began:.1f} s)", err=True)
    began = time.perf_counter()
    try:
        embedder = load_embedder(embedder_name, paths=paths)
    except DcaError as exc:
        if config.index is not None:
            raise
        typer.echo(f"dca serve: /v1/embeddings is off: {exc}", err=True)
        return generators, None
    typer.echo(f"dca serve: loaded {embedder.name} ({time.perf_counter() - began:.1f} s)", err=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return generators, embedder


def register(app: typer.Typer) -> None:
    app.command("serve")(user_errors(serve))
