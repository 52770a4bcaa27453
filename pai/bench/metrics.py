"""``python -m pai.bench metrics``: wall-clock of the graph/path metrics against targets and official code.

CIFAR shapes (3x32x32, 10 classes), seeded uniform random masks (exactly ``round(density * n)``
kept weights per layer, positions from a seeded ``torch.randperm``).  Targets: our own time budgets;
official times from ``shared/research/official-timings.md`` (VITA-Group/ramanujan-on-pai metric
scripts on a 2-core CPU; their "VGG-16-bn" is the CIFAR VGG with BN).  The "iclr" rows time
exactly what the official scripts compute per layer (Delta_r, IMDB, NaRC, via
``layer_spectrum(weighted=False)``); ``ratio`` = official / ours (> 1: we are faster).
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from pai.masks import prunable_parameters
from pai.metrics.bipartite import unrolled_csr
from pai.metrics.fullspectrum import network_full_spectrum
from pai.metrics.ramanujan import delta_r, imdb, layer_spectrum, narc_of
from pai.metrics.summary import layer_metrics, network_metrics
from pai.data import shape
from pai.models import initial_model

OFFICIAL_ICLR = {("resnet20", 0.01): 0.5, ("resnet20", 0.10): 1.4, ("vgg16", 0.01): 23.5, ("vgg16", 0.10): 70.8}


def _model(name: str) -> torch.nn.Module:
    return initial_model(name, shape("cifar10"), seed=0)


def iclr_metrics(model: torch.nn.Module, mask: Dict[str, torch.Tensor]) -> List[tuple]:
    """The per-layer values the ICLR'23 scripts compute: (Delta_r/ub, IMDB, NaRC)."""
    out = []
    for name, p in prunable_parameters(model).items():
        ls = layer_spectrum(unrolled_csr(None, mask[name]), weighted=False, only_valid="iclr")
        out.append((delta_r(ls, "iclr"), imdb(ls, "iclr"), narc_of(ls)))
    return out


def _time(fn: Callable, repeat: int) -> tuple:
    """Best (wall seconds, process CPU seconds) over ``repeat`` runs.

    CPU time is printed too because a shared machine inflates wall time: with one thread it is
    the work done, whatever the other processes on the cores are doing.
    """
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def _all_metrics(model, mask):
    rows = layer_metrics(model, mask, include=["spectral", "expansion", "paths"])
    return network_metrics(model, mask, rows=rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pai.bench metrics", description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--repeat", type=int, default=3, help="repeats of the short timings; best is shown")
    p.add_argument("--quick", action="store_true", help="skip ResNet-50 and the VGG-16 comparisons")
    args = p.parse_args(list(argv or []))
    torch.set_num_threads(args.threads)
    results = []  # (what, model, density, seconds, reference label, reference seconds)

    def add(what, model_name, density, fn, ref_label, ref_s, repeat=1):
        model = _model(model_name)
        mask = _uniform(model, density)
        secs, cpu = _time(lambda: fn(model, mask), repeat)
        results.append((what, model_name, density, secs, cpu, ref_label, ref_s))
        print(f"  {what:14s} {model_name:9s} d={density:<5g} {secs:7.2f} s wall {cpu:7.2f} s cpu", flush=True)

    add("full-spectrum", "resnet18", 0.01, network_full_spectrum, "target", 2.0, args.repeat)
    add("all metrics", "resnet18", 0.01, _all_metrics, "target", 10.0)
    if not args.quick:
        add("all metrics", "resnet50", 0.01, _all_metrics, "target", 30.0)
    for model_name, density in OFFICIAL_ICLR:
        if args.quick and model_name == "vgg16":
            continue
        add("iclr metrics", model_name, density, iclr_metrics, "official", OFFICIAL_ICLR[(model_name, density)],
            args.repeat)
    print()
    print("| metric | model | density | pai wall s | pai cpu s | reference | ref s | ratio ref/pai (wall) |")
    print("|---|---|---|---|---|---|---|---|")
    for what, model_name, density, secs, cpu, ref_label, ref_s in results:
        print(f"| {what} | {model_name} | {density:g} | {secs:.2f} | {cpu:.2f} | {ref_label} | {ref_s:g} "
              f"| {ref_s / secs:.1f} |")
    print(f"\n(threads={args.threads}; best of {args.repeat} for full-spectrum and iclr rows, one run otherwise)")
    return 0


def _uniform(model: torch.nn.Module, density: float, seed: int = 0) -> Dict[str, torch.Tensor]:
    """The registered ``random`` pruner: exact per-layer counts, uniform positions, seeded."""
    from pai.pruners import prune

    return prune(model, "random", density, seed=seed)
