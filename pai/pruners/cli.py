"""``python -m pai prune``: build a model, prune it, write the mask atomically, print a layer table.

    python -m pai prune --model resnet20 --method synflow --density 0.01 --seed 0 --out mask.pt \\
        --dataset cifar10 --option dtype=float64 --option iterations=100

The model is initialised exactly as ``pai.train`` does (``pai.models.initial_model``), so a mask of a
weight-dependent method (magnitude, SynFlow, ...) belongs to the network that a run with the same seed
trains.  ``--num-classes/--in-channels/--image-size`` default to the dataset's (Fashion-MNIST's 10/1/28
without ``--dataset``).  Bad input -- a density outside (0, 1], an unknown model, method or option, a
data-dependent method without ``--dataset`` -- prints one clear line to stderr and exits with code 2
without writing anything.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Optional

from pai.utils.errors import Parser, UserError, cli
from pai.utils.io import check_output
from pai.masks import layer_table, num_kept, num_total, save_mask, validate_density

DEFAULT_DATASET = "fashion-mnist"  # the project's default: its shape without --dataset


def parse_value(text: str):
    """``key=value`` values: true/false/none, int, float, a JSON object/list, else the string."""
    low = text.strip().lower()
    if low[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(items: List[str]) -> Dict[str, object]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option expects key=value, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    from pai.pruners import names
    from pai.data import dataset_names
    from pai.models import model_names

    p = Parser(prog="python -m pai prune", description="Prune a model at initialisation and write its mask "
               "(density = fraction of weights kept). Bad input exits with 2 before any work; --debug shows "
               "tracebacks.")
    p.add_argument("--model", required=True, help=f"one of {', '.join(model_names())}")
    p.add_argument("--method", required=True, help=f"one of {', '.join(names())}")
    p.add_argument("--density", required=True, type=float, help="fraction of weights kept, in (0, 1]")
    p.add_argument("--seed", type=int, default=0, help="seeds the initialisation and the pruner")
    p.add_argument("--out", required=True, help="mask file to write (torch.save, via pai.masks.save_mask)")
    p.add_argument("--dataset", default=None, help=f"one of {', '.join(dataset_names())}; required by "
                   "data-dependent methods")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--in-channels", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a pruner option (repeatable), e.g. --option dtype=float64")
    p.add_argument("--quiet", action="store_true", help="do not print the per-layer table")
    p.add_argument("--degenerate", choices=("raise", "warn", "ignore"), default="raise",
                   help="a degenerate mask (empty layers, no input->output path, count far off target): an "
                   "error (default), a warning, or nothing")
    return p


def check_options(method: str, fn, options: Dict[str, object]) -> None:
    """``ValueError`` naming an option that ``fn`` (the pruner ``method``) does not take, with the valid ones."""
    from pai.pruners import check_options as check

    check(method, options)


def format_table(mask) -> str:
    rows = [f"{'layer':40s} {'shape':>20s} {'kept':>10s} {'total':>10s} {'density':>8s}"]
    for name, shape, kept, total, dens in layer_table(mask):
        rows.append(f"{name:40s} {str(shape):>20s} {kept:10d} {total:10d} {dens:8.4f}")
    rows.append(f"{'all':40s} {'':>20s} {num_kept(mask):10d} {num_total(mask):10d} "
                f"{num_kept(mask) / num_total(mask):8.4f}")
    return "\n".join(rows)


@cli("python -m pai prune")
def main(argv: Optional[List[str]] = None) -> int:
    """Every check comes before any work: options, names, the output file, then the data, then pruning.
    A degenerate mask (empty layers, no input->output path, far off the density) is an error unless
    ``--degenerate warn`` or ``ignore`` (with ``pai.prune``'s checks)."""
    args = build_parser().parse_args(argv)
    from pai.pruners import get, prune
    from pai.data import shape as data_shape
    from pai.models import initial_model

    density = validate_density(args.density)
    options = parse_options(args.option)
    fn = get(args.method)
    check_options(args.method, fn, options)
    if fn.needs_data and args.dataset is None:
        raise UserError(f"method {args.method!r} is data-dependent: pass --dataset (e.g. --dataset fashion-mnist)")
    if args.seed < 0:
        raise UserError(f"--seed must be an int >= 0, got {args.seed}")
    shape = data_shape(args.dataset or DEFAULT_DATASET)
    given = (args.num_classes, args.in_channels, args.image_size)  # 0 is a value (refused), not "absent"
    num_classes, in_channels, image_size = (s if g is None else g for g, s in zip(given, shape))
    model = initial_model(args.model, (num_classes, in_channels, image_size), args.seed)
    check_output(args.out, what="--out")
    data = None
    if fn.needs_data:
        from pai.data import load_dataset

        data = load_dataset(args.dataset, seed=args.seed)
    mask = prune(model, args.method, density, seed=args.seed, data=data, degenerate=args.degenerate, **options)
    meta = {"model": args.model, "method": args.method, "density": density, "seed": args.seed,
            "options": {k: (v if isinstance(v, (bool, int, float, str, type(None))) else str(v))
                        for k, v in options.items()},
            "dataset": args.dataset, "num_classes": num_classes, "in_channels": in_channels,
            "image_size": image_size}
    path = save_mask(mask, args.out, meta)
    if not args.quiet:
        print(format_table(mask))
    print(f"wrote {path} ({args.method}, density {num_kept(mask) / num_total(mask):.6f} of "
          f"{num_total(mask)} weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
