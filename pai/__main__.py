"""Command line: ``python -m pai {train,prune,metrics,sweep,bench} ...`` (also installed as ``pai``).

Each subcommand lives next to what it drives and exposes ``main(argv)``, wrapped by
:func:`pai.utils.errors.cli`: bad input is one line on stderr and exit 2 before any work, a diverged run
exit 3, and ``--debug`` shows tracebacks.  OpenMP's passive waiting is set here, before any subcommand
imports torch (:func:`pai.utils.threads.passive_wait`).
"""
from __future__ import annotations

import importlib
import sys

from pai.utils.threads import passive_wait

passive_wait()  # before torch loads: the subcommands import it

COMMANDS = {
    "train": ("pai.train", "train one run from a config file or flags"),
    "prune": ("pai.pruners.cli", "prune a model and write its mask"),
    "metrics": ("pai.metrics.cli", "print graph/path metrics of a mask"),
    "bench": ("pai.bench.__main__", "benchmarks that print figures (train, prune, metrics, threads)"),
    "sweep": ("pai.compendium.runs", "run a sweep of configs through an executor"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"python -m pai: error: unknown command {argv[0]!r}; valid: {', '.join(COMMANDS)}",
                  file=sys.stderr)
        print("usage: python -m pai COMMAND [options] [--debug]\n\ncommands:")
        for name, (_, doc) in COMMANDS.items():
            print(f"  {name:8s} {doc}")
        print("\n`python -m pai COMMAND --help` lists a command's options; bad input exits with 2, a diverged "
              "run with 3; --debug shows tracebacks.")
        return 0 if argv and argv[0] in ("-h", "--help") else (2 if argv else 0)
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
