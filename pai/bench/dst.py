"""``python -m pai.bench.dst``: cost of the dynamic-sparse-training mask updates inside training.

LeNet-5 on real Fashion-MNIST (batch 128, ``--epochs`` over ``--train-subset`` images), a
random-ERK mask at ``--density``, ITOP-Rand updates every ``--update-interval`` steps (the ITOP
default 100) with the full-spectrum coordinate of every layer recorded at each update.  Printed:

- the static run's and the DST run's training seconds (evaluation excluded);
- the seconds spent inside the mask updates (drop, regrow, optimizer-state reset, mask install,
  spectrum recording) and their share of the DST run's training time -- the target is <= 5 %;
- the one-off recordings outside the loop (initial, final and anchor coordinates);
- the updates' CPU time against the whole run's process CPU time (includes the evaluation), a
  share that other processes on a shared machine hardly move (read it with ``--threads 1``).

A benchmark, not a timed test: the figure depends on the machine and on its other load.
"""
from __future__ import annotations

import argparse
import importlib
import math
import time
from typing import Optional, Sequence

import torch

from pai.data import load_dataset
from pai.train.dst import train_dst
from pai.models import initial_model
from pai.pruners import prune
from pai.train import TrainConfig, train

TARGET = 0.05


def _train_seconds(result) -> float:
    return sum(e["train_seconds"] for e in result.history)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pai.bench.dst", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="lenet5")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--density", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-subset", type=int, default=None, help="images per epoch (default: all 60k)")
    p.add_argument("--update-interval", type=int, default=100)
    p.add_argument("--growth", default="random", choices=("random", "gradient"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-static", action="store_true", help="skip the static reference run")
    a = p.parse_args(list(argv) if argv is not None else None)

    t0 = time.perf_counter()
    importlib.import_module("pai.metrics.fullspectrum")  # scipy & co: once per process, not per update
    print(f"importing pai.metrics.fullspectrum (once per process): {time.perf_counter() - t0:.2f} s")
    cfg = TrainConfig(model=a.model, dataset=a.dataset, epochs=a.epochs, batch_size=128, device=a.device,
                      threads=a.threads, train_subset=a.train_subset, test_subset=2000, schedule="constant")
    data = load_dataset(cfg.dataset, train_subset=cfg.train_subset, test_subset=cfg.test_subset, seed=cfg.seed)
    mask = prune(initial_model(cfg.model, data.shape, cfg.seed), "random-erk", a.density, seed=0)
    steps = cfg.epochs * math.ceil(len(data.y_train) / cfg.batch_size)
    print(f"{a.model} on {a.dataset}: {len(data.y_train)} images x {a.epochs} epoch(s) = {steps} steps, "
          f"random-ERK density {a.density}, update every {a.update_interval} steps, growth {a.growth}, "
          f"{a.threads} thread(s), torch {torch.__version__}")
    if not a.no_static:
        static = train(cfg, mask=mask, data=data, progress=False)
        print(f"static  training {_train_seconds(static):7.2f} s   test acc {static.final_test_acc:.4f}")
    cpu0 = time.process_time()
    r = train_dst(cfg, mask=mask, data=data, progress=False, update_interval=a.update_interval, growth=a.growth)
    cpu = time.process_time() - cpu0 - r.meta["dst"]["setup_seconds"]  # (setup: one thread, ~CPU time)
    d = r.meta["dst"]
    total = _train_seconds(r)
    share = d["update_seconds"] / total
    print(f"DST     training {total:7.2f} s   test acc {r.final_test_acc:.4f}   updates {d['updates']}   "
          f"ITOP rate {d['itop_rate']:.4f}   moving distance {d['moving_distance']:.4f}")
    print(f"mask updates     {d['update_seconds']:7.3f} s = {100 * share:.2f} % of training "
          f"({1000 * d['update_seconds'] / max(1, d['updates']):.1f} ms per update; target <= {100 * TARGET:.0f} %) "
          f"{'OK' if share <= TARGET else 'OVER TARGET'}")
    print(f"  of which spectrum recording {sum(e['record_seconds'] for e in d['trajectory']):.3f} s; "
          f"one-off initial/final/anchor recording outside the loop {d['setup_seconds']:.3f} s "
          f"({100 * (d['update_seconds'] + d['setup_seconds']) / total:.2f} % with it)")
    print(f"CPU time: updates {d['update_cpu_seconds']:.3f} s of the run's {cpu:.2f} s = "
          f"{100 * d['update_cpu_seconds'] / cpu:.2f} % (other load hardly moves it; with more than one "
          f"thread OpenMP spin-waits inflate the run's CPU time, so read it with --threads 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
