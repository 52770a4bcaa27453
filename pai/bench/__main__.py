"""``python -m pai.bench {train,prune,metrics,dst,threads,pags,all} [options]``: each prints a table of figures."""
from __future__ import annotations

import importlib
import sys

SUITES = ("train", "prune", "metrics", "dst", "threads", "pags")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUITES, "all"):
        print(f"usage: python -m pai.bench {{{','.join(SUITES)},all}} [options]")
        return 2
    for suite in SUITES if argv[0] == "all" else (argv[0],):
        importlib.import_module(f"pai.bench.{suite}").main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
