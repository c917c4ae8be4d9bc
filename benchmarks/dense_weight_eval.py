"""`dca eval` with hybrid search leaning on dense search: the convex fusion's dense ranking
weighted ALPHA and the keyword ranking 1 - ALPHA (dca's default: 0.5 each), everything else as
dca ships. The downstream check of a fusion weight (docs/RESULTS.md, "A dense weight, measured").

    .venv/bin/python benchmarks/dense_weight_eval.py --alpha 0.6 -- eval squad2 ... --out DIR
"""

from __future__ import annotations

import argparse
from functools import partial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, required=True, help="the dense ranking's weight, in (0, 1)")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="a dca command line, after --")
    args = parser.parse_args()
    if not 0 < args.alpha < 1:
        raise SystemExit(f"--alpha must be between 0 and 1, got {args.alpha}")
    import dca.knowledge.retrieval as retrieval
    from dca.cli import app

    # what search() calls for fusion="convex", with the dense ranking (first) weighted alpha
    retrieval.fuse_convex = partial(retrieval.fuse_convex, weights=(args.alpha, 1 - args.alpha))
    app([a for a in args.argv if a != "--"], standalone_mode=False)


if __name__ == "__main__":
    main()
