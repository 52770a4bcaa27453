"""``python -m pai.claims [figures/CLAIMS.md] [--runs runs]``: write the scoreboard and its JSON."""
from __future__ import annotations

import argparse
import sys

from .report import write


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pai.claims", description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="figures/CLAIMS.md")
    ap.add_argument("--runs", default="runs", help="folder holding runs/<stage>/*.csv")
    args = ap.parse_args(argv)
    results = write(args.out, args.runs)
    verdicts = [r.verdict for r in results]
    print(f"wrote {args.out} ({len(results)} rows: {verdicts.count('holds')} hold, "
          f"{verdicts.count('contradicted')} contradicted, {verdicts.count('inconclusive')} inconclusive)")
    for r in results:
        if r.reason.startswith("error:"):
            print(f"  {r.id}: {r.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
