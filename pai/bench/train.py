"""``python -m pai.bench train``: training throughput of ``pai.train`` next to a plain PyTorch loop.

For each model and input size, on real Fashion-MNIST (28x28, or area-averaged to 14x14 as
``TrainConfig(image_size=14)`` does), the same number of steps for every variant:

- ``pai``: :func:`pai.train.train` with its defaults (on CPU: float32, channels_last for conv nets,
  fused SGD); ``pai d=0.01`` the same with a uniform random mask keeping 1 % of every layer (the
  trainer re-applies it in place after every step); ``pai compile`` (``--compile``):
  ``torch.compile``, with its compile time;
- ``plain``: the simplest idiomatic loop a PyTorch user writes: the data set as one tensor,
  ``randperm`` index batches (no ``DataLoader``), default NCHW layout, ``torch.optim.SGD`` with the
  same hyper-parameters, ``loss.item()`` and the accuracy read every step (as the SynFlow/PHEW/NPB
  ``train`` loops do); ``plain d=0.01`` multiplies each weight by its mask after every step;
  ``plain NHWC``: the same with model and batches in ``channels_last`` (pai uses it on CUDA only: on
  CPU, with real data, it was within noise of NCHW for these nets -- with ``torch.randn`` inputs
  NCHW convolutions ran 20-40 % slower here, which is how a synthetic benchmark overrates NHWC).

Throughput is training images per second of **CPU time** (``time.process_time``; one thread by
default), so the figure measures the work done, not the load of a shared box; with ``--threads 2``
it is wall-clock instead.  Each measurement trains ``--windows`` epochs over a ``--window``-step
subset and keeps its fastest epoch (the first absorbs the warm-up: allocator, oneDNN primitive
caches); the ``--repeats`` measurements of all variants are interleaved, so a burst of outside
load or a hot neighbour costs every variant alike.  pai's epochs include an evaluation of 256 test
images that the plain loop skips (under 1 % of a window).  With CUDA, ResNet-18 on synthetic
3x32x32 data is added (pai: bf16 autocast + channels_last; plain: float32).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from pai.data import Dataset, load_dataset
from pai.masks import prunable_parameters
from pai.models import create_model
from pai.train import TrainConfig, train

DENSITY = 0.01
DEFAULT_CASES = ("lenet-300-100@28", "lenet5@28", "vgg11-w0.25@28", "vgg11-w0.25@14", "vgg16-w0.25@14",
                 "resnet20-w0.25@28", "resnet20-w0.25@14", "resnet20-w0.5@14")


def _clock(threads: int) -> Callable[[], float]:
    return time.process_time if threads == 1 else time.perf_counter


def pai_images_per_s(data: Dataset, model_name: str, mask: Optional[dict], device: str, epochs: int,
                     batch: int, clock, **options) -> tuple:
    """Best epoch's images/s of :func:`pai.train.train` over its steps 2..n (so neither the evaluation
    nor the first step's warm-up counts), and the first step's extra seconds (compile time)."""
    stamps: List[float] = []
    steps = -(-len(data.x_train) // batch)

    def on_step(event, state):  # a clock reading after the first and the last step of each epoch
        if event == "step_end" and state.step % steps in (0, 1 % steps):
            if device != "cpu":
                torch.cuda.synchronize()
            stamps.append(clock())

    cfg = TrainConfig(model=model_name, dataset=data.name, epochs=epochs, batch_size=batch, device=device,
                      schedule="constant", **options)
    start = clock()
    train(cfg, mask=mask, data=data, progress=False, callbacks=[on_step])
    best = min(b - a for a, b in zip(stamps[0::2], stamps[1::2]))
    first = stamps[0] - start
    return (steps - 1) * batch / best, first


def plain_images_per_s(data: Dataset, model_name: str, mask: Optional[dict], device: str, epochs: int,
                       batch: int, clock, channels_last: bool = False) -> tuple:
    """The simplest idiomatic loop: tensor slices, NCHW, ``torch.optim.SGD``, ``.item()`` every step."""
    torch.manual_seed(0)
    model = create_model(model_name, data.num_classes, data.in_channels, data.image_size).to(device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    pairs = []
    if mask is not None:
        params = prunable_parameters(model)
        pairs = [(params[k], mask[k].to(device=device, dtype=params[k].dtype)) for k in params]
        with torch.no_grad():
            for w, m in pairs:
                w.mul_(m)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = data.x_train.to(device), data.y_train.to(device)
    best = float("inf")
    for _ in range(epochs):
        model.train()
        total_loss, correct = 0.0, 0
        for step, idx in enumerate(torch.randperm(len(x), device=device).split(batch)):
            xb, yb = x[idx].contiguous(memory_format=layout), y[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for w, m in pairs:
                    w.mul_(m)
            total_loss += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
            if step == 0:  # timed from the end of the first step, as for pai
                if device != "cpu":
                    torch.cuda.synchronize()
                t0 = clock()
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, clock() - t0)
    return (len(x) - batch) / best, 0.0


def _variants(compile_: bool) -> Dict[str, tuple]:
    """name -> (measure, masked?, pai options)."""
    out = {"pai": (pai_images_per_s, False, {}), "pai_masked": (pai_images_per_s, True, {}),
           "plain": (plain_images_per_s, False, {}), "plain_masked": (plain_images_per_s, True, {}),
           "plain_nhwc": (plain_images_per_s, False, {"channels_last": True})}
    if compile_:
        out["pai_compile"] = (pai_images_per_s, False, {"compile": True})
    return out


def _synthetic(n: int, device: str) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Dataset("synthetic-3x32x32", x.to(device), y.to(device), x[:1024].to(device), y[:1024].to(device),
                   10, 3, 32, (0.0,) * 3, (1.0,) * 3)


def run(cases: Sequence[str], batches: Sequence[int], window: int, windows: int, repeats: int, threads: int,
        compile_: bool = False) -> List[dict]:
    torch.set_num_threads(threads)
    clock = _clock(threads)
    rows = []
    todo = []
    for case in cases:
        model_name, _, size = case.partition("@")
        for batch in batches:
            data = load_dataset("fashion-mnist", train_subset=window * batch, test_subset=256,
                                image_size=int(size) if size else None)
            todo.append((model_name, data, "cpu", batch))
    if torch.cuda.is_available():
        todo.append(("resnet18", _synthetic(window * batches[0], "cuda"), "cuda", batches[0]))
    for model_name, data, device, batch in todo:
        torch.manual_seed(0)
        mask = _uniform(create_model(model_name, data.num_classes, data.in_channels, data.image_size), DENSITY)
        best = {k: 0.0 for k in _variants(compile_)}
        extra = 0.0
        for rep in range(repeats):  # interleaved, so a burst of outside load hits every variant alike
            for key, (measure, masked, options) in _variants(compile_).items():
                ips, first = measure(data, model_name, mask if masked else None, device, windows, batch, clock,
                                     **options)
                best[key] = max(best[key], ips)
                if key == "pai_compile":
                    extra = first if rep == 0 else extra
            print(f"  [{model_name}@{data.image_size} b{batch} {rep + 1}/{repeats}] "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in best.items()), file=sys.stderr, flush=True)
        rows.append({"model": model_name, "size": data.image_size, "batch": batch, "device": device,
                     "compile_s": extra, **best})
    return rows


def format_table(rows: List[dict], window: int, windows: int, repeats: int, threads: int) -> str:
    clock = "CPU-time" if threads == 1 else "wall-clock"
    head = (f"pai.train vs a plain PyTorch loop on Fashion-MNIST: best {window}-step window of {windows} x {repeats} "
            f"interleaved, {threads} thread(s), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
            f"torch {torch.__version__}; training images per {clock} second\n")
    compiled = any("pai_compile" in r for r in rows)
    cols = ["model", "px", "batch", "dev", "pai", f"pai d={DENSITY}", "plain", f"plain d={DENSITY}", "plain NHWC",
            "pai/plain", "pai/plain masked", "NHWC/NCHW"] + (["pai compile", "compile s"] if compiled else [])
    lines = [cols]
    for r in rows:
        line = [r["model"], str(r["size"]), str(r["batch"]), r["device"], f"{r['pai']:,.0f}",
                f"{r['pai_masked']:,.0f}", f"{r['plain']:,.0f}", f"{r['plain_masked']:,.0f}",
                f"{r['plain_nhwc']:,.0f}", f"{r['pai'] / r['plain']:.2f}x",
                f"{r['pai_masked'] / r['plain_masked']:.2f}x", f"{r['plain_nhwc'] / r['plain']:.2f}x"]
        if compiled:
            line += [f"{r['pai_compile']:,.0f}", f"{r['compile_s']:.0f}"]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    body = "\n".join("  ".join(c.rjust(w) if i > 0 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in lines)
    return head + body


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pai.bench train", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_CASES),
                   help="model@pixels cases (pixels: 28, or 14 for the area-averaged input)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128])
    p.add_argument("--window", type=int, default=12, help="steps per timed window (one epoch of the subset)")
    p.add_argument("--windows", type=int, default=4, help="windows per measurement")
    p.add_argument("--repeats", type=int, default=2, help="interleaved measurements per variant")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: CPU-time figures; more: wall-clock)")
    p.add_argument("--compile", action="store_true", help="add pai with torch.compile (and its compile time)")
    args = p.parse_args(list(argv or []))
    rows = run(args.models, args.batch_sizes, args.window, args.windows, args.repeats, args.threads, args.compile)
    print(format_table(rows, args.window, args.windows, args.repeats, args.threads))
    return 0


def _uniform(model: torch.nn.Module, density: float, seed: int = 0) -> Dict[str, torch.Tensor]:
    """The registered ``random`` pruner: exact per-layer counts, uniform positions, seeded."""
    from pai.pruners import prune

    return prune(model, "random", density, seed=seed)
