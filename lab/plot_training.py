"""The reasoning adapter's training in one figure: the SFT loss per step of each run, the
preference runs' DPO loss and reward margin per step (``--dpo``), and the GSM8K accuracy of the
base and of each round's adapter (eval run folders, same strategy).

    .venv/bin/python lab/plot_training.py --train runs/train/ref1 \\
        --eval base=lab/results/eval/gsm8k-program ref1=lab/results/eval/gsm8k-program-ref1 \\
        --out lab/results/training.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="*", type=Path, default=[], help="SFT run folders (log.jsonl)")
    parser.add_argument("--dpo", nargs="*", type=Path, default=[], help="DPO run folders (log.jsonl)")
    parser.add_argument("--eval", nargs="+", default=[], help="LABEL=EVAL_RUN_DIR, in round order")
    parser.add_argument("--title", default="GSM8K accuracy (first 200 test_dev)", help="the accuracy panel's axis")
    parser.add_argument("--out", type=Path, default=Path("lab/results/training.png"))
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 + bool(args.train)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4))
    axes = list(axes)
    if args.train:
        loss_ax = axes.pop(0)
        for run in args.train:
            lines = _log(run)
            loss_ax.plot([x["step"] for x in lines], [x["loss"] for x in lines], label=run.name)
        loss_ax.set(xlabel="optimizer step", ylabel="loss (response tokens)", title="SFT")
        loss_ax.legend()
    dpo_ax = axes.pop(0)
    margin_ax = dpo_ax.twinx()
    for run in args.dpo:
        lines = _log(run)
        steps = [x["step"] for x in lines]
        label = run.parent.name if run.name == "run" else run.name  # lab/results/train/NAME/run
        dpo_ax.plot(steps, [x["dpo"] for x in lines], label=f"{label} DPO loss")
        margin_ax.plot(steps, [x["margin"] for x in lines], linestyle="--", label=f"{label} reward margin")
    dpo_ax.set(xlabel="optimizer step", ylabel="DPO loss", title="preference training")
    margin_ax.set(ylabel="reward margin (beta x log-ratio, chosen - rejected)")
    handles = dpo_ax.get_legend_handles_labels()[0] + margin_ax.get_legend_handles_labels()[0]
    if handles:
        dpo_ax.legend(handles=handles, fontsize=8)
    acc_ax = axes.pop(0)
    labels, accuracy, seconds = [], [], []
    for item in args.eval:
        label, folder = item.split("=", 1)
        summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
        labels.append(label)
        accuracy.append(summary["metrics"][summary["primary_metric"]])
        seconds.append(summary["per_question"]["seconds"])
    bars = acc_ax.bar(labels, accuracy, color="tab:blue")
    for bar, acc, sec in zip(bars, accuracy, seconds, strict=True):
        acc_ax.annotate(f"{acc:.3f}\n{sec:.1f} s/q", (bar.get_x() + bar.get_width() / 2, acc), ha="center", va="bottom")
    acc_ax.set(ylabel=args.title, title="base and adapters, same strategy", ylim=(0, 1))
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"written {args.out}")


def _log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "log.jsonl").read_text(encoding="utf-8").split("\n") if x]


if __name__ == "__main__":
    main()
