"""`dca eval` with hybrid search leaning on dense search: the convex fusion's dense ranking
weighted ALPHA and the keyword ranking 1 - ALPHA (dca's default: 0.5 each), everything else as
dca ships: the pipeline's retrieve stage searches with ``SearchConfig.dense_weight``. The
downstream check of a fusion weight (lab/NOTEBOOK.md, "A dense weight, measured").

    .venv/bin/python lab/dense_weight_eval.py --alpha 0.6 --task squad2 --data FILE --out DIR \\
        --set answerable_only=true --set k=3 --set max_tokens=32 --set answer_style='"short"'
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, required=True, help="the dense ranking's weight, in (0, 1)")
    parser.add_argument("--task", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="an EvalConfig field")
    args = parser.parse_args()
    if not 0 < args.alpha < 1:
        raise SystemExit(f"--alpha must be between 0 and 1, got {args.alpha}")
    from dca.eval.runner import eval_config, run_eval
    from dca.knowledge.embedding import load_embedder
    from dca.knowledge.retrieval import SearchConfig, search_index
    from dca.knowledge.stores import open_store
    from dca.pipeline import STAGES

    opened: dict[str, Any] = {}

    def retrieve(run: Any) -> Any:
        if run.retrieve is not None and not run.searching:
            if "index" not in opened:
                opened["index"] = open_store(run.paths, run.index_name)
                opened["embedder"] = load_embedder(opened["index"].manifest.embedder, paths=run.paths)
            c = run.config
            search = SearchConfig(k=c.k, mode=c.mode, cutoff=c.k_cutoff, dense_weight=args.alpha)
            run.hits = search_index(opened["index"], run.question, search, paths=run.paths, embedder=opened["embedder"])
        yield from ()

    options: dict[str, Any] = {"task": args.task, "data": args.data}
    options.update({key: json.loads(value) for key, _, value in (item.partition("=") for item in args.set)})
    run_eval(eval_config(**options), out=args.out, stages=replace(STAGES, retrieve=retrieve))


if __name__ == "__main__":
    main()
