"""``RunDir``: the one map of a run directory, naming every file a run writes (open_lth's ``paths.py``).

A run directory is ``<root>/<run id>/`` (:func:`pai.compendium.runs.run_dir`); the trainer, the regimes and
the notebooks' readers all reach its files through this class, so a file name is written once::

    <run id>/
      spec.json        the spec, written first                 (pai.compendium.runs)
      mask.pt          the pruned mask and its meta            (pai.compendium.runs; lth: the ticket's mask)
      init_state.pt    weights the mask was chosen on (PEGS: theta_T), trained from
      checkpoint.pt    the trainer's state after every epoch   (pai.train.checkpoint; removed once the run is finished)
      final.pt         the trained state_dict
      result.json      the trainer's result: "training finished"
      diverged.json    the trainer's note that the loss became non-finite (epoch, reason); never "finished"
      dst_state.pt     DST state at the last two epoch ends    (pai.train.dst.train_dst; removed once finished)
      dst.json         DST record (trajectory, ITOP rate, moving distance)
      metrics.json     graph/path metrics of the mask at initialisation
      run.json         the run's record, written last: "this run is finished"
      lth/             lottery-ticket rounds                   (pai.train.lth.lottery_ticket)
        rewind.pt  lth.json  round_00/ round_01/ ...  (each a trainer directory with its mask.pt)

Only names live here (no I/O beyond ``exists``): writing stays atomic through :mod:`pai.utils.io`.
:data:`RESUME_ONLY` names the files only an interrupted run needs (the optimizer state, the DST state):
:func:`pai.compendium.runs.run_one` removes them, in the run's folder and its lottery-ticket rounds, once the run is
finished, so a stored run keeps what a reader needs (mask, weights, records) and not what resuming needs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RESUME_ONLY = ("checkpoint.pt", "dst_state.pt")  # needed only to resume an interrupted run


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    def __fspath__(self) -> str:
        return str(self.path)

    # ---- a sweep's run (pai.compendium.runs)
    @property
    def spec(self) -> Path:
        return self.path / "spec.json"

    @property
    def mask(self) -> Path:
        return self.path / "mask.pt"

    @property
    def init_state(self) -> Path:
        return self.path / "init_state.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def record(self) -> Path:
        return self.path / "run.json"

    def is_done(self) -> bool:
        """``run.json`` exists: the run finished and is a cache hit."""
        return self.record.is_file()

    # ---- the trainer's files (pai.train.checkpoint, pai.train)
    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def final(self) -> Path:
        return self.path / "final.pt"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def diverged(self) -> Path:
        return self.path / "diverged.json"

    # ---- dynamic sparse training (pai.train.dst.train_dst)
    @property
    def dst_state(self) -> Path:
        return self.path / "dst_state.pt"

    @property
    def dst_record(self) -> Path:
        return self.path / "dst.json"

    # ---- lottery tickets (pai.train.lth.lottery_ticket runs in ``RunDir(run.lth)``)
    @property
    def lth(self) -> Path:
        return self.path / "lth"

    @property
    def rewind(self) -> Path:
        return self.path / "rewind.pt"

    @property
    def lth_summary(self) -> Path:
        return self.path / "lth.json"

    def round(self, r: int) -> "RunDir":
        """The trainer directory of IMP round ``r`` (``round_00`` trains the starting mask)."""
        return RunDir(self.path / f"round_{r:02d}")
