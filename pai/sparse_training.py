"""Sparse-training regimes run through :func:`pai.train.train`: dynamic sparse training (DST).

:func:`train_dst` wires a :class:`pai.dst.DynamicSparsity` callback (SET / ITOP-Rand / RigL,
Liu et al., ICML 2021; see :mod:`pai.dst` for the algorithm, its deviations from the official code
and our reading of the NeurIPS'23 "l2-moving distance") into one training run, and keeps its state
next to the trainer's checkpoint so that an interrupted run resumes to the same masks: the
trainer saves ``checkpoint.pt`` at every epoch end *after* the callbacks ran, so the DST state is
kept for the last two epoch ends and the one at the checkpoint's step is taken on resume.
``dst.json`` (the :meth:`~pai.dst.DynamicSparsity.result` record) follows the trainer's
``result.json``; a finished run whose ``dst.json`` is missing (killed in between) gets it rebuilt
from the last DST state and the final weights.  Lottery-ticket rewinding lives in :mod:`pai.lth`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .dst import DynamicSparsity
from .io import save_json, save_torch
from .masks import Mask

DST_STATE, DST_RESULT = "dst_state.pt", "dst.json"


def build_model(cfg, data) -> torch.nn.Module:
    """The model ``pai.train.train`` builds for ``cfg`` (same seeding, hence the same weights)."""
    from .models import create_model
    from .seed import seed_everything

    seed_everything(cfg.seed)
    return create_model(cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                        image_size=data.image_size)


def train_dst(config, *, mask: Mask, model=None, data=None, run_dir=None, progress=None, init_state=None,
              callbacks=None, **dst_options):
    """``pai.train.train`` with a :class:`DynamicSparsity` callback (options as keywords; ``seed``
    defaults to the config's).  Its :meth:`~DynamicSparsity.result` goes to ``result.meta["dst"]``
    and, with ``run_dir``, to ``run_dir/dst.json``; the DST state is saved at every epoch end next
    to the trainer's checkpoint, so an interrupted run resumes to the same masks.
    """
    from .data import load_dataset
    from .train import train

    cfg = config if isinstance(config, ckpt.TrainConfig) else ckpt.TrainConfig.from_dict(dict(config))
    if data is None:
        data = load_dataset(cfg.dataset, root=cfg.data_root, train_subset=cfg.train_subset,
                            test_subset=cfg.test_subset, image_size=cfg.image_size, seed=cfg.seed)
    start = build_model(cfg, data) if model is None else model
    if init_state is not None:
        start.load_state_dict(init_state)
    dst = DynamicSparsity(mask, **{"seed": cfg.seed, **dst_options})
    dst.begin(start, total_steps=cfg.epochs * math.ceil(len(data.y_train) / cfg.batch_size))
    run_dir = Path(run_dir) if run_dir is not None else None
    finished = ckpt.load_result(run_dir) is not None
    states = (torch.load(run_dir / DST_STATE, map_location="cpu", weights_only=False)
              if run_dir is not None and (run_dir / DST_STATE).is_file() else {})
    if finished and (run_dir / DST_RESULT).is_file():
        record = json.loads((run_dir / DST_RESULT).read_text())
        if record["options"] != json.loads(json.dumps(dst.options)):
            raise ValueError(f"{run_dir} was trained with DST options {record['options']}, not {dst.options}")
    elif finished and not states:
        raise ValueError(f"{run_dir} holds a finished run that was not trained with DST; use another run_dir")
    found = None if finished else ckpt.load_checkpoint(run_dir)
    if found is not None:  # resuming: the DST state saved at the checkpoint's step
        if found["step"] not in states:
            raise ValueError(f"{run_dir} has a checkpoint at step {found['step']} but no DST state for it")
        dst.load_state_dict(states[found["step"]])

    def save_state(event, state):
        if event == "epoch_end" and run_dir is not None:
            states[state.step] = dst.state_dict()
            for old in sorted(states)[:-2]:  # the trainer's checkpoint is at one of the last two
                del states[old]
            save_torch(states, run_dir / DST_STATE)

    result = train(cfg, mask=mask, model=model, data=data, run_dir=run_dir, progress=progress,
                   init_state=init_state, callbacks=[dst, save_state, *(callbacks or ())])
    if not (finished and (run_dir / DST_RESULT).is_file()):
        if dst.final is None:  # finished before this call (or resumed at its very end)
            if finished:
                dst.load_state_dict(states[max(states)])
            dst.finish(result.model)
        record = json.loads(json.dumps(dst.result()))  # the same plain types as a reloaded record
        if run_dir is not None:
            save_json(record, run_dir / DST_RESULT)
    result.meta["dst"] = record
    return result
