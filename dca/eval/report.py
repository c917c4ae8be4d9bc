"""``dca eval report``: compare run folders side by side and plot accuracy against cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dca.choices import VOTING
from dca.errors import ReportError
from dca.files import atomic_write_bytes

# A RAG run recorded before its config had the key "fusion" was fused by reciprocal rank.
UNRECORDED_FUSION = "rrf"


def load_summary(run: Path) -> dict[str, Any]:
    """A run's summary.json, checked for what the report reads; a missing or damaged one is a ReportError."""
    try:
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise ReportError(f"{run} has no summary.json; finish the run with the same `dca eval` command") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{run}/summary.json is corrupt ({exc}); rerun the eval command to rewrite it") from None
    problem = _shape_problem(summary)
    if problem:
        raise ReportError(f"{run}/summary.json {problem}; rerun the eval command to rewrite it")
    return dict(summary)


def _shape_problem(summary: object) -> str:
    if not isinstance(summary, dict):
        return "is not a JSON object"
    for key, kind in (("task", str), ("n", int), ("primary_metric", str), ("metrics", dict), ("per_question", dict)):
        if not isinstance(summary.get(key), kind):
            return f"lacks {key!r}"
    config = summary.get("config")
    if not isinstance(config, dict) or not {"mode", "model", "adapter"} <= set(config):
        return "lacks its config (mode, model, adapter)"
    if summary["primary_metric"] not in summary["metrics"]:
        return f"has no value for its primary metric {summary['primary_metric']!r}"
    return ""


def setting_words(config: dict[str, Any]) -> list[str]:
    """The settings that tell a run's reasoning apart beyond its strategy and sample count, in
    words: the report's label and the summary's description both use them."""
    words = []
    if config.get("sure_above") is not None:
        words.append(f"sure above {config['sure_above']}")
    if config.get("program_examples"):
        words.append(f"{config['program_examples']} worked examples")
    if config.get("program_prompt", "plain") != "plain":
        words.append(f"{config['program_prompt']} prompt")
    if config.get("strategy") in ("program", "program-vote", "mix", "verify") and not config.get("repair", True):
        words.append("no repair")
    if config.get("searches"):
        words.append(f"{config['searches']} searches" + ("" if config.get("fallback", True) else ", no fallback"))
    return words


def _strategy(config: dict[str, Any]) -> str:
    """The reasoning strategy with its main settings, e.g. "vote adaptive N<=5" or "cot budget 256"."""
    strategy = config.get("strategy", "direct")
    if strategy == "cot":
        head = f"cot budget {config.get('budget', 512)}"
    elif strategy in VOTING:
        how = "adaptive N<=" if config.get("adaptive", True) and strategy != "verify" else "N="
        head = f"{strategy} {how}{config.get('samples', 5)}"
    else:
        head = strategy
    return " ".join([head, *setting_words(config)])


def _label(summary: dict[str, Any]) -> str:
    config = summary["config"]
    label = f"{summary['task']} {config['mode']} {config['model'] or 'default'}"
    if config["mode"] == "rag":
        # how many sources, and how they were found
        label += f" k={config.get('k', 5)}" + (f" cutoff {config['k_cutoff']}" if config.get("k_cutoff") else "")
        label += " rrf" if config.get("fusion", UNRECORDED_FUSION) == "rrf" else ""
        if config.get("answer_style", "cited") != "cited":
            label += f" ({config['answer_style']} answers)"
    if config.get("strategy", "direct") != "direct":
        label += f" {_strategy(config)}"  # searches during reasoning among its words
    return label + (f" +{config['adapter']}" if config["adapter"] else "")


def _curve(summary: dict[str, Any]) -> str:
    """Runs on one curve: same task, mode, model, adapter and strategy (their budgets or samples differ)."""
    config = summary["config"]
    return " ".join(
        str(x)
        for x in (
            summary["task"],
            config["mode"],
            config["model"] or "default",
            config.get("strategy", "direct"),
            config.get("adapter") or "",
            config.get("searches", 0),
        )
    )


def run_cpu(summary: dict[str, Any]) -> str:
    """The CPU that made a run's rows (greedy output and speed depend on it): the rows' own
    record, else the summary's machine (older runs), "?" for runs older still; a run resumed on
    other CPUs names each with its row count."""
    rows = summary.get("row_cpus")
    if isinstance(rows, dict) and rows:
        if len(rows) == 1:
            return str(next(iter(rows)))
        return "; ".join(f"{name} ({count} rows)" for name, count in rows.items())
    machine = summary.get("machine")
    return str(machine.get("cpu_model") or "?") if isinstance(machine, dict) else "?"


def compare_table(summaries: list[dict[str, Any]]) -> str:
    """A markdown table: one row per run, its primary metric, its cost and the CPU it ran on
    (compare seconds, and greedy answers, only between runs on the same CPU)."""
    lines = [
        "| run | n | metric | value | other metrics | tokens/question | seconds/question | cpu |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        primary = s["primary_metric"]
        others = ", ".join(f"{k} {v}" for k, v in s["metrics"].items() if k != primary)
        lines.append(
            f"| {_label(s)} | {s['n']} | {primary} | {s['metrics'].get(primary, 0)} | {others} | "
            f"{s['per_question']['completion_tokens']} | {s['per_question']['seconds']} | {run_cpu(s)} |"
        )
    return "\n".join(lines) + "\n"


def plot_runs(summaries: list[dict[str, Any]], path: Path) -> Path:
    """Primary metric against completion tokens and against seconds per question (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    markers = "osD^vP*X"
    curves: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        curves.setdefault(_curve(s), []).append(s)
    # Test-time scaling: the runs of one strategy (budgets, sample counts) joined by a line.
    for number, runs in enumerate(curves.values()):
        runs = sorted(runs, key=lambda s: s["per_question"]["seconds"])
        for axis, key in zip(axes, ("completion_tokens", "seconds"), strict=True):
            xs = [s["per_question"][key] for s in runs]
            ys = [s["metrics"].get(s["primary_metric"], 0.0) for s in runs]
            if len(runs) > 1:
                axis.plot(xs, ys, alpha=0.5, color=f"C{number % 10}")
            for s, x, y in zip(runs, xs, ys, strict=True):
                label = f"{_label(s)}, n={s['n']} ({s['primary_metric']})"
                axis.scatter(x, y, s=60, marker=markers[number % len(markers)], color=f"C{number % 10}", label=label)
    axes[0].set_xlabel("completion tokens per question")
    axes[1].set_xlabel("seconds per question")
    for axis in axes:
        axis.set_ylabel("primary metric (accuracy or F1)")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    figure.suptitle("dca eval: quality against cost")
    # Runs often sit close together: a legend below the plots instead of labels that overlap.
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.06 + 0.035 * ((len(summaries) + 1) // 2), 1, 1))
    tmp = path.with_suffix(".tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)
    return path


def write_report(runs: list[Path], out: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.png`` into ``out``."""
    summaries = [load_summary(run) for run in runs]
    out.mkdir(parents=True, exist_ok=True)
    table = compare_table(summaries)
    png = plot_runs(summaries, out / "report.png")
    md = out / "report.md"
    atomic_write_bytes(md, ("# dca eval report\n\n" + table + f"\n![quality against cost]({png.name})\n").encode())
    return md, png
