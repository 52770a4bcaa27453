"""``python -m pai metrics``: print the per-layer graph/path table and the network summary of a mask.

Example::

    python -m pai metrics --mask runs/x/mask.pt --model resnet20 --dataset cifar10
    python -m pai metrics --mask m.pt --model lenet5 --in-channels 1 --image-size 28 --num-classes 10

The weighted metrics (lambda, the full-spectrum norm, the path-kernel trace) read the weights:
``--weights`` loads a state dict; otherwise the model is freshly initialised from ``--seed``.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Dict, List, Optional, Sequence

import torch

from pai.data import dataset_names, shape as data_shape
from pai.utils.errors import Parser, UserError, check_distinct, cli
from pai.utils.io import check_output
from pai.utils.io import load_torch
from pai.masks import check_mask, load_mask

COLUMNS = [  # (row key, header, format)
    ("layer", "layer", "{}"), ("density", "density", "{:7.4f}"), ("width_out", "w_out", "{:5d}"),
    ("width_in", "w_in", "{:5d}"), ("sigma1", "sigma1", "{:8.3f}"), ("sigma2", "sigma2", "{:8.3f}"),
    ("delta_r_norm", "dr_norm", "{:8.4f}"), ("imdb", "imdb", "{:8.4f}"), ("narc", "narc", "{:8.4f}"),
    ("lambda", "lambda", "{:8.4f}"), ("fs_norm", "fs_norm", "{:8.4f}"), ("expansion", "expand", "{:7.3f}"),
    ("eff_weights", "eff_w", "{:7d}"), ("dead_weights", "dead_w", "{:7d}"),
]


def _parser() -> argparse.ArgumentParser:
    from pai.models import model_names

    p = Parser(prog="python -m pai metrics", description=__doc__.split("\n")[0] + " Bad input exits with 2; "
               "--debug shows tracebacks.")
    p.add_argument("--mask", required=True, help="mask file written by pai (save_mask)")
    p.add_argument("--model", required=True, help=f"one of {', '.join(model_names())}")
    p.add_argument("--dataset", choices=dataset_names(), help="sets the three shape options below")
    p.add_argument("--in-channels", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--num-classes", type=int)
    p.add_argument("--weights", help="state dict (or a checkpoint with 'model'/'state_dict') for the weights")
    p.add_argument("--seed", type=int, default=0, help="init seed when --weights is absent (default 0)")
    p.add_argument("--include", default="spectral,expansion,paths,kernel",
                   help="comma list of metric groups (default: all)")
    p.add_argument("--samples", type=int, default=1000, help="vertex-expansion samples (default 1000)")
    p.add_argument("--json", help="also write {'layers': rows, 'summary': ...} to this file")
    return p


def _shape(args) -> tuple:
    """``(num_classes, in_channels, image_size)``: the dataset's (``pai.data.shape``) or the three flags."""
    if args.dataset:
        return tuple(data_shape(args.dataset))
    given = (args.num_classes, args.in_channels, args.image_size)
    if given == (None, None, None):  # the project's default data set, as `python -m pai prune`
        return tuple(data_shape("fashion-mnist"))
    if None in given:
        raise UserError("give --dataset, or all of --in-channels, --image-size and --num-classes")
    return given


def _load_weights(model: torch.nn.Module, path: str) -> None:
    state = load_torch(path, what="weights file", fix="give a state dict saved with torch.save (e.g. a run's final.pt)")
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise UserError(f"weights file {path} does not fit the model ({str(e).splitlines()[0][:160]})") from None


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"  # an invalid layer (NaN): no measurement, not a number
    return fmt.format(value).strip()


def format_table(rows: List[Dict]) -> str:
    """Fixed-width text table of the columns present in ``rows`` (layer names left-aligned)."""
    cols = [c for c in COLUMNS if rows and c[0] in rows[0]]
    cells = [[_cell(r[k], f) for k, _, f in cols] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h, _) in enumerate(cols)]
    just = [str.ljust if k == "layer" else str.rjust for k, _, _ in cols]
    lines = ["  ".join(j(h, w) for (_, h, _), w, j in zip(cols, widths, just))]
    lines += ["  ".join(j(c, w) for c, w, j in zip(row, widths, just)) for row in cells]
    return "\n".join(lines)


@cli("python -m pai metrics")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from pai.models import initial_model
    from pai.metrics.summary import layer_metrics, network_metrics

    if args.json:  # checked first: writing it must not destroy an input, nor fail after the work
        check_distinct(args.json, [args.mask, args.weights], what="--json")
        check_output(args.json, what="--json")
    if args.samples < 1:
        raise UserError(f"--samples (vertex-expansion samples) must be an int >= 1, got {args.samples}")
    num_classes, in_channels, image_size = _shape(args)
    model = initial_model(args.model, (num_classes, in_channels, image_size), args.seed)
    if args.weights:
        _load_weights(model, args.weights)
    mask = load_mask(args.mask)
    try:
        check_mask(model, mask)
    except UserError:
        raise
    except ValueError as e:  # the layer that does not fit, said with the file it came from
        raise UserError(f"mask {args.mask} does not fit {args.model} ({in_channels}x{image_size}x{image_size} "
                        f"inputs, {num_classes} classes): {e}") from None
    include = [s.strip() for s in args.include.split(",") if s.strip()]
    rows = layer_metrics(model, mask, include=[i for i in include if i != "kernel"],
                         expansion_samples=args.samples, seed=args.seed)
    summary = network_metrics(model, mask, include=include, expansion_samples=args.samples,
                              seed=args.seed, rows=rows)
    source = f"weights {args.weights}" if args.weights else f"fresh init, seed {args.seed}"
    print(f"# {args.model} {in_channels}x{image_size}x{image_size} -> {num_classes}, mask {args.mask}, {source}")
    print(format_table(rows))
    print()
    for key, value in summary.items():
        print(f"{key:26s} {value:.6g}" if isinstance(value, float) else f"{key:26s} {value}")
    if args.json:
        from pai.utils.io import save_json

        save_json({"layers": rows, "summary": summary, "model": args.model, "mask": args.mask}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
