"""Executors: map a function over items, spread over processes, GPUs and machines.

Every executor has the signature ``executor(fn, items, *, workers, progress, desc, interval, unit, **options)
-> results`` (``interval``: at most one progress line per that many seconds where lines, not a bar, are
shown; ``unit``: "run", whose instant returns are counted as cached, or any other word) and returns ``[fn(item) for item in items]`` in order; ``fn`` must be picklable (a module-level
function or a ``functools.partial`` of one).  Executors know nothing of runs: :func:`pai.compendium.runs.sweep`
maps ``run_one`` over specs, so results land in the same content-addressed run directories whoever
ran them (on shared storage for a cluster).

- ``local``: ``workers=1`` runs in this process; ``workers=N`` starts N spawned processes, each with
  ``cores // N`` threads (one each on a 2-core machine: two processes of two threads on two cores halve
  throughput); on a machine with GPUs worker i is pinned to GPU ``i % n_gpus``.
- ``ray``: each item is a Ray task with ``num_cpus`` CPUs and a ``gpus_per_run`` share of a GPU (several
  small items pack onto one GPU); ``address`` (or ``$RAY_ADDRESS``) joins an existing cluster (``"auto"``
  or ``ray://host:port``), otherwise a local Ray instance is started with ``workers`` CPUs.  Ray is optional:
  ``pip install -e .[ray]``.  A task whose node dies (a machine lost, a worker killed) is run again on
  another node, up to ``max_retries`` times: with ``run_one`` on shared storage the retry resumes the run
  from its last epoch checkpoint, and runs that had finished stay finished (tests/test_ray_cluster.py).
"""
from __future__ import annotations

import os
from typing import Any, Callable, List, Sequence

from pai.utils.registry import Registry

EXECUTORS = Registry("executor")


def get_executor(name: str) -> Callable:
    return EXECUTORS.get(name)


def _bar(total: int, progress: bool | None, desc: str, interval: float = 0.0, unit: str = "run"):
    from pai.utils.progress import progress_reporter  # a bar on a terminal, a line per run under DVC/papermill

    # only a run can be cached (an instant run is counted apart); any other item is just fast
    return progress_reporter(total, progress, desc, unit=unit, interval=interval)


def _tick(bar, seconds: float) -> None:
    """One finished item: :class:`pai.utils.progress.Progress` takes its run time (a cache hit is instant);
    a tqdm bar just counts."""
    if getattr(bar, "takes_seconds", False):
        bar.update(seconds=seconds)
    else:
        bar.update()


def _timed(fn: Callable[[Any], Any], item: Any) -> tuple:
    """``(seconds, fn(item))``, timed where it runs (a worker process or a Ray task)."""
    import time

    start = time.perf_counter()
    result = fn(item)
    return time.perf_counter() - start, result


def _worker_init(threads: int, gpu_queue=None) -> None:
    import torch

    torch.set_num_threads(threads)
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())


@EXECUTORS.register("local")
def local_executor(fn: Callable[[Any], Any], items: Sequence[Any], *, workers: int = 1, progress: bool | None = None,
                   desc: str = "items", threads_per_worker: int | None = None, interval: float = 0.0,
                   unit: str = "run") -> List[Any]:
    bar = _bar(len(items), progress, desc, interval, unit)
    if workers <= 1:
        results = []
        for item in items:
            seconds, result = _timed(fn, item)
            results.append(result)
            _tick(bar, seconds)
        bar.close()
        return results

    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

    ctx = mp.get_context("spawn")
    gpu_queue = None
    if torch.cuda.is_available():
        gpu_queue = ctx.Manager().Queue()
        for i in range(workers):
            gpu_queue.put(i % torch.cuda.device_count())
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    results: List[Any] = [None] * len(items)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads, gpu_queue)) as pool:
        futures = {pool.submit(_timed, fn, item): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            seconds, results[futures[fut]] = fut.result()
            _tick(bar, seconds)
    bar.close()
    return results


@EXECUTORS.register("ray")
def ray_executor(fn: Callable[[Any], Any], items: Sequence[Any], *, workers: int = 1, progress: bool | None = None,
                 desc: str = "items", address: str | None = None, num_cpus_per_run: float = 1,
                 gpus_per_run: float = 0, shutdown: bool | None = None, max_retries: int = 3,
                 interval: float = 0.0, unit: str = "run") -> List[Any]:
    address = address or os.environ.get("RAY_ADDRESS")  # `RAY_ADDRESS=auto dvc repro` joins a cluster
    if address:
        check_ray_address(address)  # before Ray's own connect, which retries for a minute
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the optional extra
        raise ImportError("executor 'ray' needs Ray: pip install -e '.[ray]'") from e

    started_here = False
    if not ray.is_initialized():
        if address:
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError as e:  # "auto" with no cluster on this machine
                raise _no_cluster(address, str(e).splitlines()[0] if str(e) else "no answer") from None
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": str(int(max(1, num_cpus_per_run)))}})
            started_here = True
    remote = ray.remote(num_cpus=num_cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries,
                        retry_exceptions=False)(_call_with_threads)  # retried when a node dies, not on a bug
    refs = [remote.remote(fn, item, int(max(1, num_cpus_per_run))) for item in items]
    bar = _bar(len(items), progress, f"{desc} (ray)", interval, unit)
    pending, index = list(refs), {ref: i for i, ref in enumerate(refs)}
    results: List[Any] = [None] * len(items)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            seconds, results[index[ref]] = ray.get(ref)
            _tick(bar, seconds)
    bar.close()
    if shutdown or (shutdown is None and started_here):
        ray.shutdown()
    return results


RAY_DEFAULT_PORTS = {"ray://": 10001, "": 6379}  # Ray Client server; GCS of `ray start --head`


def _no_cluster(address: str, why: str):
    from pai.utils.errors import UserError

    return UserError(f"no Ray cluster answers at address {address!r} ({why}); start one there "
                     f"(ray start --head), fix the address, or leave --address (and $RAY_ADDRESS) out "
                     f"to run Ray on this machine")


def check_ray_address(address: str, timeout_s: float = 3.0) -> None:
    """Refuse, in at most ``timeout_s`` seconds, a Ray address where nothing listens: one TCP connect to
    ``host:port`` (``ray://host:port`` or ``host:port``); ``"auto"``/``"local"`` are Ray's to resolve."""
    import socket

    from pai.utils.errors import UserError

    if address in ("auto", "local"):
        return
    scheme = "ray://" if address.startswith("ray://") else ""
    if "://" in address and not scheme:
        raise UserError(f"Ray address {address!r}: give host:port, ray://host:port or auto")
    host, sep, port = address[len(scheme):].rstrip("/").rpartition(":")
    if not sep:
        host, port = port, str(RAY_DEFAULT_PORTS[scheme])
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379, ray://head:10001)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise _no_cluster(address, e.strerror or str(e) or type(e).__name__) from None


def _call_with_threads(fn: Callable[[Any], Any], item: Any, threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)
    return _timed(fn, item)
