"""``python -m pai.bench pags``: time PAGS and PEGS (Hoang et al., NeurIPS 2023) on one thread.

    python -m pai.bench pags [--model resnet18-tv] [--methods pags,pegs] [--density 0.01]
                             [--candidates 100] [--train-size 1000] [--code DIR] [--repeats 1]

Each row prunes once in a fresh child process with one torch/BLAS thread (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``), the defaults of the method otherwise (generator ``random-erk``,
layerwise selection, PEGS: 500 dense SGD steps of batch 128 first).  Printed per row: wall and CPU
seconds of the ``pai.prune`` call and, for PEGS, the part of it spent in the dense pre-training
(the search is the rest), plus a hash of the mask so that two code versions can be checked to select
the same mask.  ``--model``: a pai model name (``resnet18-tv`` has torchvision ResNet-18's layers) or
``torchvision:resnet18`` (``torchvision.models.resnet18(num_classes=10)``, seeded random weights);
inputs are 3x32x32.  PEGS trains on ``--train-size`` random N(0, 1) CIFAR-shaped images with random
labels (its cost does not depend on the pixel values).

``--code DIR`` runs the children on the ``pai`` package found in ``DIR`` (e.g. ``git worktree add DIR
<older commit>``) to time the code before a change on the same machine and see whether it selects the
same mask; the child uses only ``pai.prune``, ``pai.models.initial_model`` and
``pai.pruners.sampling.pretrain_dense``, which older versions have too.

Measured 2026-12-06 on the shared 2-core box (load average 4-14 from other jobs, so wall times are
up to several times the CPU times; CPU seconds are the comparable figure), ``resnet18-tv``, density
0.01, 100 candidates, one thread: PAGS before (commit f0991f7) 71.4 s CPU / 132.3 s wall (load 3.7;
104.3 s CPU at load 13.5), after 31.0 s CPU / 49.6 s wall (load 4.1), the same mask (f120e972deacc9c4).  PEGS (``--train-size 16``) after:
106.1 s CPU, of which the unchanged 500-step dense pre-training 76.1 s and the search 30.0 s.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]


def child(model_name: str, method: str, density: float, candidates: int, train_size: int) -> dict:
    """In this process (one thread): build the model, time one ``pai.prune`` call."""
    import torch

    torch.set_num_threads(1)
    import pai
    from pai.pruners import sampling

    if model_name.startswith("torchvision:"):
        import torchvision

        torch.manual_seed(0)
        model = getattr(torchvision.models, model_name.split(":", 1)[1])(num_classes=10)
    else:
        from pai.models import initial_model

        model = initial_model(model_name, (10, 3, 32), 0)
    data = None
    if method == "pegs":
        from types import SimpleNamespace

        g = torch.Generator().manual_seed(0)
        data = SimpleNamespace(x_train=torch.randn(train_size, 3, 32, 32, generator=g),
                               y_train=torch.randint(0, 10, (train_size,), generator=g), num_classes=10,
                               in_channels=3, image_size=32, name="random-cifar-shaped")
    pretrain = {"s": 0.0, "cpu_s": 0.0}
    original = sampling.pretrain_dense

    def timed_pretrain(*args, **kwargs):
        t, c = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            pretrain["s"] += time.perf_counter() - t
            pretrain["cpu_s"] += time.process_time() - c

    sampling.pretrain_dense = timed_pretrain
    t, c = time.perf_counter(), time.process_time()
    mask = pai.prune(model, method, density, seed=0, data=data, candidates=candidates)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    h = hashlib.sha256()
    for k in sorted(mask):
        h.update(k.encode())
        h.update(mask[k].detach().cpu().bool().numpy().tobytes())
    return {"wall_s": wall, "cpu_s": cpu, "pretrain_s": pretrain["s"], "pretrain_cpu_s": pretrain["cpu_s"],
            "mask": h.hexdigest()[:16],
            "threads": torch.get_num_threads(), "pai": str(Path(pai.__file__).resolve().parents[1])}


def run_child(args: list, code: Optional[str], timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               OMP_WAIT_POLICY="PASSIVE")
    path = str(Path(code).resolve()) if code else str(ROOT)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # run this file by path: with --code, ``import pai`` in the child must find DIR's package, not ours
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=path)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
        return {"error": tail[:200]}
    return json.loads(lines[-1])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pai.bench pags", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet18-tv")
    p.add_argument("--methods", default="pags,pegs")
    p.add_argument("--density", type=float, default=0.01)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--train-size", type=int, default=1000, help="random images PEGS pre-trains on")
    p.add_argument("--code", default=None, help="run the children on the pai package in this directory")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return 0
    import torch

    print(f"# pai.bench pags: {args.model}, 3x32x32, density {args.density}, {args.candidates} candidates, "
          f"1 thread, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code {args.code or ROOT}")
    print(f"{'method':6s} {'wall s':>8s} {'cpu s':>8s} {'pretrain wall/cpu s':>19s} {'search wall/cpu s':>17s}  mask")
    for _ in range(args.repeats):
        for method in [m for m in args.methods.split(",") if m]:
            r = run_child([args.model, method, args.density, args.candidates, args.train_size], args.code,
                          args.timeout)
            if "error" in r:
                print(f"{method:6s} ERROR: {r['error']}", flush=True)
                continue
            pre_c = r.get("pretrain_cpu_s", 0.0)
            print(f"{method:6s} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['pretrain_s']:9.1f} /{pre_c:8.1f} "
                  f"{r['wall_s'] - r['pretrain_s']:8.1f} /{r['cpu_s'] - pre_c:7.1f}  {r['mask']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
