"""One function trains one run: ``train(config, mask=...) -> TrainResult`` (and ``python -m pai train``).

The loop follows airbench (Jordan, arXiv 2404.00498, 2024): the data set lives on the device as
one tensor, batches are index slices (no ``DataLoader``), crop+flip run on the whole batch, and
on CUDA the forward runs under bf16 autocast with channels_last and cudnn.benchmark (optionally
``torch.compile``).  On CPU everything is float32 and a fixed seed gives bit-identical runs.  On CPU
this loop runs as fast as a plain PyTorch loop, and neither channels_last nor ``torch.compile`` paid
for the narrow nets of the cpu profile on real data (``python -m pai.bench train``); what buys CPU time
is less work: a smaller input (``image_size``, area-averaged on load), a training subset and one
evaluation at the end (``eval_every``) -- measured in ``params/profiles/cpu/README.md``.

Static masks (pruning at initialisation): the mask is checked and applied to the weights once,
then re-applied after *every* optimizer step by one in-place ``torch._foreach_mul_`` over
precomputed lists (masks in each weight's dtype, device and memory format), so pruned weights stay
exactly 0 under momentum and weight decay: the ``Masking.step`` of sparselearning (Dettmers &
Zettlemoyer, arXiv 1907.04840, 2019) that Liu et al., "The Unreasonable Effectiveness of Random
Pruning", ICLR 2022 (``VITA-Group/Random_Pruning``, ``--fix``) train with.  Pruned weights still
get gradients and momentum: harmless while the mask is fixed (``TrainState.set_mask`` zeroes the
momentum of every entry a dynamic-sparse-training callback changes).

SGD uses PyTorch's fused update where available (same maths, one kernel: +13-21 % img/s for
LeNet-300-100 on one CPU thread here).  Recipe defaults (``TrainConfig``, :mod:`pai.train.checkpoint`)
are Random_Pruning's; the learning rate is a pure function of the epoch index (stepped per epoch,
as there), so a checkpoint's epoch count is the whole scheduler state; weight decay applies to
every parameter, as in that code.  Run directories, checkpoints and resume: :mod:`pai.train.checkpoint`.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pai.train import checkpoint as ckpt
from pai.train.checkpoint import TrainResult
from pai.train.config import SCHEDULES, TrainConfig  # noqa: F401  (public API of pai.train)
from pai.data import augment, iterate_batches, load_for
from pai.utils.errors import Parser, UserError, check_distinct, cli
from pai.utils.io import check_output
from pai.utils.faults import fault_point
from pai.utils.io import clean_stale_temps
from pai.masks import Mask, check_mask, check_mask_values, check_materialized, load_mask, prunable_parameters
from pai.utils.progress import progress_reporter
from pai.models import initial_model
from pai.train.rundir import RunDir
from pai.utils.seed import seed_everything, torch_generator
from pai.utils.threads import torch_threads

Callback = Callable[[str, "TrainState"], None]


@dataclass
class TrainState:
    """What callbacks ``cb(event, state)`` see at ``"step_end"`` and ``"epoch_end"``.

    ``epoch`` is 1-based (the epoch running or just finished), ``step`` counts optimizer steps of
    the whole run, ``loss`` is the last step's loss tensor.  Raising in a callback stops the run;
    the last epoch checkpoint stays and the next call resumes from it.
    """

    config: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    mask: Optional[Mask]
    history: List[Dict[str, float]]
    epoch: int = 0
    step: int = 0
    loss: Optional[torch.Tensor] = None
    _weights: List[torch.Tensor] = field(default_factory=list, repr=False)
    _factors: List[torch.Tensor] = field(default_factory=list, repr=False)

    def set_mask(self, mask: Optional[Mask], reset_momentum: bool = True) -> None:
        """Install ``mask`` (checked), apply it now and after every later step.

        With ``reset_momentum`` (mid-run), the momentum of every weight whose mask entry changed
        is zeroed: regrown weights start from 0 with no stale momentum (RigL, Evci et al., ICML 2020).
        """
        old = dict(zip(map(id, self._weights), self._factors))
        self._weights, self._factors = [], []
        if mask is not None:
            check_mask(self.model, mask)
            params = prunable_parameters(self.model)
            mask = {k: torch.as_tensor(mask[k]).detach().to(device="cpu", dtype=torch.bool) for k in params}
            for k, w in params.items():
                # empty_like keeps the weight's memory format, so the foreach kernel never restrides
                self._weights.append(w)
                self._factors.append(torch.empty_like(w).copy_(mask[k]))
                buf = self.optimizer.state.get(w, {}).get("momentum_buffer") if reset_momentum else None
                if buf is not None:
                    buf.mul_(self._factors[-1] * old[id(w)] if id(w) in old else self._factors[-1])
        self.mask = mask
        self.apply_mask()

    @torch.no_grad()
    def apply_mask(self) -> None:
        if self._weights:
            torch._foreach_mul_(self._weights, self._factors)


def train(config: TrainConfig | Dict[str, Any], *, mask: Optional[Mask] = None, model: Optional[nn.Module] = None,
          data=None, run_dir: Optional[str | Path] = None, progress: Optional[bool] = None,
          init_state: Optional[Dict[str, torch.Tensor]] = None,
          callbacks: Optional[Sequence[Callback]] = None) -> TrainResult:
    """Train one run; with ``run_dir``, checkpoint every epoch, resume, and reuse a finished result.

    ``model`` (else built from the config, seeded by ``config.seed``), ``data`` (a
    :class:`pai.data.Dataset`, else loaded from the config; it must be what the config names:
    it is not part of the run's identity), ``init_state`` (a ``state_dict`` loaded before the
    mask is applied: lottery-ticket rewinding, PEGS).  Returns the result with ``.model`` set.

    The network trained is recorded (``meta["network"]``: its class, a structural fingerprint and
    whether it was built from ``config.model`` or given), so a run directory whose record names
    another network is refused in one line rather than reused as, or rebuilt into, the wrong one.
    """
    cfg = TrainConfig.coerce(config)
    device = cfg.torch_device()
    if data is not None and not all(hasattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")):
        raise TypeError(f"train(data=...) takes a pai.data.Dataset, got {type(data).__name__}; for your own "
                        f"tensors: Dataset.from_tensors(x_train, y_train, x_test, y_test)")
    if mask is not None:  # before the fingerprint, which reads the mask as bool
        check_mask_values(mask)
    if model is not None:
        check_materialized(model)
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:  # an unwritable directory is found now, not after the first epoch
        check_output(run_dir, kind="dir", what="run directory")
        clean_stale_temps(run_dir)
    fp = ckpt.fingerprint(mask=mask, init_state=init_state,
                          model_state=None if model is None else model.state_dict())
    done = ckpt.load_result(run_dir)
    if done is not None:
        # another network is named as such, before the fingerprint of its weights tells only "different"
        net = model if model is not None else ckpt.rebuild(done)
        ckpt.check_network(RunDir(run_dir).result, done["meta"].get("network"),
                           ckpt.network_record(net, "config" if model is None else "given"), cfg.model)
        ckpt.check_same_run(RunDir(run_dir).result, done["config"], done["meta"]["fingerprint"], cfg.to_dict(), fp)
        return ckpt.load_finished(done, run_dir, model if model is not None else net, device)
    with torch_threads(cfg.threads):
        return _train(cfg, device, fp, mask, model, data, run_dir, progress, init_state, list(callbacks or ()))


def _train(cfg, device, fp, mask, model, data, run_dir, progress, init_state, callbacks) -> TrainResult:
    """Set up, resume, run the epochs and record one run.

    Long on purpose: the epoch loop shares the model, the optimizer, the network record and the
    checkpoint payload with the set-up and the resume check; split apart, each piece would take all of them."""
    if data is None:
        data = load_for(cfg, device)
    if model is None:  # the initialisation (and any dropout) depends on the seed alone
        model = initial_model(cfg.model, data.shape, cfg.seed)
        network = ckpt.network_record(model, "config")
    else:
        network = ckpt.network_record(model, "given")
        seed_everything(cfg.seed)
    model.to(device)
    if device.type == "cuda" and cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if init_state is not None:
        model.load_state_dict(init_state)
    opt = _sgd(model, cfg)
    state = TrainState(cfg, model, opt, None, [])
    state.set_mask(mask)
    found = ckpt.load_checkpoint(run_dir)
    if found is not None:
        ckpt.check_network(RunDir(run_dir).checkpoint, found.get("network"), network, cfg.model)
        ckpt.check_same_run(RunDir(run_dir).checkpoint, found["config"], found["fingerprint"], cfg.to_dict(), fp)
        print(f"pai.train: resumed {run_dir} from epoch {found['epoch']} of {cfg.epochs}", file=sys.stderr)
        model.load_state_dict(found["model"])
        opt.load_state_dict(found["optimizer"])
        state.history, state.epoch, state.step = list(found["history"]), found["epoch"], found["step"]
        state.set_mask(found["mask"], reset_momentum=False)
        ckpt.set_rng_state(found["rng"])
    loop = _Loop(cfg, device, data, model)
    n_steps = math.ceil(len(loop.x_train) / cfg.batch_size)
    bar = progress_reporter(cfg.epochs * n_steps, progress, f"{cfg.model}/{cfg.dataset}", unit="step",
                            interval=30.0, initial=state.epoch * n_steps, leave=False)
    try:
        for epoch in range(state.epoch, cfg.epochs):
            state.epoch = epoch + 1
            state.history.append(loop.epoch(state, epoch, callbacks, bar))
            tested = state.history[-1]["test_acc"]
            bar.set_postfix(loss=f"{state.history[-1]['train_loss']:.3f}",
                            test_acc="-" if tested is None else f"{tested:.4f}")
            for cb in callbacks:
                cb("epoch_end", state)
            if ckpt.non_finite(state.history[-1]):  # diverged: stop, keep the last finite checkpoint
                raise ckpt.diverged(run_dir, state.epoch, ckpt.non_finite(state.history[-1]), cfg.to_dict(), fp,
                                    state.history)
            if run_dir is not None:
                ckpt.save_checkpoint(run_dir, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": state.epoch,
                    "step": state.step, "history": state.history, "mask": state.mask, "config": cfg.to_dict(),
                    "fingerprint": fp, "network": network, "rng": ckpt.rng_state()})
                fault_point("epoch_end")
    finally:
        bar.close()
    meta = {"fingerprint": fp, "network": network, "num_classes": data.num_classes, "in_channels": data.in_channels,
            "image_size": data.image_size, "device": str(device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "steps": state.step}
    result = TrainResult.from_history(cfg.to_dict(), state.history, state.mask, model, meta)
    if run_dir is not None:
        ckpt.save_final(run_dir, model.state_dict(), result.to_dict())
    return result


class _Loop:
    """The device-side set-up of a run (data on the device, precision, layout) and its epoch."""

    def __init__(self, cfg: TrainConfig, device: torch.device, data, model: nn.Module):
        cuda = device.type == "cuda"
        self.cfg, self.device, self.cuda = cfg, device, cuda
        self.x_train, self.y_train = data.x_train.to(device), data.y_train.to(device)
        self.x_test, self.y_test = data.x_test.to(device), data.y_test.to(device)
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        if cfg.compile:
            model.compile()  # in place (nn.Module.compile): state_dict keys stay those of the plain model
        self.model = model
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda and cfg.bf16 else nullcontext
        convs = any(isinstance(m, nn.Conv2d) for m in model.modules())  # an MLP would only pay a copy
        self.layout = ((lambda x: x.contiguous(memory_format=torch.channels_last))
                       if cuda and cfg.channels_last and convs and self.x_train.dim() == 4 else (lambda x: x))

    def epoch(self, state: "TrainState", epoch: int, callbacks: Sequence[Callback], bar) -> Dict[str, float]:
        cfg, model, opt = self.cfg, self.model, state.optimizer
        lr = cfg.lr_at(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        g = torch_generator(epoch_seed(cfg.seed, epoch), device=self.device)  # a resumed run sees the same batches
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)  # summed on the device: no sync per step
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for xb, yb in iterate_batches(self.x_train, self.y_train, cfg.batch_size, shuffle=True, generator=g):
            if cfg.augment:
                xb = augment(xb, generator=g)
            with self.autocast():
                out = model(self.layout(xb))
            loss = F.cross_entropy(out.float(), yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state.apply_mask()
            loss_sum.add_(loss.detach(), alpha=len(yb))  # detached / argmax: no graph, no no_grad() needed
            correct.add_((out.argmax(1) == yb).sum())
            state.step += 1
            bar.update()
            if callbacks:
                state.loss = loss
                for cb in callbacks:
                    cb("step_end", state)
        if self.cuda:
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
        test_loss = test_acc = None
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            test_loss, test_acc = evaluate(model, self.x_test, self.y_test, cfg.eval_batch_size, self.autocast,
                                           self.layout)
        n = len(self.x_train)
        return {"epoch": epoch + 1, "train_loss": loss_sum.item() / n, "train_acc": correct.item() / n,
                "test_loss": test_loss, "test_acc": test_acc, "lr": lr, "seconds": time.perf_counter() - t0,
                "train_seconds": train_s, "train_images": n}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024, autocast=None,
             to_layout=None) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode (``autocast``: a
    context factory)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with autocast() if autocast else nullcontext():
            out = model(to_layout(xb) if to_layout else xb)
        loss_sum += F.cross_entropy(out.float(), yb, reduction="sum")
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(1, len(x))
    return loss_sum.item() / n, correct.item() / n


def epoch_seed(seed: int, epoch: int) -> int:
    """Independent, reproducible seed of the data order and augmentation of one epoch."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _sgd(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD, fused where this torch and device have it (neutral for LeNet-5, faster for the MLP)."""
    kw = dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
              nesterov=cfg.nesterov and cfg.momentum > 0)
    try:
        return torch.optim.SGD(model.parameters(), fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.SGD(model.parameters(), **kw)


# ----------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    from pai.data import dataset_names
    from pai.models import model_names

    p = Parser(prog="python -m pai train", description="Train one run; writes OUT/result.json. Bad input exits "
               "with 2 before any work, a diverged run with 3; --debug shows tracebacks.",
               argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="YAML/JSON file of TrainConfig keys (flags override it)")
    p.add_argument("--mask", help="mask file written by pai.masks.save_mask (python -m pai prune)")
    p.add_argument("--out", required=True, help="run directory (checkpoint.pt, final.pt, result.json); a rerun "
                   "resumes an interrupted run and reuses a finished one")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, help="tqdm bar (default: a bar on a terminal, a line every 30 s elsewhere)")
    names = {"model": f"one of {', '.join(model_names())} (a -w<factor> suffix scales the width)",
             "dataset": f"one of {', '.join(dataset_names())}", "schedule": f"one of {', '.join(SCHEDULES)}"}
    for f in dataclasses.fields(TrainConfig):
        flag, help_ = f"--{f.name.replace('_', '-')}", f"(default {f.default})"
        help_ = f"{names[f.name]} {help_}" if f.name in names else help_
        if f.name == "milestones":
            p.add_argument(flag, dest=f.name, type=float, nargs="*", help=help_)
        elif isinstance(f.default, bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=help_)
        else:  # Optional[int] fields take "none"; data_root (default None) is a path
            kind = _opt_int if f.type == "Optional[int]" else str if f.default is None else type(f.default)
            p.add_argument(flag, dest=f.name, type=kind, help=help_)
    return p


def _opt_int(s: str) -> Optional[int]:
    return None if s.lower() in ("none", "null", "") else int(s)


def _preflight(cfg: TrainConfig, out: Path, mask_path: Optional[str], config_path: Optional[str]) -> Optional[Mask]:
    """Every check that needs no data and no training: names, device, the output directory, the mask
    (readable, and fitting the model); a ``UserError`` names what is wrong."""
    from pai.data import shape

    cfg.torch_device()  # --device cuda without a GPU
    model = initial_model(cfg.model, shape(cfg.dataset), cfg.seed)  # unknown names list the valid ones
    check_distinct(out, [mask_path, config_path], what="--out")
    check_output(out, kind="dir", what="--out")
    if mask_path is None:
        return None
    mask = load_mask(mask_path)
    try:
        check_mask(model, mask)
    except ValueError as e:
        raise UserError(f"mask {mask_path} does not fit {cfg.model} on {cfg.dataset}: {e}") from None
    return mask


@cli("python -m pai train")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = vars(_parser().parse_args(list(sys.argv[1:] if argv is None else argv)))
    out, mask_path, progress = Path(args.pop("out")), args.pop("mask", None), args.pop("progress", None)
    config_path = args.pop("config", None)
    base = TrainConfig.from_file(config_path).to_dict() if config_path else {}
    cfg = TrainConfig.from_dict({**base, **args})
    mask = _preflight(cfg, out, mask_path, config_path)
    finished = ckpt.load_result(out) is not None
    r = train(cfg, mask=mask, run_dir=out, progress=progress)
    n = len(r.history)
    how = "already finished, reused" if finished else f"{r.images_per_s:,.0f} img/s, {r.wall_time_s:.1f} s"
    print(f"{cfg.model} on {cfg.dataset}: final test acc {r.final_test_acc:.4f} (best {r.best_test_acc:.4f}) after "
          f"{n} epoch{'s' * (n != 1)}, density {r.density:.4g}, {how} -> {RunDir(out).result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
