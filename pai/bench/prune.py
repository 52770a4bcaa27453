"""Pruning benchmark: time and peak memory of every registered pruner, next to the official code.

    python -m pai.bench prune [--models resnet18,vgg16] [--methods all] [--density 0.01] [--threads 2]

Each (model, method) runs in a fresh child process (``--threads`` torch threads, default 2 as on the
CI box), so a crash, a timeout or a memory peak of one method cannot touch the others and the child's
``ru_maxrss`` is that method's own peak.  Printed per row: wall time of the ``pai.prune`` call, its
CPU time (more stable than wall time on a shared machine), the peak RSS of the process and its growth
during the call, the kept fraction, and -- where ``OFFICIAL`` has a figure for the same method, model
and density -- the official time and the ratio ours / official.

Models are CIFAR-shaped (10 classes, 3x32x32).  Data-dependent methods (SNIP, GraSP, ...) get
random N(0, 1) images with random labels in a Dataset-like object: their cost does not depend on
the pixel values, and no CIFAR download is needed.  A method can carry options:
``--methods synflow:dtype=float64,rule=exact``; ``all`` = every registered name (their defaults are
the official methods), plus SynFlow and SynFlow-L2 in float64 and NPB with the fast solver.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple

# Official code run unchanged on a 2-core x86 CPU, CIFAR-10 shapes, torch 2.15 (prune call only,
# mean of the runs; peak process RSS in GB): /work/shared/research/official-timings.md.
# key: (method, model, density) -> (seconds, peak RSS GB, source)
OFFICIAL: Dict[Tuple[str, str, float], Tuple[float, float, str]] = {
    ("synflow", "resnet20", 0.01): (2.95, 0.9, "ganguli-lab/Synaptic-Flow, float32"),
    ("synflow", "vgg16", 0.01): (39.1, 1.5, "ganguli-lab/Synaptic-Flow, float32"),
    ("synflow", "resnet18", 0.01): (30.2, 1.3, "ganguli-lab/Synaptic-Flow, float32"),
    ("snip", "resnet20", 0.01): (0.5, 1.1, "ganguli-lab/Synaptic-Flow"),
    ("snip", "vgg16", 0.01): (2.5, 1.8, "ganguli-lab/Synaptic-Flow"),
    ("snip", "resnet18", 0.01): (3.8, 1.8, "ganguli-lab/Synaptic-Flow"),
    ("grasp", "resnet20", 0.01): (1.75, 1.3, "ganguli-lab/Synaptic-Flow"),
    ("grasp", "vgg16", 0.01): (8.25, 2.6, "ganguli-lab/Synaptic-Flow"),
    ("grasp", "resnet18", 0.01): (13.75, 2.6, "ganguli-lab/Synaptic-Flow"),
    ("phew", "resnet20", 0.01): (1.3, 0.9, "ShreyasMalakarjunPatil/PHEW"),
    ("phew", "resnet20", 0.1): (5.75, 0.9, "ShreyasMalakarjunPatil/PHEW"),
    ("phew", "vgg16", 0.01): (189.0, 1.2, "ShreyasMalakarjunPatil/PHEW"),
    ("phew", "vgg16", 0.1): (798.0, 1.2, "ShreyasMalakarjunPatil/PHEW"),
    ("npb", "resnet20", 0.01): (5.15, 1.2, "pvh1602/NPB"),
}
DATASET = "cifar10"  # the shapes of its images and classes (pai.data.shape)
FAKE_TRAIN = 1000


def official(method: str, model: str, density: float) -> Optional[Tuple[float, float, str]]:
    """The official figure for this method, model and density (float32 SynFlow code; a float64 row of
    ours is compared with it too, to show what float64 costs)."""
    return OFFICIAL.get((method, model, round(density, 6)))


def fake_cifar(n: int = FAKE_TRAIN, seed: int = 0) -> SimpleNamespace:
    """A Dataset-like object of random CIFAR-shaped tensors (not real images)."""
    import torch

    from pai.data import shape

    g = torch.Generator().manual_seed(seed)
    c, ch, s = shape(DATASET)
    return SimpleNamespace(name="random-cifar-shaped", x_train=torch.randn(n, ch, s, s, generator=g),
                           y_train=torch.randint(0, c, (n,), generator=g), num_classes=c,
                           in_channels=ch, image_size=s)


def parse_method(spec: str) -> Tuple[str, dict]:
    from pai.pruners.cli import parse_options

    name, _, opts = spec.partition(":")
    return name.strip(), parse_options([o for o in opts.split(",") if o.strip()])


def run_one(model_name: str, spec: str, density: float, threads: int) -> dict:
    """In this process: build the model, time ``pai.prune`` once, measure the RSS peak."""
    import torch

    from pai.masks import num_kept, num_total
    from pai.data import shape
    from pai.models import initial_model
    from pai.pruners import get, prune

    torch.set_num_threads(threads)
    method, options = parse_method(spec)
    model = initial_model(model_name, shape(DATASET), seed=0)
    data = fake_cifar() if getattr(get(method), "needs_data", False) else None
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    mask = prune(model, method, density, seed=0, data=data, **options)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_gb": rss1 / 2**20, "rss_growth_gb": (rss1 - rss0) / 2**20,
            "kept": num_kept(mask), "total": num_total(mask), "fake_data": data is not None}


def run_child(model_name: str, spec: str, density: float, threads: int, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "pai.bench.prune", "--child", json.dumps([model_name, spec, density, threads])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
        return {"error": tail[:160]}
    return json.loads(lines[-1])


def default_methods() -> List[str]:
    from pai.pruners import names

    out = []
    for name in names():
        out.append(name)
        if name in ("synflow", "synflow-l2"):
            out.append(f"{name}:dtype=float64")
        if name == "npb":
            out.append("npb:solver=fast")
    return out


def format_row(model: str, spec: str, density: float, r: dict) -> str:
    method, options = parse_method(spec)
    head = f"{model:9s} {spec:36s}"
    if "error" in r:
        return f"{head} ERROR: {r['error']}"
    # an option that changes the work (iterations, samples, ...) makes the official figure moot
    off = None if set(options) - {"dtype", "rule", "solver"} else official(method, model, density)
    off_s = f"{off[0]:8.2f} {r['wall_s'] / off[0]:6.2f}x" if off else f"{'-':>8s} {'-':>7s}"
    note = " (random data)" if r.get("fake_data") else ""
    return (f"{head} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_rss_gb']:7.2f} {r['rss_growth_gb']:7.2f} "
            f"{r['kept'] / r['total']:8.5f} {off_s}{note}")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pai.bench prune", description=__doc__.split("\n")[0])
    p.add_argument("--models", default="resnet18,vgg16")
    p.add_argument("--methods", default="all", help="method[:k=v,k=v] items separated by spaces or ';', or 'all'")
    p.add_argument("--density", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per (model, method)")
    p.add_argument("--json", default=None, help="also write the results here (atomically)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        model, spec, density, threads = json.loads(args.child)
        print(json.dumps(run_one(model, spec, density, threads)))
        return 0
    methods = default_methods() if args.methods == "all" else args.methods.replace(";", " ").split()
    models = [m for m in args.models.split(",") if m]
    import torch

    print(f"# pai.bench prune: density {args.density}, {args.threads} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("# models CIFAR-shaped (10 classes, 3x32x32); data-dependent methods get random N(0,1) tensors")
    print(f"{'model':9s} {'method[:options]':36s} {'wall s':>8s} {'cpu s':>8s} {'peakGB':>7s} {'+GB':>7s} "
          f"{'kept':>8s} {'offic. s':>8s} {'ratio':>7s}")
    results = []
    for model in models:
        for spec in methods:
            r = run_child(model, spec, args.density, args.threads, args.timeout)
            results.append({"model": model, "method": spec, "density": args.density, **r})
            print(format_row(model, spec, args.density, r), flush=True)
    if args.json:
        from pai.utils.io import save_json

        save_json(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
