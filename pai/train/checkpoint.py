"""The record of one training run: its result and its run directory on disk.

``pai.train.config.TrainConfig`` says what a run is; ``TrainResult`` what it gave; the rest of this module
keeps a run directory for :func:`pai.train.train` (file names: :class:`pai.train.rundir.RunDir`), each file
written atomically through :mod:`pai.utils.io`
(so a killed run leaves the previous version or the new one, never a torn file):

- ``checkpoint.pt`` after every epoch: model, optimizer, current mask, epochs done, history,
  config, the run's fingerprint and every global RNG state;
- ``final.pt`` (the trained model's ``state_dict``), then ``result.json`` last: its presence
  means "this run is finished".

The pattern is open_lth's (Frankle et al., github.com/facebookresearch/open_lth): a run is a
directory named by what produced it, re-entering a finished one is free and re-entering an
interrupted one resumes.  Identity = the config (minus :data:`RUN_INDEPENDENT_KEYS`) plus a
*fingerprint* of what ``train`` was handed besides the config (mask, initial weights), so a
different mask in the same directory is an error rather than a silently reused result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import nn

from pai.train.config import HOW_TO_RUN as RUN_INDEPENDENT_KEYS
from pai.utils.errors import TrainingDiverged
from pai.utils.io import load_json, load_torch, save_json, save_torch
from pai.masks import density
from pai.train.rundir import RunDir


@dataclass
class TrainResult:
    """What a run gave; ``to_dict()`` is ``result.json`` (``model`` is not serialised: ``final.pt``)."""

    config: Dict[str, Any]
    history: List[Dict[str, float]]  # per epoch: epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, ...
    best_test_acc: float
    final_test_acc: float
    wall_time_s: float  # sum of the epochs' seconds (training + evaluation), across resumes
    images_per_s: float  # training images / training seconds (evaluation excluded)
    density: float  # fraction of prunable weights kept (1.0 without a mask)
    num_params: int
    meta: Dict[str, Any] = field(default_factory=dict)  # fingerprint, data shape, provenance
    model: Optional[nn.Module] = field(default=None, repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}

    @classmethod
    def from_history(cls, config: Dict[str, Any], history: List[Dict[str, float]], mask: Optional[Mapping],
                     model: nn.Module, meta: Dict[str, Any]) -> "TrainResult":
        train_s = sum(e["train_seconds"] for e in history)
        tested = [e["test_acc"] for e in history if e.get("test_acc") is not None]  # see eval_every
        return cls(config, history, max(tested), history[-1]["test_acc"],
                   sum(e["seconds"] for e in history), sum(e["train_images"] for e in history) / max(train_s, 1e-12),
                   1.0 if mask is None else density(mask), sum(p.numel() for p in model.parameters()), meta, model)

    @classmethod
    def from_dict(cls, d: Dict[str, Any], model: Optional[nn.Module] = None) -> "TrainResult":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name != "model"}, model=model)


def tensor_digest(tensors: Optional[Mapping[str, torch.Tensor]]) -> Optional[str]:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (``None`` for ``None``)."""
    if tensors is None:
        return None
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = torch.as_tensor(tensors[name]).detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(tensors[name].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def fingerprint(*, mask: Optional[Mapping[str, torch.Tensor]], init_state: Optional[Mapping[str, torch.Tensor]],
                model_state: Optional[Mapping[str, torch.Tensor]]) -> Dict[str, Optional[str]]:
    """What ``train`` got besides the config. ``None`` = built from the config (seeded), no mask."""
    masks = None if mask is None else {k: torch.as_tensor(v).to(torch.bool) for k, v in mask.items()}
    return {"mask": tensor_digest(masks), "init_state": tensor_digest(init_state),
            "model": tensor_digest(model_state)}


def network_record(model: nn.Module, source: str) -> Dict[str, str]:
    """What network a run trained: its class, a structural fingerprint (SHA-256 of every module's name
    and type and every parameter's and buffer's name and shape: the architecture, not the weights)
    and its ``source`` (``"config"``: built from ``config.model``; ``"given"``: handed to ``train``)."""
    h = hashlib.sha256()
    for name, m in model.named_modules():
        h.update(f"m|{name}|{_qualname(m)}\n".encode())
    for name, t in model.state_dict().items():
        h.update(f"t|{name}|{tuple(t.shape)}\n".encode())
    return {"class": _qualname(model), "structure": h.hexdigest()[:16], "source": source}


def _qualname(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def check_network(path: Path, found: Optional[Mapping[str, Any]], wanted: Mapping[str, Any],
                  config_model: str) -> None:
    """Raise ``ValueError`` (one line) when the run stored at ``path`` trained another network than
    ``wanted`` (:func:`network_record`); a record written before networks were recorded passes."""
    if not found or (found.get("class"), found.get("structure")) == (wanted["class"], wanted["structure"]):
        return
    given = "the model= network" if wanted["source"] == "given" else f"config model {config_model!r}"
    fix = ("pass the network it trained as model=" if found.get("source") == "given"
           else "pass no model= (it was built from the config)")
    raise ValueError(f"{path} holds a run of {found.get('class')} (structure {found.get('structure')}), not of "
                     f"{given}, a {wanted['class']} (structure {wanted['structure']}): {fix}, or use another "
                     f"run_dir")


# ----------------------------------------------------------------------------- RNG states


def rng_state() -> Dict[str, Any]:
    """Every global generator a training step may draw from (dropout, user callbacks)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


# ----------------------------------------------------------------------------- identity checks


def config_diff(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> Dict[str, tuple]:
    """``{key: (found, wanted)}`` for every run-relevant key whose value differs."""
    keys = (set(found) | set(wanted)) - set(RUN_INDEPENDENT_KEYS)
    return {k: (found.get(k, "<missing>"), wanted.get(k, "<missing>"))
            for k in sorted(keys) if _plain(found.get(k, "<missing>")) != _plain(wanted.get(k, "<missing>"))}


def _plain(x):
    return list(x) if isinstance(x, tuple) else x  # JSON turns tuples into lists


def check_same_run(path: Path, found_config: Mapping[str, Any], found_fp: Mapping[str, Any],
                   config: Mapping[str, Any], fp: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when the run stored at ``path`` is not the run being asked for."""
    diff = config_diff(found_config, config)
    if diff:
        lines = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise ValueError(f"{path} belongs to a different run ({lines}); use another run_dir or delete it")
    bad = [k for k in ("mask", "init_state", "model") if found_fp.get(k) != fp.get(k)]
    if bad:
        raise ValueError(f"{path} has the same config but a different {', '.join(bad)} "
                         f"(fingerprints differ); use another run_dir or delete it")


# ----------------------------------------------------------------------------- files


def save_checkpoint(run_dir: Path, payload: Mapping[str, Any]) -> Path:
    return save_torch(dict(payload), RunDir(run_dir).checkpoint)


def load_checkpoint(run_dir: Optional[Path]) -> Optional[Dict[str, Any]]:
    """On the CPU: RNG states must be CPU tensors; ``load_state_dict`` moves the rest."""
    if run_dir is None or not RunDir(run_dir).checkpoint.is_file():
        return None
    return load_torch(RunDir(run_dir).checkpoint, what="checkpoint",
                      fix=f"delete it to restart this run from epoch 0 (or delete {run_dir} to redo the run)")


def save_final(run_dir: Path, state_dict: Mapping[str, torch.Tensor], result: Mapping[str, Any]) -> None:
    """Weights first, ``result.json`` last: a result on disk always has its weights next to it."""
    save_torch({k: v.detach().to("cpu") for k, v in state_dict.items()}, RunDir(run_dir).final)
    save_json(dict(result), RunDir(run_dir).result)
    RunDir(run_dir).diverged.unlink(missing_ok=True)  # an earlier attempt's note: this one finished


# ----------------------------------------------------------------------------- divergence

def non_finite(entry: Mapping[str, Any]) -> Optional[str]:
    """What is non-finite in one epoch's history entry (``"train loss nan"``), or None."""
    import math

    for key in ("train_loss", "test_loss"):
        value = entry.get(key)
        if value is not None and not math.isfinite(value):
            return f"{key.replace('_', ' ')} is {value}"
    return None


def diverged(run_dir: Optional[Path], epoch: int, reason: str, config: Mapping[str, Any],
             fp: Mapping[str, Any], history: List[Dict[str, Any]]) -> TrainingDiverged:
    """Record ``diverged.json`` (epoch, reason, config, history; strict JSON) in ``run_dir`` and return the
    error to raise.  The epoch's checkpoint is not written: the last one is the last finite state, so a
    rerun retries from there (on the CPU, bit-identically: it diverges again and says so)."""
    if run_dir is not None:
        save_json({"epoch": epoch, "reason": reason, "config": dict(config), "fingerprint": dict(fp),
                   "history": history}, RunDir(run_dir).diverged)
    return TrainingDiverged(epoch, reason, None if run_dir is None else str(run_dir))


def load_result(run_dir: Optional[Path]) -> Optional[Dict[str, Any]]:
    if run_dir is None or not RunDir(run_dir).result.is_file():
        return None
    return load_json(RunDir(run_dir).result, what="training result",
                     fix="delete it to finish the run again from its checkpoint")


def load_final(run_dir: Path, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
    path = RunDir(run_dir).final
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing although {RunDir(run_dir).result.name} is there; "
                                f"delete {run_dir} to rerun")
    return load_torch(path, what="final weights", fix=f"delete {run_dir} to rerun", map_location=device)


def rebuild(done: Mapping[str, Any]) -> nn.Module:
    """The untrained network a finished run's record names by its config (``config.model``)."""
    from pai.models import create_model

    m = done["meta"]
    return create_model(done["config"]["model"], num_classes=m["num_classes"], in_channels=m["in_channels"],
                        image_size=m["image_size"])


def load_finished(done: Dict[str, Any], run_dir: Path, model: Optional[nn.Module], device) -> TrainResult:
    """The finished run's result with ``final.pt`` loaded into ``model`` (built from the record if None);
    refused when the record names another network (:func:`check_network`)."""
    source = "given" if model is not None else "config"
    model = rebuild(done) if model is None else model
    check_network(RunDir(run_dir).result, done["meta"].get("network"), network_record(model, source),
                  done["config"]["model"])
    model.load_state_dict(load_final(run_dir))
    return TrainResult.from_dict(done, model=model.to(device))
