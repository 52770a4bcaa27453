"""What pai may delete or replace: only folders it made, marked by a ``.pai-owned`` file inside them.

pai replaces a figure folder as a whole (:mod:`pai.compendium.notebook`), removes its own staging and work folders
and the temp files of killed writers (:func:`pai.utils.io.clean_stale_temps`), and writes run directories into a
sweep's root (:mod:`pai.compendium.runs`).  Each such folder carries :data:`MARKER`, written by pai when it made the
folder; a figure folder's marker also lists every file pai wrote into it.  The marker lives inside the
folder, so a folder DVC restores from its cache keeps it.  Before any work pai refuses, in one line:

- a location no tool should replace: the file system root, ``$HOME``, the working directory, the
  checkout (repository) root, or a folder that holds one of these;
- a symbolic link, or a file where a folder belongs;
- an existing folder without the marker, or one holding files the marker does not list (files a user
  put there).

:func:`check_replaceable` is the check of a folder pai swaps out whole; :func:`claim_root` the check of a
folder pai writes run directories into (an unmarked one is adopted only when all it holds is run
directories, so a runs folder of an earlier pai version keeps working).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, List, Optional, Set

from pai.utils.errors import UserError
from pai.utils.io import OWNED_MARKER as MARKER, is_temp_name, save_text

_HEADER = ("# written by pai: this folder was made by pai, which may replace or clean it.\n"
           "# The files pai wrote into it, one per line (a file not listed is someone else's: pai then refuses\n"
           "# to replace the folder).\n")
_RUN_ID = re.compile(r"^[0-9a-f]{16}$")


def marker(folder: str | os.PathLike) -> Path:
    return Path(folder) / MARKER


def is_owned(folder: str | os.PathLike) -> bool:
    return marker(folder).is_file()


def files_below(folder: str | os.PathLike) -> List[str]:
    """Every file below ``folder`` (relative POSIX paths, sorted), the marker left out."""
    folder = Path(folder)
    out = []
    for base, _, names in os.walk(folder):
        for name in names:
            rel = (Path(base) / name).relative_to(folder).as_posix()
            if rel != MARKER:
                out.append(rel)
    return sorted(out)


def mark(folder: str | os.PathLike, files: Optional[Iterable[str]] = None) -> Path:
    """Write the marker into ``folder`` (made if missing), listing ``files`` (default: every file below it,
    which pai has just written)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    listed = files_below(folder) if files is None else sorted(files)
    return save_text(_HEADER + "".join(f"{f}\n" for f in listed), marker(folder))


def listed_files(folder: str | os.PathLike) -> Optional[Set[str]]:
    """The files the marker of ``folder`` lists (None: no marker)."""
    path = marker(folder)
    if not path.is_file():
        return None
    return {ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")}


def _checkout_roots() -> List[Path]:
    """The repository holding this package and the one holding the working directory (a folder with
    ``.git``, ``dvc.yaml`` or ``pyproject.toml``, nearest first)."""
    roots = []
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for p in (start, *start.parents):
            if any((p / name).exists() for name in (".git", "dvc.yaml", "pyproject.toml")):
                roots.append(p)
                break
    return roots


def protected(path: str | os.PathLike) -> Optional[str]:
    """Why ``path`` is a location pai never replaces or cleans (None: it is not one)."""
    p = Path(os.path.abspath(path))
    try:
        p = p.resolve()
    except OSError:
        pass
    home, cwd = Path.home().resolve(), Path.cwd().resolve()
    if p == Path(p.anchor):
        return "the file system root"
    if p == home:
        return "your home folder ($HOME)"
    if p == cwd:
        return "the working directory"
    for root in _checkout_roots():
        if p == root:
            return "the checkout root"
        if p in root.parents:
            return f"a parent of the repository {root}"
    if p in cwd.parents:
        return "a parent of the working directory"
    if p in home.parents:
        return "a parent of your home folder"
    return None


def check_replaceable(folder: str | os.PathLike, what: str = "folder", fix: str = "give another folder") -> Path:
    """Raise :class:`UserError` unless pai may replace ``folder`` as a whole: it does not exist yet, or it is
    a folder pai made (marker) holding only files pai wrote, and it is no :func:`protected` location."""
    folder = Path(folder)
    reason = protected(folder)
    if reason:
        raise UserError(f"{what} {folder} is {reason}; pai replaces only folders it made: {fix}")
    if folder.is_symlink():
        raise UserError(f"{what} {folder} is a symbolic link; pai replaces only folders it made: {fix}")
    if not folder.exists():
        return folder
    if not folder.is_dir():
        raise UserError(f"{what} {folder} is a file, not a folder; {fix}")
    listed = listed_files(folder)
    if listed is None:
        raise UserError(f"{what} {folder} exists and was not made by pai (no {MARKER} marker in it); pai "
                        f"replaces only folders it made: move it away or {fix}")
    foreign = [f for f in files_below(folder) if f not in listed]
    if foreign:
        raise UserError(f"{what} {folder} holds files pai did not write ({_some(foreign)}); pai "
                        f"would delete them when it replaces the folder: move them out or {fix}")
    return folder


def _some(names) -> str:
    """The first three names, and how many more."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_root(folder: str | os.PathLike, what: str = "runs folder", fix: str = "give another folder") -> Path:
    """Raise :class:`UserError` unless pai may write run directories into ``folder`` and clean what its killed
    writers left there: it does not exist yet, or carries the marker, or holds nothing but run directories
    (an earlier pai made it); never a :func:`protected` location.  Changes nothing."""
    folder = Path(folder)
    reason = protected(folder)
    if reason:
        raise UserError(f"{what} {folder} is {reason}; pai writes run directories only into a folder of its "
                        f"own: {fix}")
    if folder.is_symlink() and not folder.is_dir():
        raise UserError(f"{what} {folder} is a broken symbolic link; {fix}")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} {folder} is a file, not a folder; {fix}")
    if folder.is_dir() and not is_owned(folder):
        foreign = sorted(e.name for e in os.scandir(folder)
                         if not ((_RUN_ID.match(e.name) and e.is_dir(follow_symlinks=False)) or is_temp_name(e.name)))
        if foreign:
            raise UserError(f"{what} {folder} was not made by pai (no {MARKER} marker) and holds files that are "
                            f"not run directories ({_some(foreign)}); {fix}")
    return folder


def claim_root(folder: str | os.PathLike, what: str = "runs folder", fix: str = "give another folder") -> Path:
    """:func:`check_root`, then the folder is made (when missing) and marked."""
    folder = check_root(folder, what, fix)
    if not is_owned(folder):
        folder.mkdir(parents=True, exist_ok=True)
        save_text(_HEADER + "# a folder of run directories (each named by its run id)\n", marker(folder))
    return folder
