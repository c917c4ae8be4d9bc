"""``dca index ...``: the knowledge-store commands (flags -> config -> dca.knowledge call)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dca.cli.common import (
    JsonFlag,
    RetrievalMode,
    StoreOpt,
    plain,
    print_json,
    progress_bar,
    resumes,
    settings,
    user_errors,
)
from dca.config import Paths

index_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[n]" stays "[n]"
    help="Build and search knowledge indexes over your documents.",
    no_args_is_help=True,
)

IndexOpt = Annotated[
    str | None, typer.Option("--index", "-i", help="Index name (folder under indexes/); default: the index setting.")
]


def _print_report(report: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    skipped = report["skipped"]
    assert isinstance(skipped, dict)
    parts = [
        f"{len(report['added'])} added",  # type: ignore[arg-type]
        f"{len(report['updated'])} updated",  # type: ignore[arg-type]
        f"{report['unchanged']} unchanged",
        f"{len(report['removed'])} removed",  # type: ignore[arg-type]
        f"{len(skipped)} skipped",
    ]
    typer.echo(
        f"index {report['index']}: "
        + ", ".join(parts)
        + f"; {report['chunks_added']} chunks added, {report['chunks_removed']} removed "
        f"in {report['seconds']:.1f}s"
    )
    reasons: dict[str, int] = {}
    for reason in skipped.values():
        key = str(reason).split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
    for reason, count in sorted(reasons.items()):
        typer.echo(plain(f"  skipped {count}: {reason}"))


def _ingest_config(
    include: list[str],
    exclude: list[str],
    json_field: str,
    chunk_tokens: int | None,
    overlap_tokens: int | None,
    follow_symlinks: bool = False,
) -> object:
    from dca.knowledge import ChunkConfig, IngestConfig, LoadConfig

    chunking = None
    if chunk_tokens is not None or overlap_tokens is not None:
        defaults = ChunkConfig()
        chunking = ChunkConfig(
            chunk_tokens=defaults.chunk_tokens if chunk_tokens is None else chunk_tokens,
            overlap_tokens=defaults.overlap_tokens if overlap_tokens is None else overlap_tokens,
        )
    return IngestConfig(
        load=LoadConfig(
            include=tuple(include), exclude=tuple(exclude), json_field=json_field, follow_symlinks=follow_symlinks
        ),
        chunking=chunking,
    )


def _given_paths(given: list[str]) -> list[Path]:
    """The paths as typed; an empty one (an unset "$DIR") is an error, not the current folder."""
    from dca.errors import ConfigError

    if any(not p.strip() for p in given):
        raise ConfigError("a path is empty (an unset variable?); give the file or folder, or . for this folder")
    return [Path(p) for p in given]


def _ingest(run: Any, target: object, index: str, embedder: str | None, config: object, as_json: bool) -> None:
    """Run add_paths or sync_folder with the right embedder and a progress bar, then report."""
    from dca.knowledge.embedding import embedder_for, load_embedder

    paths = Paths.resolve()
    name = embedder_for(paths, index, embedder)
    with progress_bar(unit="files") as progress:
        report = run(
            paths,
            index,
            target,
            embedder_name=name,
            embedder_factory=lambda: load_embedder(name, paths=paths),
            config=config,
            progress=progress,
        )
    _print_report(report.to_json(), as_json)


Include = Annotated[list[str], typer.Option("--include", help="Only files matching this glob (repeatable).")]
Exclude = Annotated[list[str], typer.Option("--exclude", help="Skip files matching this glob (repeatable).")]
JsonField = Annotated[str, typer.Option(help="Field holding the text in .json/.jsonl records.")]
ChunkTokens = Annotated[int | None, typer.Option(help="Embedder tokens per chunk (new index: 200).")]
OverlapTokens = Annotated[int | None, typer.Option(help="Tokens shared by neighbouring chunks (new index: 32).")]
EmbedderOpt = Annotated[str | None, typer.Option(help="Catalog embedder (default: the index's, else the default).")]
FollowSymlinks = Annotated[
    bool, typer.Option("--follow-symlinks", help="Read symlinks that lead outside the given folders (default: skip).")
]


@index_app.command("add")
@user_errors
@resumes
def index_add(
    paths_in: Annotated[list[str], typer.Argument(metavar="PATH...", help="Files or folders (recursive).")],
    index: IndexOpt = None,
    include: Include = [],  # noqa: B006 - typer reads the default
    exclude: Exclude = [],  # noqa: B006
    json_field: JsonField = "text",
    chunk_tokens: ChunkTokens = None,
    overlap_tokens: OverlapTokens = None,
    embedder: EmbedderOpt = None,
    follow_symlinks: FollowSymlinks = False,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
) -> None:
    """Add files and folders to an index; unchanged files are skipped, changed ones replaced."""
    index = settings().pick("index", index)
    from dca.knowledge import add_paths

    _ingest(
        add_paths,
        _given_paths(paths_in),
        index,
        embedder,
        _ingest_config(include, exclude, json_field, chunk_tokens, overlap_tokens, follow_symlinks),
        as_json,
    )


@index_app.command("sync")
@user_errors
@resumes
def index_sync(
    folder: Annotated[str, typer.Argument(help="The folder the index should mirror.")],
    index: IndexOpt = None,
    include: Include = [],  # noqa: B006
    exclude: Exclude = [],  # noqa: B006
    json_field: JsonField = "text",
    embedder: EmbedderOpt = None,
    follow_symlinks: FollowSymlinks = False,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
) -> None:
    """Make the index match a folder: add new files, update changed ones, remove deleted ones."""
    index = settings().pick("index", index)
    from dca.knowledge import sync_folder

    config = _ingest_config(include, exclude, json_field, None, None, follow_symlinks)
    _ingest(sync_folder, _given_paths([folder])[0], index, embedder, config, as_json)


@index_app.command("remove")
@user_errors
def index_remove(
    paths_in: Annotated[list[str], typer.Argument(metavar="PATH...", help="Files or folders to drop.")],
    index: IndexOpt = None,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
) -> None:
    """Delete documents (files, or everything under a folder) from an index."""
    from dca.knowledge import remove_paths
    from dca.knowledge.embedding import embedder_for

    index = settings().pick("index", index)
    paths = Paths.resolve()
    report = remove_paths(paths, index, _given_paths(paths_in), embedder_name=embedder_for(paths, index))
    _print_report(report.to_json(), as_json)


@index_app.command("search")
@user_errors
def index_search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Chunks to return.")] = 5,
    mode: Annotated[RetrievalMode, typer.Option(help="Dense + BM25 (hybrid), or one of them.")] = "hybrid",
    source: Annotated[str, typer.Option(help="Only sources matching this glob, e.g. '*.md'.")] = "",
    as_json: JsonFlag = False,
    store: StoreOpt = None,
) -> None:
    """Print the chunks that best match a query, with source, location and score."""
    index = settings().pick("index", index)
    from dca.knowledge import SearchConfig
    from dca.knowledge.retrieval import search_index
    from dca.knowledge.stores import open_store

    config = SearchConfig(k=k, mode=mode, source=source)
    paths = Paths.resolve()
    opened = open_store(paths, index)
    try:
        hits = search_index(opened, query, config, paths=paths)
    finally:
        opened.close()
    if as_json:
        print_json([h.to_json() for h in hits])
        return
    if not hits:
        typer.echo("no matching chunks")
    for hit in hits:
        from dca.knowledge.retrieval import location_label

        c = hit.chunk
        where = location_label(c.path, c.heading, c.page)
        typer.echo(plain(f"[{hit.rank}] {where}  chars {c.char_start}-{c.char_end}  score {hit.score:.4f}"))
        snippet = " ".join(plain(c.text).split())
        typer.echo(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")


@index_app.command("list")
@user_errors
def index_list(
    all_indexes: Annotated[bool, typer.Option("--all", help="Also the indexes `dca eval` built.")] = False,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
) -> None:
    """List the indexes under DCA_HOME (without those `dca eval` built, unless --all)."""
    import sqlite3

    from dca.errors import DcaError
    from dca.knowledge.stores import index_names, open_store, where

    paths = Paths.resolve()
    rows: list[dict[str, Any]] = []
    for name in index_names(paths, hide_eval=not all_indexes):
        try:  # one broken index is marked; the others are still listed
            opened = open_store(paths, name)
            try:
                rows.append(opened.stats())
            finally:
                opened.close()
        except (DcaError, sqlite3.DatabaseError, OSError, ValueError) as exc:
            rows.append({"name": name, "error": str(exc).splitlines()[0]})
    if as_json:
        print_json(rows)
        return
    hidden = len(index_names(paths)) - len(rows) if not all_indexes else 0
    if not rows:
        typer.echo(f"no indexes yet in {where(paths)}; create one with `dca index add PATH`")
    if hidden:
        typer.echo(f"({hidden} built by `dca eval` not shown: --all lists them)")
    width = max((len(str(row["name"])) for row in rows), default=0) + 2
    for row in rows:
        if "error" in row:
            typer.echo(f"{row['name']:<{width}} BROKEN: {row['error']}")
        else:
            typer.echo(
                f"{row['name']:<{width}} {row['documents']:>7} documents {row['chunks']:>8} chunks  {row['embedder']}"
            )


@index_app.command("stats")
@user_errors
def index_stats(name: IndexOpt = None, as_json: JsonFlag = False, store: StoreOpt = None) -> None:
    """Counts, embedder, chunking and vector-index kind of one index."""
    name = settings().pick("index", name)
    from dca.knowledge.stores import open_store

    opened = open_store(Paths.resolve(), name)
    stats = opened.stats()
    opened.close()
    if as_json:
        print_json(stats)
        return
    chunking = stats["chunking"] or {}
    ann = stats["ann"] or {}
    lines = [
        ("index", stats["name"]),
        ("documents", f"{stats['documents']:,}"),
        ("chunks", f"{stats['chunks']:,}"),
        ("embedder", f"{stats['embedder']} ({stats['dim']} dimensions)"),
        ("chunking", f"{chunking.get('chunk_tokens', '?')} tokens, {chunking.get('overlap_tokens', '?')} overlap"),
        ("vectors", str(stats["vectors"]) + (f", nprobe {ann['nprobe']}" if ann.get("nprobe") else "")),
        ("generation", str(stats["generation"])),
        ("on disk", f"{stats['bytes_on_disk'] / 1e6:,.1f} MB"),
    ]
    for key, value in lines:
        typer.echo(f"{key:<11} {value}")


@index_app.command("verify")
@user_errors
def index_verify(
    name: IndexOpt = None,
    repair: Annotated[bool, typer.Option(help="Rebuild the FAISS file from SQLite if it is damaged.")] = False,
    deep: Annotated[
        bool, typer.Option(help=f"Compare every FAISS vector with SQLite's (default: a sample of {64}).")
    ] = False,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
) -> None:
    """Check FAISS against SQLite (counts, ids) and document hashes against the files on disk."""
    name = settings().pick("index", name)
    from dca.knowledge.stores import open_store
    from dca.knowledge.verify import verify_index

    opened = open_store(Paths.resolve(), name)
    try:
        if repair:
            with opened.writer():
                report = verify_index(opened, repair=True, deep=deep)
        else:
            report = verify_index(opened, deep=deep)
    finally:
        opened.close()
    if as_json:
        print_json(report.to_json())
    else:
        typer.echo(f"index {name}: {report.documents} documents, {report.chunks} chunks, {report.vectors} vectors")
        for problem in report.problems:
            typer.echo(f"  problem: {problem}")
        for stale in report.stale:
            typer.echo(plain(f"  stale: {stale}"))
        if report.repaired:
            typer.echo("  repaired: the FAISS file was rebuilt from SQLite")
        if report.stale:
            typer.echo(f"  run `dca index sync FOLDER --index {name}` to bring it up to date")
        if report.ok:
            typer.echo("ok")
        elif report.sqlite_damaged:
            typer.echo(f"damaged: delete the index (`dca index delete -i {name}`) and add the files again")
        else:
            typer.echo(f"damaged: run `dca index verify -i {name} --repair`")
    if not report.ok:
        raise typer.Exit(1)


@index_app.command("delete")
@user_errors
def index_delete(
    name: Annotated[str, typer.Option("--index", "-i", help="Index to delete (no default: name it).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
) -> None:
    """Delete an index and all its files."""
    from dca.knowledge.stores import delete_index, require_index

    paths = Paths.resolve()
    require_index(paths, name)  # before asking: no confirmation for an index that is not there
    if not yes and not typer.confirm(f"delete index {name!r} and all its files?", err=as_json):
        raise typer.Exit(1)
    delete_index(paths, name)
    if as_json:
        print_json({"deleted": name})
    else:
        typer.echo(f"deleted index {name}")


@index_app.command("copy")
@user_errors
@resumes
def index_copy(
    to: Annotated[
        str, typer.Option("--to", help="Target store: a postgresql:// URL, or 'embedded' (DCA_HOME/indexes).")
    ],
    index: IndexOpt = None,
    as_name: Annotated[str | None, typer.Option("--as", help="Name in the target (default: the same).")] = None,
    store: StoreOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Copy an index to another store (embedded <-> PostgreSQL) without embedding again (resumable)."""
    from dca.knowledge.stores import check_store_url, copy_index, store_url

    paths = Paths.resolve()
    name = settings().pick("index", index)
    source = store_url(paths)
    target = None if to == "embedded" else check_store_url(to, "--to")
    counts = copy_index(paths, name, source=source, target=target, as_name=as_name)
    if as_json:
        print_json(counts)
        return
    typer.echo(
        f"copied {counts['copied']} documents ({counts['chunks']} chunks), {counts['skipped']} already there, "
        f"into {to if target is None else 'the PostgreSQL store'} as {as_name or name}"
    )
