"""The one error path of every command line: bad input is one line and exit 2, before any work.

- :class:`UserError` (a ``ValueError``): something the user gave is wrong -- a file, a value, a path.
  Its message names the file or value and the fix.  Loaders raise it for files that are corrupt,
  truncated or empty (``pai.masks.load_mask``, ``pai.train.checkpoint``, ``pai.data``, params and specs).
- :class:`WriteError` (a ``UserError`` and an ``OSError``): a file could not be written for a reason of
  its place -- a full disk, a read-only folder, a name too long for the file system
  (``pai.utils.io.atomic_write`` raises it naming the file and the fix).
- :class:`TrainingDiverged`: the training loss became non-finite; the run is stopped and marked, never
  recorded as finished (``pai.train``, ``pai.compendium.runs``).
- :func:`cli` wraps a ``main(argv) -> int``: a ``UserError`` (or another input error: ``ValueError``,
  ``KeyError``, a missing or unwritable file) prints ``<prog>: error: <message>`` and returns 2; a
  diverged run returns 3; anything else is a bug and prints one line saying so, returning 1.  With
  ``--debug`` anywhere on the command line (or ``PAI_DEBUG=1``) the exception propagates with its
  traceback.  :class:`Parser` is an ``argparse.ArgumentParser`` whose errors take the same path.
- :func:`check_output` and :func:`check_distinct`: an output path is checked for writability, and
  against the inputs, before any work starts.

This module imports nothing heavy (no torch), so every entry point can use it first.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Callable, Iterable, Optional, Sequence

EXIT_USAGE = 2  # bad input (argparse's convention)
EXIT_DIVERGED = 3  # a run diverged: the command ran, its result is not usable
EXIT_BUG = 1


class UserError(ValueError):
    """Bad input: the message names the file or value and says how to fix it."""


class WriteError(UserError, OSError):
    """A file could not be written for a reason of its place (disk full, read-only folder, name too long
    for the file system, no permission); the message names the file and the fix.  An ``OSError`` too,
    so a writer with a fallback location still catches it."""


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite at ``epoch`` (1-based); ``reason`` says what was seen."""

    def __init__(self, epoch: int, reason: str, run_dir: Optional[str] = None):
        self.epoch, self.reason, self.run_dir = int(epoch), reason, run_dir
        where = f" ({run_dir})" if run_dir else ""
        super().__init__(f"training diverged at epoch {epoch}: {reason}{where}; lower the learning rate "
                         f"(a rerun of the same config retries from the last finite checkpoint)")


INPUT_ERRORS = (ValueError, KeyError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                PermissionError, FileExistsError)


def message_of(e: BaseException) -> str:
    """The text of an exception; a ``KeyError``'s without the quotes ``str`` adds."""
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e) or type(e).__name__


def debug_requested(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("PAI_DEBUG", "") not in ("", "0")


def cli(prog: str) -> Callable:
    """Decorator of a command's ``main(argv=None) -> int``: the one error path (see the module doc)."""

    def deco(main: Callable[[list], int]) -> Callable:
        @functools.wraps(main)
        def wrapped(argv: Optional[Sequence[str]] = None) -> int:
            argv = list(sys.argv[1:] if argv is None else argv)
            debug = debug_requested(argv)
            argv = [a for a in argv if a != "--debug"]
            if debug:
                return int(main(argv) or 0)
            try:
                return int(main(argv) or 0)
            except SystemExit as e:  # --help, or a command's own early exit
                return int(e.code or 0) if isinstance(e.code, int) or e.code is None else _fail(prog, str(e.code))
            except TrainingDiverged as e:
                print(f"{prog}: {e}", file=sys.stderr)
                return EXIT_DIVERGED
            except KeyboardInterrupt:
                print(f"{prog}: interrupted (finished work is kept; run the command again to resume)",
                      file=sys.stderr)
                return 130
            except INPUT_ERRORS as e:
                return _fail(prog, message_of(e))
            except Exception as e:  # a bug, not an input error: still one line, the traceback under --debug
                print(f"{prog}: internal error: {type(e).__name__}: {message_of(e)} "
                      f"(rerun with --debug for the traceback)", file=sys.stderr)
                return EXIT_BUG

        wrapped.prog = prog
        return wrapped

    return deco


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors raise :class:`UserError` (one line, exit 2 through
    :func:`cli`) instead of printing the usage and exiting."""

    def error(self, message: str):  # noqa: D401 (argparse's hook)
        raise UserError(f"{message} (--help lists the options)")


def check_distinct(output: str | os.PathLike | None, inputs: Iterable[str | os.PathLike | None],
                   what: str = "output") -> None:
    """Refuse an output that is one of the inputs (it would overwrite what is being read)."""
    if output is None:
        return
    out = os.path.realpath(output)
    for src in inputs:
        if src is not None and os.path.realpath(src) == out:
            raise UserError(f"{what} {output} is also an input; writing it would destroy {src}. "
                            f"Give another output file")
