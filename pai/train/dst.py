"""Dynamic sparse training (DST): SET / ITOP-Rand, optionally RigL growth, as a trainer callback.

Every ``update_interval`` optimizer steps each layer drops the ``k = round(f_t * kept)`` kept weights
of smallest ``|w|`` and regrows ``k`` pruned positions, so every layer's density stays exactly
constant.  Growth is uniform at random (SET, Mocanu et al., Nat. Commun. 2018; ITOP-Rand, Liu, Yin,
Mocanu & Pechenizkiy, "Do we actually need dense over-parameterization? In-time over-
parameterization in sparse training", ICML 2021) or by largest ``|grad|`` of the last batch
(``growth="gradient"``: RigL, Evci et al., ICML 2020, Alg. 1).  The drop fraction follows
``f_t = f_min + (f_0 - f_min)(1 + cos(pi t / T_end)) / 2`` (RigL Eq. 1; ITOP's ``CosineDecay``).
Regrown weights and their optimizer state (momentum) start at zero.  The *ITOP rate* is the
fraction of all prunable weights that were ever active (ITOP ``fired_masks``, Sec. 3).

Deviations from ``Shiweiliuiiiiiii/In-Time-Over-Parameterization`` (``sparselearning/core.py``):

* exact counts: ITOP drops by a ``|w| <= threshold`` rule (ties drop more) and grows by independent
  Bernoulli draws, so its density is constant only in expectation; here both are exact top-k;
* ``k = round(f_t * kept)`` (RigL Alg. 1 drops a fraction ``f_t`` of the active weights; we round to
  the nearest count) where ITOP takes ``ceil``; ``f_min = 0`` by default
  where ITOP's cosine stops at 0.005 (pass ``min_drop_fraction=0.005`` for ITOP's schedule);
* growth candidates: by default only positions pruned *before* this update (a weight dropped now
  is not regrown at once, so each update explores ``k`` genuinely new positions); ITOP and RigL
  grow among all zeros of the post-drop mask, just-dropped ones included (``regrow_dropped=True``).
  The official rule regrows ``~k * f_t * d / (1 - d)`` just-dropped weights per layer of density
  ``d``, a few percent of ``k`` at the papers' densities.  When a layer has fewer candidates than
  ``k`` (density above 2/3 at ``f_t = 0.5``), ``k`` is capped so the density stays exact;
* updates stop at ``end_step`` (RigL's ``T_end``; default: the whole run, as ITOP).

Full-spectrum recording (Hoang, Kundu, Liu & Wang, "Don't just prune by magnitude! Your mask topology
is a secret weapon", NeurIPS 2023).  At the start, after every update and at the end, each layer's
coordinate ``v = (dr, lambda, IMDB_r, IMDB_lambda)`` of ``(mask, |w * mask|)`` is recorded through
:func:`pai.metrics.fullspectrum.full_spectrum` (NaN kept for invalid layers).  Distances are
:func:`pai.metrics.moving_distance` (our reading of the paper's "l2-moving distance" is stated there):
``moving_distance`` between ``(m_0, theta_0)``, the PaI mask DST started from at the initialization,
and ``(m_T, theta_T)`` (mean over layers; ``_sum``, ``_stacked`` and ``_per_layer`` alongside), each
trajectory entry's ``distance`` the same for ``(m_t, theta_t)``, and ``anchor_distance`` between the
final mask at its trained weights and the *same* mask on ``theta_0`` (the dev code's ITOP "anchor",
``mask_-1_step_init``; only the weighted coordinates differ).  PAGS/PEGS rank masks by ``||v||`` from
the origin, which is not a moving distance (not here).
"""
from __future__ import annotations

import copy
import json
import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np
import torch

from pai.train import checkpoint as ckpt
from pai.train.config import TrainConfig
from pai.data import load_for
from pai.utils.io import load_json, load_torch, save_json, save_torch
from pai.masks import Mask, num_total, prunable_parameters, topk_flat
from pai.models import initial_model
from pai.train.rundir import RunDir
from pai.utils.seed import torch_generator
from pai.utils.threads import torch_threads
from pai.train import train

DECAYS = ("cosine", "linear", "constant")
GROWTHS = ("random", "gradient")


def drop_fraction_at(step: int, initial: float, end_step: int, decay: str = "cosine", minimum: float = 0.0) -> float:
    """The drop fraction ``f_t`` at optimizer step ``step`` (0 from ``end_step`` on)."""
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    if step >= end_step:
        return 0.0
    if decay == "constant":
        return initial
    x = step / end_step
    shape = 0.5 * (1.0 + math.cos(math.pi * x)) if decay == "cosine" else 1.0 - x
    return minimum + (initial - minimum) * shape


@torch.no_grad()
def drop_and_grow(weight: torch.Tensor, mask: torch.Tensor, k: int, *, generator: torch.Generator,
                  growth: str = "random", grad: Optional[torch.Tensor] = None, regrow_dropped: bool = False):
    """One layer's update: ``(new_mask, regrown, k)``; drop the ``k`` smallest kept ``|w|``, grow ``k``.

    ``regrown`` marks the grown positions (zero the weights and optimizer state there).  The
    random draws come from ``generator`` on the CPU, so CPU and GPU runs pick the same positions.
    """
    m = mask.reshape(-1)
    kept = int(m.sum())
    candidates = ~m
    k = max(0, min(int(k), kept, kept if regrow_dropped else int(candidates.sum())))
    if k == 0:
        return mask, torch.zeros_like(mask), 0
    score = weight.detach().reshape(-1).abs().float().masked_fill(~m, -math.inf)
    after_drop = topk_flat(score, kept - k)  # the kept - k largest survive (ties by position)
    if regrow_dropped:
        candidates = ~after_drop
    # a random permutation breaks ties among equal scores (RigL's zero gradients) at random
    perm = torch.randperm(m.numel(), generator=generator).to(m.device)
    if growth == "random":
        grow_score = torch.ones(m.numel(), device=m.device)
    elif growth == "gradient":
        if grad is None:
            raise ValueError("growth='gradient' needs the weight's .grad (none found: call at step_end)")
        grow_score = grad.detach().reshape(-1).abs().float()
    else:
        raise ValueError(f"growth must be one of {GROWTHS}, got {growth!r}")
    chosen = topk_flat(grow_score[perm].masked_fill(~candidates[perm], -math.inf), k)
    regrown = torch.zeros_like(m)
    regrown[perm[chosen]] = True
    return (after_drop | regrown).view_as(mask), regrown.view_as(mask), k


def _coordinates(spectrum_fn, weights: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]):
    """``{layer: [4 floats]}`` of ``(mask, |w * mask|)``; the global RNGs are left untouched."""
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        out = {k: _vector(spectrum_fn(weights[k].detach().cpu(), mask[k].cpu())) for k in mask}
    np.random.set_state(numpy_state)
    return out


def _vector(coord) -> List[float]:
    if hasattr(coord, "_asdict"):
        coord = tuple(coord)
    elif isinstance(coord, Mapping):
        coord = tuple(coord.values())
    return [float(x) for x in torch.as_tensor(coord, dtype=torch.float64).reshape(-1).tolist()]




def _default_spectrum(weight: torch.Tensor, mask: torch.Tensor):
    from pai.metrics.fullspectrum import full_spectrum

    return full_spectrum(weight, mask, invalid=math.nan)  # keep NaN: it tells invalid layers apart


class DynamicSparsity:
    """Trainer callback ``cb(event, state)`` doing SET / ITOP-Rand (or RigL) mask updates.

    Call :meth:`begin` with the initial model before training (:func:`train_dst`
    does it, and saves/resumes the state with a run directory), then
    pass the object in ``pai.train.train(..., mask=mask, callbacks=[dst])``; :meth:`result` gives
    the trajectory, ITOP rate and moving distances once training ended.
    """

    def __init__(self, mask: Mask, update_interval: int = 100, drop_fraction: float = 0.5, decay: str = "cosine",
                 end_step: Optional[int] = None, growth: str = "random", seed: int = 0, record_spectrum: bool = True,
                 min_drop_fraction: float = 0.0, regrow_dropped: bool = False,
                 spectrum_fn: Optional[Callable] = None):
        if not isinstance(update_interval, int) or update_interval < 1:
            raise ValueError(f"update_interval must be an int >= 1, got {update_interval!r}")
        if not 0.0 <= drop_fraction <= 1.0 or not 0.0 <= min_drop_fraction <= drop_fraction:
            raise ValueError(f"need 0 <= min_drop_fraction <= drop_fraction <= 1, got {min_drop_fraction}, "
                             f"{drop_fraction}")
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
        if growth not in GROWTHS:
            raise ValueError(f"growth must be one of {GROWTHS}, got {growth!r}")
        if end_step is not None and end_step < 1:
            raise ValueError(f"end_step must be None or >= 1, got {end_step}")
        self.options = dict(update_interval=update_interval, drop_fraction=float(drop_fraction), decay=decay,
                            end_step=end_step, growth=growth, seed=int(seed), record_spectrum=bool(record_spectrum),
                            min_drop_fraction=float(min_drop_fraction), regrow_dropped=bool(regrow_dropped))
        self.mask = {k: torch.as_tensor(v).detach().to(torch.bool).clone() for k, v in mask.items()}
        self.ever = {k: v.clone() for k, v in self.mask.items()}
        self.generator = torch_generator(seed)
        self.spectrum_fn = spectrum_fn
        self.end_step = end_step
        self.trajectory: List[Dict[str, Any]] = []
        self.initial: Optional[Dict[str, List[float]]] = None
        self.final: Optional[Dict[str, Any]] = None
        self.theta0: Optional[Dict[str, torch.Tensor]] = None
        self.update_seconds = 0.0  # time in the training loop's updates, their recording included
        self.update_cpu_seconds = 0.0  # the same in CPU time of the calling thread (load-independent)
        self.record_seconds = 0.0  # all full-spectrum recording (in updates, begin and finish)
        self.setup_seconds = 0.0  # begin + finish (initial, final and anchor coordinates)
        self.step = 0

    # ------------------------------------------------------------------ life cycle
    def begin(self, model: torch.nn.Module, total_steps: Optional[int] = None) -> "DynamicSparsity":
        """Remember ``theta_0`` and record the initial coordinate; ``total_steps`` sets ``end_step``."""
        params = prunable_parameters(model)
        if set(params) != set(self.mask):
            raise ValueError(f"mask layers {sorted(self.mask)} differ from the model's {sorted(params)}")
        if self.end_step is None:
            if total_steps is None:
                raise ValueError("pass end_step to DynamicSparsity or total_steps to begin()")
            self.end_step = int(total_steps)
        self.options["end_step"] = self.end_step
        t0 = time.perf_counter()
        self.theta0 = {k: p.detach().to("cpu", copy=True) for k, p in params.items()}
        if self.options["record_spectrum"]:
            self.initial = self._record(self.theta0)
        self.setup_seconds += time.perf_counter() - t0
        return self

    def __call__(self, event: str, state) -> None:
        if self.end_step is None or self.theta0 is None:
            raise RuntimeError("DynamicSparsity.begin(model, total_steps) was not called before training")
        if event == "step_end":
            self.step = state.step
            if state.step % self.options["update_interval"] == 0 and state.step < self.end_step:
                self.update(state)
        elif event == "epoch_end" and state.epoch == state.config.epochs:
            self.finish(state.model)

    def _record(self, weights: Mapping[str, torch.Tensor]) -> Dict[str, List[float]]:
        t0 = time.perf_counter()
        with torch_threads(1):
            out = _coordinates(self.spectrum_fn or _default_spectrum, weights, self.mask)
        self.record_seconds += time.perf_counter() - t0
        return out

    @torch.no_grad()
    def update(self, state) -> None:
        """One drop-and-grow of every layer, installed through ``state.set_mask``.

        On one CPU thread: each OpenMP fork/join of its many small ops costs milliseconds on a busy
        machine (measured: 500 ms vs 3 ms per LeNet-5 update at 2 threads vs 1)."""
        with torch_threads(1):
            self._update(state)

    def _update(self, state) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        params = prunable_parameters(state.model)
        o = self.options
        f = drop_fraction_at(state.step, o["drop_fraction"], self.end_step, o["decay"], o["min_drop_fraction"])
        moved, changed = {}, False
        for name, w in params.items():
            old = self.mask[name].to(w.device)
            k = round(f * int(old.sum()))
            new, regrown, k = drop_and_grow(w, old, k, generator=self.generator, growth=o["growth"], grad=w.grad,
                                            regrow_dropped=o["regrow_dropped"])
            moved[name] = k
            if k:
                changed = True
                w.masked_fill_(regrown, 0.0)
                for buf in state.optimizer.state.get(w, {}).values():  # momentum (Adam: both moments)
                    if torch.is_tensor(buf) and buf.shape == w.shape:
                        buf.masked_fill_(regrown, 0)
                self.mask[name] = new.cpu()
                self.ever[name] |= self.mask[name]
        if changed:  # with nothing moved the run stays bit-identical to static training
            state.set_mask(self.mask)
        entry = {"step": state.step, "drop_fraction": f, "moved": moved, "itop_rate": self.itop_rate()}
        t1 = time.perf_counter()
        if o["record_spectrum"]:
            from pai.metrics.fullspectrum import moving_distance

            entry["coords"] = self._record(params)
            entry["distance"] = moving_distance(self.initial, entry["coords"])["mean"]
        t2 = time.perf_counter()
        entry.update(seconds=t2 - t0, record_seconds=t2 - t1)
        self.trajectory.append(entry)
        self.update_seconds += t2 - t0
        self.update_cpu_seconds += time.thread_time() - c0

    def finish(self, model: torch.nn.Module) -> None:
        """Record the end coordinate and the anchor ``(m_T, theta_0)`` one."""
        if not self.options["record_spectrum"]:
            self.final = {}
            return
        from pai.metrics.fullspectrum import moving_distance

        t0 = time.perf_counter()
        end = self._record(prunable_parameters(model))
        anchor = self._record(self.theta0)
        self.final = {"coords": end, "anchor_coords": anchor,
                      "moving_distance": moving_distance(self.initial, end),
                      "anchor_distance": moving_distance(anchor, end)}
        self.setup_seconds += time.perf_counter() - t0

    # ------------------------------------------------------------------ results and state
    def itop_rate(self, per_layer: bool = False):
        if per_layer:
            return {k: float(v.sum()) / v.numel() for k, v in self.ever.items()}
        return sum(int(v.sum()) for v in self.ever.values()) / num_total(self.ever)

    def result(self) -> Dict[str, Any]:
        """JSON-ready summary: options, updates, trajectory, ITOP rate, moving distances, timings."""
        out = {"options": dict(self.options), "updates": len(self.trajectory),
               "trajectory": self.trajectory, "itop_rate": self.itop_rate(),
               "itop_rate_per_layer": self.itop_rate(per_layer=True), "initial": self.initial,
               "update_seconds": self.update_seconds, "update_cpu_seconds": self.update_cpu_seconds,
               "record_seconds": self.record_seconds, "setup_seconds": self.setup_seconds}
        if self.final:
            md, ad = self.final["moving_distance"], self.final["anchor_distance"]
            out.update(final=self.final["coords"], anchor=self.final["anchor_coords"], moving_distance=md["mean"],
                       moving_distance_sum=md["sum"], moving_distance_stacked=md["stacked"],
                       moving_distance_per_layer=md["per_layer"], anchor_distance=ad["mean"],
                       anchor_distance_stacked=ad["stacked"], anchor_distance_per_layer=ad["per_layer"])
        return out

    def state_dict(self) -> Dict[str, Any]:
        """A snapshot (copies: later updates do not change it)."""
        return copy.deepcopy({"options": self.options, "end_step": self.end_step, "step": self.step,
                              "mask": self.mask, "ever": self.ever, "generator": self.generator.get_state(),
                              "trajectory": self.trajectory, "initial": self.initial,
                              "update_seconds": self.update_seconds, "record_seconds": self.record_seconds,
                              "update_cpu_seconds": self.update_cpu_seconds})

    def load_state_dict(self, sd: Mapping[str, Any]) -> None:
        if dict(sd["options"]) != self.options:
            raise ValueError(f"saved DST options {dict(sd['options'])} differ from these {self.options}")
        self.end_step, self.step = sd["end_step"], sd["step"]
        self.mask = {k: v.clone() for k, v in sd["mask"].items()}
        self.ever = {k: v.clone() for k, v in sd["ever"].items()}
        self.generator.set_state(sd["generator"])
        self.trajectory, self.initial = list(sd["trajectory"]), sd["initial"]
        self.update_seconds, self.record_seconds = sd["update_seconds"], sd["record_seconds"]
        self.update_cpu_seconds = sd["update_cpu_seconds"]


# ----------------------------------------------------------------------------- one DST run


def check_options(**options) -> None:
    """``ValueError`` for an option :class:`DynamicSparsity` does not take (``mask`` and ``spectrum_fn`` are
    not options) or a value of the wrong type or range -- checked before a run starts."""
    import difflib
    import inspect

    valid = [n for n in inspect.signature(DynamicSparsity.__init__).parameters if n not in ("self", "mask",
                                                                                             "spectrum_fn")]
    for key, value in options.items():
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            raise ValueError(f"dst regime has no option {key!r}{f' (did you mean {close[0]!r}?)' if close else ''}; "
                             f"valid: {', '.join(valid)}")
        if key in ("drop_fraction", "min_drop_fraction") and (isinstance(value, bool)
                                                              or not isinstance(value, (int, float))):
            raise ValueError(f"dst regime option {key} must be a number, got {value!r}")
        if key in ("update_interval", "seed") + (("end_step",) if value is not None else ()) and \
                (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"dst regime option {key} must be an integer, got {value!r}")
        if key in ("record_spectrum", "regrow_dropped") and not isinstance(value, bool):
            raise ValueError(f"dst regime option {key} must be true or false, got {value!r}")
    DynamicSparsity({}, **options)  # its own range checks; an empty mask costs nothing


def train_dst(config, *, mask: Mask, model=None, data=None, run_dir=None, progress=None, init_state=None,
              callbacks=None, **dst_options):
    """``pai.train.train`` with a :class:`DynamicSparsity` callback (options as keywords; ``seed``
    defaults to the config's).  Its :meth:`~DynamicSparsity.result` goes to ``result.meta["dst"]``
    and, with ``run_dir``, to ``run_dir/dst.json``; the DST state is saved at every epoch end next
    to the trainer's checkpoint, so an interrupted run resumes to the same masks.
    """
    cfg = TrainConfig.coerce(config)
    if data is None:
        data = load_for(cfg)
    start = initial_model(cfg.model, data.shape, cfg.seed) if model is None else model
    if init_state is not None:
        start.load_state_dict(init_state)
    dst = DynamicSparsity(mask, **{"seed": cfg.seed, **dst_options})
    dst.begin(start, total_steps=cfg.epochs * math.ceil(len(data.y_train) / cfg.batch_size))
    files = RunDir(run_dir) if run_dir is not None else None
    finished, record, states = _resume_dst(dst, files)

    def save_state(event, state):
        if event == "epoch_end" and files is not None:
            states[state.step] = dst.state_dict()
            for old in sorted(states)[:-2]:  # the trainer's checkpoint is at one of the last two
                del states[old]
            save_torch(states, files.dst_state)

    result = train(cfg, mask=mask, model=model, data=data, run_dir=run_dir, progress=progress,
                   init_state=init_state, callbacks=[dst, save_state, *(callbacks or ())])
    if record is None:
        if dst.final is None:  # finished before this call (or resumed at its very end)
            if finished:
                dst.load_state_dict(states[max(states)])
            dst.finish(result.model)
        record = json.loads(json.dumps(dst.result()))  # the same plain types as a reloaded record
        if files is not None:
            save_json(record, files.dst_record)
    result.meta["dst"] = record
    return result


def _resume_dst(dst: DynamicSparsity, files: Optional[RunDir]):
    """``(finished, record, states)`` of a run directory: whether training finished, its ``dst.json``
    record (None until written) and the saved DST states; loads the state a checkpoint resumes from."""
    if files is None:
        return False, None, {}
    finished = ckpt.load_result(files.path) is not None
    states = (load_torch(files.dst_state, what="DST state", fix=f"delete {files.path} to redo the run")
              if files.dst_state.is_file() else {})
    record = None
    if finished and files.dst_record.is_file():
        record = load_json(files.dst_record, what="DST record", fix=f"delete {files.path} to redo the run")
        if record["options"] != json.loads(json.dumps(dst.options)):
            raise ValueError(f"{files.path} was trained with DST options {record['options']}, not {dst.options}")
    elif finished and not states:
        raise ValueError(f"{files.path} holds a finished run that was not trained with DST; use another run_dir")
    found = None if finished else ckpt.load_checkpoint(files.path)
    if found is not None:  # resuming: the DST state saved at the checkpoint's step
        if found["step"] not in states:
            raise ValueError(f"{files.path} has a checkpoint at step {found['step']} but no DST state for it")
        dst.load_state_dict(states[found["step"]])
    return finished, record, states
