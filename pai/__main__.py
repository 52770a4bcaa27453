"""Command line: ``python -m pai {train,prune,metrics,bench} ...`` (also installed as ``pai``).

Each subcommand lives next to what it drives and exposes ``main(argv)``.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("pai.train", "train one run from a config file or flags"),
    "prune": ("pai.pruners.cli", "prune a model and write its mask"),
    "metrics": ("pai.metrics.cli", "print graph/path metrics of a mask"),
    "bench": ("pai.bench.__main__", "benchmarks that print figures (train, prune, metrics)"),
    "sweep": ("pai.runs", "run a sweep of configs through an executor"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: python -m pai COMMAND [options]\n\ncommands:")
        for name, (_, doc) in COMMANDS.items():
            print(f"  {name:8s} {doc}")
        return 0 if argv and argv[0] in ("-h", "--help") else (2 if argv else 0)
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
