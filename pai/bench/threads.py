"""``python -m pai.bench threads``: the OpenMP wait policy on a loaded machine (:func:`pai.utils.threads.passive_wait`).

    python -m pai.bench threads [--model resnet20] [--method synflow] [--density 0.01] [--load 1] [--repeats 2]

Each row prunes once in a fresh child process (OpenMP reads ``OMP_WAIT_POLICY`` when torch loads),
while ``--load`` other processes each keep a core busy (a pure-Python loop, as another user's job
would).  Policies: ``default`` (no ``OMP_WAIT_POLICY``, torch's default threads: all cores), ``passive``
(``OMP_WAIT_POLICY=PASSIVE``, all cores: what ``python -m pai`` and the notebooks now set) and
``1 thread`` (no policy, ``torch.set_num_threads(1)``).  Printed per row: wall and CPU seconds of the
``pai.prune`` call; the rows of the policies are interleaved over ``--repeats`` so a burst of outside
load hits each alike, and the median is printed last.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

POLICIES = {"default": ({}, None), "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, None), "1 thread": ({}, 1)}
BUSY = "while True:\n    pass\n"


def child(model: str, method: str, density: float, threads: Optional[int]) -> Dict[str, float]:
    import torch

    if threads:
        torch.set_num_threads(threads)
    import pai
    from pai.models import initial_model

    net = initial_model(model, (10, 3, 32), 0)
    t, c = time.perf_counter(), time.process_time()
    pai.prune(net, method, density, seed=0)
    return {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "threads": torch.get_num_threads()}


def run_policy(name: str, model: str, method: str, density: float, timeout: float) -> Dict[str, float]:
    extra, threads = POLICIES[name]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(extra)
    cmd = [sys.executable, "-m", "pai.bench.threads", "--child", json.dumps([model, method, density, threads])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pai.bench threads", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--method", default="synflow")
    p.add_argument("--density", type=float, default=0.01)
    p.add_argument("--load", type=int, default=1, help="busy processes started beside the runs")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return 0
    print(f"# pai.bench threads: prune {args.model} {args.method} at {args.density}, {args.load} busy "
          f"process(es) beside it, {os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.1f}")
    print(f"{'policy':10s} {'threads':>7s} {'wall s':>8s} {'cpu s':>8s}")
    load = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
    rows: Dict[str, List[Dict[str, float]]] = {name: [] for name in POLICIES}
    try:
        time.sleep(0.5 if load else 0)
        for _ in range(args.repeats):
            for name in POLICIES:
                r = run_policy(name, args.model, args.method, args.density, args.timeout)
                rows[name].append(r)
                if "error" in r:
                    print(f"{name:10s} error: {r['error']}")
                else:
                    print(f"{name:10s} {r['threads']:7d} {r['wall_s']:8.2f} {r['cpu_s']:8.2f}", flush=True)
    finally:
        for proc in load:  # only the processes started here
            proc.kill()
            proc.wait()
    print("# median over repeats")
    for name, rs in rows.items():
        ok = [r for r in rs if "error" not in r]
        if ok:
            print(f"{name:10s} {ok[0]['threads']:7d} {statistics.median(r['wall_s'] for r in ok):8.2f} "
                  f"{statistics.median(r['cpu_s'] for r in ok):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
