"""Progress of long work, one rule for all of pai (:func:`progress_reporter`): ``progress=False`` shows
nothing; ``True``, or ``None`` on a terminal, a tqdm bar; ``None`` elsewhere (DVC, papermill, a log file)
plain lines, at most one per ``interval`` seconds plus the last.  Sweeps print a line per finished run,
so a long ``dvc repro`` never sits in silence; inner loops (training steps, PAGS candidates, JPEG
decoding) a line every half minute at most.

Under DVC and papermill nothing is a terminal, so a tqdm bar (which redraws one line) would be off;
:class:`Progress` prints a plain line instead, ``runs 12/40 | elapsed 3m05s | about 7m12s left``, which
papermill's log and the executed notebook both keep.  The estimate is the mean time per run that did
work so far times the runs left: a run that returns at once (its result was cached) is not counted as
work, so a resumed sweep does not promise to finish in seconds.  Executors pass each item's own run time
(measured where it ran); without it, a run finishing right after the previous one is taken as cached,
which two parallel workers finishing together would fool.  :func:`progress_reporter` picks the
tqdm bar on a terminal and the lines elsewhere.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """``update()`` once per finished run prints ``<desc> k/N | elapsed | about T left``.

    ``instant``: a run that took less than this many seconds (``update(seconds=...)``, or, when its time
    is not given, that finished within this long of the previous event) is taken as a cache hit and left
    out of the time-per-run estimate (a real run of a sweep takes far longer)."""

    takes_seconds = True  # update(seconds=...) from the executors

    def __init__(self, total: int, desc: str = "runs", *, stream: Optional[TextIO] = None, instant: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, interval: float = 0.0, initial: int = 0):
        self.total, self.desc, self.instant, self.clock = int(total), desc, instant, clock
        self.stream, self.interval = stream, interval
        self.done, self.cached = int(initial), 0
        self.start = self.last = self.printed = clock()
        self.work_seconds = 0.0
        self.postfix = ""

    def line(self) -> str:
        now = self.clock()
        worked = self.done - self.cached
        left = self.total - self.done
        if left == 0:
            eta = "done"
        elif worked:
            eta = f"about {_clock(self.work_seconds / worked * left)} left"
        else:
            eta = "time left unknown yet"
        cached = f" ({self.cached} cached)" if self.cached else ""
        return f"{self.desc} {self.done}/{self.total}{cached} | elapsed {_clock(now - self.start)} | {eta}{self.postfix}"

    def set_postfix(self, **values) -> None:
        """Values shown after the line (tqdm's counterpart), e.g. the last epoch's loss."""
        self.postfix = "".join(f" | {k} {v}" for k, v in values.items())

    def update(self, n: int = 1, *, seconds: Optional[float] = None) -> None:
        now = self.clock()
        gap = now - self.last
        cached = (seconds if seconds is not None else gap) < self.instant
        self.done += n
        if cached:
            self.cached += n
        else:
            self.work_seconds += gap
        self.last = now
        if now - self.printed >= self.interval or self.done >= self.total:
            self.printed = now
            print(self.line(), file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        """Nothing to tear down (a tqdm bar's counterpart)."""


class _Silent:
    takes_seconds = True

    def update(self, n: int = 1, *, seconds: Optional[float] = None) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass


def progress_reporter(total: int, progress: bool | None, desc: str = "runs", *, unit: str = "run",
                      interval: float = 0.0, initial: int = 0, leave: bool = True):
    """The one rule: ``progress=False`` nothing; ``True``, or ``None`` when stderr is a terminal, a tqdm bar;
    ``None`` elsewhere :class:`Progress` lines, at most one per ``interval`` seconds plus the last.  Each has
    ``update()``, ``set_postfix()`` and ``close()``."""
    if progress is False:
        return _Silent()
    if progress or sys.stderr.isatty():
        from tqdm import tqdm  # plain bars: notebook widgets need ipywidgets

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave, dynamic_ncols=True)
    # a sweep's run that returns at once was cached; a step or an image is simply fast
    return Progress(total, desc, interval=interval, initial=initial, instant=0.2 if unit == "run" else 0.0)
