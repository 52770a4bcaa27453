"""Executors: how a sweep's runs are spread over processes, GPUs and machines.

Every executor has the signature ``fn(specs, root, *, workers, progress, **options) -> results`` and
calls :func:`pai.runs.run_one` on each spec, so results land in the same content-addressed run
directories whoever ran them (on shared storage for a cluster).

- ``local``: ``workers=1`` runs in this process; ``workers=N`` starts N spawned processes, each with
  ``cores // N`` threads (one each on a 2-core machine: two processes of two threads on two cores halve
  throughput); on a machine with GPUs worker i is pinned to GPU ``i % n_gpus``.
- ``ray``: each run is a Ray task with ``num_cpus`` CPUs and a ``gpus_per_run`` share of a GPU (several
  small runs pack onto one GPU); ``address`` (or ``$RAY_ADDRESS``) joins an existing cluster (``"auto"``
  or ``ray://host:port``), otherwise a local Ray instance is started with ``workers`` CPUs.  Ray is optional:
  ``pip install -e .[ray]``.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List

from .registry import Registry

EXECUTORS = Registry("executor")


def get_executor(name: str) -> Callable:
    return EXECUTORS.get(name)


def _bar(total: int, progress: bool | None, desc: str):
    from .progress import progress_reporter  # a bar on a terminal, a line per run under DVC/papermill

    return progress_reporter(total, progress, desc)


def _worker_init(threads: int, gpu_queue=None) -> None:
    import torch

    torch.set_num_threads(threads)
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())


def _run_in_worker(spec: Dict[str, Any], root: str) -> Dict[str, Any]:
    from .runs import run_one

    return run_one(spec, root, progress=False)


@EXECUTORS.register("local")
def local_executor(specs: List[Dict[str, Any]], root: str, *, workers: int = 1, progress: bool | None = None,
                   threads_per_worker: int | None = None) -> List[Dict[str, Any]]:
    from .runs import run_one

    bar = _bar(len(specs), progress, "runs")
    if workers <= 1:
        results = []
        for spec in specs:
            results.append(run_one(spec, root, progress=False))
            bar.update()
        bar.close()
        return results

    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import torch

    ctx = mp.get_context("spawn")
    gpu_queue = None
    if torch.cuda.is_available():
        gpu_queue = ctx.Manager().Queue()
        for i in range(workers):
            gpu_queue.put(i % torch.cuda.device_count())
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    results: List[Any] = [None] * len(specs)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads, gpu_queue)) as pool:
        futures = {pool.submit(_run_in_worker, spec, root): i for i, spec in enumerate(specs)}
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            bar.update()
    bar.close()
    return results


@EXECUTORS.register("ray")
def ray_executor(specs: List[Dict[str, Any]], root: str, *, workers: int = 1, progress: bool | None = None,
                 address: str | None = None, num_cpus_per_run: float = 1, gpus_per_run: float = 0,
                 shutdown: bool | None = None) -> List[Dict[str, Any]]:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the optional extra
        raise ImportError("executor 'ray' needs Ray: pip install -e '.[ray]'") from e

    started_here = False
    address = address or os.environ.get("RAY_ADDRESS")  # `RAY_ADDRESS=auto dvc repro` joins a cluster
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": str(int(max(1, num_cpus_per_run)))}})
            started_here = True
    remote = ray.remote(num_cpus=num_cpus_per_run, num_gpus=gpus_per_run)(_run_in_ray)
    refs = [remote.remote(spec, os.path.abspath(root), int(max(1, num_cpus_per_run))) for spec in specs]
    bar = _bar(len(specs), progress, "runs (ray)")
    pending, index = list(refs), {ref: i for i, ref in enumerate(refs)}
    results: List[Any] = [None] * len(specs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            results[index[ref]] = ray.get(ref)
            bar.update()
    bar.close()
    if shutdown or (shutdown is None and started_here):
        ray.shutdown()
    return results


def _run_in_ray(spec: Dict[str, Any], root: str, threads: int) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    return _run_in_worker(spec, root)
