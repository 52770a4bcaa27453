"""``python -m pai.claims [figures/CLAIMS.md] [--runs runs]``: write the scoreboard and its JSON."""
from __future__ import annotations

import sys
from pathlib import Path

from pai.utils.errors import Parser, UserError, cli
from pai.utils.io import check_output

from pai.compendium.claims.engine import UNDEFINED
from pai.compendium.claims.report import write


@cli("python -m pai.claims")
def main(argv=None) -> int:
    ap = Parser(prog="python -m pai.claims", description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="figures/CLAIMS.md")
    ap.add_argument("--runs", default="runs", help="folder holding runs/<stage>/*.csv")
    args = ap.parse_args(argv)
    if not Path(args.runs).is_dir():
        raise UserError(f"--runs {args.runs} is not a folder; give the folder holding <stage>/results.csv "
                        f"(run `dvc repro` first)")
    check_output(args.out, what="output")
    check_output(Path(args.out).with_suffix(".json"), what="output")
    results = write(args.out, args.runs)
    verdicts = [r.verdict for r in results]
    print(f"wrote {args.out} ({len(results)} rows: {verdicts.count('holds')} hold, "
          f"{verdicts.count('contradicted')} contradicted, {verdicts.count('inconclusive')} inconclusive, "
          f"{verdicts.count(UNDEFINED)} undefined at their density)")
    for r in results:
        if r.reason.startswith("error:"):
            print(f"  {r.id}: {r.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
