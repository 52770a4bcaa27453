"""Atomic writes: every artifact is written to a temp file in the same folder, then renamed.

A run killed half-way therefore leaves either the old file or the new one, never a torn one.  A
``kill -9`` can still leave its temp file behind: temp names carry the writer's host and pid
(``.<name>.<host>.<pid>.<random>.tmp``), so :func:`clean_stale_temps` (run when a run, a sweep or a
notebook starts, and by every write of the same file) removes the ones whose writer is dead without
touching those of a writer still at work.  That name is the mark of a temp file pai wrote; a temp
*folder* (a notebook's staging or work folder) is removed only when it also holds pai's
:data:`OWNED_MARKER` (:mod:`pai.utils.owned`), so nothing a user made is ever deleted by its name alone.

Bytes are a function of the content: ``torch.save`` is given a file object, so the zip's record names
are ``archive/...`` rather than the temp file's random name, and identical objects give identical files
(DVC hashes them alike).  JSON is strict: a non-finite float is written as ``null`` with a
``<key>_reason`` beside it (``"nan"``, ``"inf"``), never as the non-standard ``NaN``.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, List

from pai.utils.errors import UserError, WriteError
from pai.utils.faults import fault_point

def _host() -> str:
    return socket.gethostname().replace(".", "-") or "host"


def temp_prefix(name: str) -> str:
    """The prefix of this process's temp files for target ``name``."""
    return f".{name}.{_host()}.{os.getpid()}."


OWNED_MARKER = ".pai-owned"  # the file pai writes into every folder it made (pai.utils.owned)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^./]+)\.(?P<pid>\d+)\.[^./]+\.tmp$")


def is_temp_name(name: str) -> bool:
    """``name`` is a temp name pai gives (:func:`temp_prefix`): ``.<name>.<host>.<pid>.<tag>.tmp``."""
    return bool(_TEMP.match(name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """A temp file (or folder) of ours whose writer is dead: same host and no such pid, or (written on another
    machine of a cluster sharing the storage) a day old.  Temp files of an earlier naming without the
    writer's pid are left alone: their names do not say that pai wrote them."""
    m = _TEMP.match(path.name)
    now = time.time() if now is None else now
    try:
        age = now - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if m:
        if m["host"] == _host():
            return not _alive(int(m["pid"]))
        return age > 24 * 3600  # another machine's writer (shared storage): only when long dead
    return False


def clean_stale_temps(folder: str | os.PathLike, recursive: bool = False, name: str | None = None) -> List[Path]:
    """Remove the stale temp files and folders (:func:`is_stale_temp`) in ``folder`` (and below it
    with ``recursive``); ``name`` limits it to the temps of that target.  A folder goes only when it holds
    pai's :data:`OWNED_MARKER`.  Returns what was removed."""

    folder = Path(folder)
    removed: List[Path] = []
    if not folder.is_dir():
        return removed
    walk = os.walk(folder) if recursive else [(str(folder), [], [])]
    for base, _, _ in walk:
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for e in entries:
            if not e.name.endswith(".tmp") or (name is not None and not e.name.startswith(f".{name}.")):
                continue
            p = Path(e.path)
            is_dir = e.is_dir(follow_symlinks=False)
            if is_stale_temp(p) and (not is_dir or (p / OWNED_MARKER).is_file()):
                try:
                    shutil.rmtree(p) if is_dir else p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


# why a write failed, for the errno values that say it is the place, not the program
_WRITE_ERRNOS = {errno.ENOSPC: ("no space left on the device", "free space there or write elsewhere"),
                 errno.EDQUOT: ("the disk quota is exceeded", "free space there or write elsewhere"),
                 errno.EFBIG: ("the file is too large for the file system", "write elsewhere"),
                 errno.EROFS: ("the folder is on a read-only file system", "choose a writable folder"),
                 errno.EACCES: ("permission denied", "choose a writable folder"),
                 errno.EPERM: ("permission denied", "choose a writable folder"),
                 errno.ENAMETOOLONG: ("the name is too long for the file system", "choose a shorter name")}


def write_error(path: str | os.PathLike, e: BaseException):
    """The one-line :class:`pai.utils.errors.WriteError` for a failed write of ``path``, or None when ``e``
    is not about the place written (a bug then, left to propagate).  ``torch.save`` given a path
    reports a full disk as ``RuntimeError: [enforce fail at inline_container.cc ...] unexpected pos``."""

    if isinstance(e, WriteError):
        return e
    if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
        why, fix = _WRITE_ERRNOS[e.errno]
    elif isinstance(e, RuntimeError) and ("inline_container" in str(e) or "file write failed" in str(e)):
        why, fix = "the write stopped short (usually a full disk)", "free space there or write elsewhere"
    else:
        return None
    return WriteError(f"cannot write {path}: {why}; {fix}")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path`` (same filesystem, so atomic).

    A full disk, a read-only folder or a name too long for the file system is one
    :class:`pai.utils.errors.WriteError` naming ``path``; the temp file is removed and ``path`` is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(path.parent, name=path.name)  # what a killed earlier writer of this file left
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise (write_error(path, e) or e) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; artifacts should read like any other file
    try:
        write(tmp)
        fault_point("before_rename")
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        better = write_error(path, e) if isinstance(e, (OSError, RuntimeError)) else None
        if better is not None:
            raise better from None
        raise
    return path


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    import torch

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: the zip records are "archive/...", not the temp name
            torch.save(obj, f)

    return atomic_write(path, write)


def strict(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (and ``<key>_reason`` beside it in a
    mapping), tensors and numpy scalars made plain, tuples made lists: what strict JSON can hold."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            v = _plain(v)
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
                out.setdefault(f"{k}_reason", "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
            else:
                out[k] = strict(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    obj = _plain(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return strict(obj) if isinstance(obj, (dict, list)) else obj


def dumps(obj: Any, **kw) -> str:
    """Strict JSON text of ``obj`` (:func:`strict`; ``allow_nan=False``)."""
    return json.dumps(strict(obj), allow_nan=False, **kw)


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    text = dumps(obj, indent=2, sort_keys=True) + "\n"
    return save_text(text, path)


def save_text(text: str, path: str | os.PathLike) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    return atomic_write(path, write)


def _plain(x: Any) -> Any:
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist") and not isinstance(x, (list, tuple)):  # tensors, numpy arrays and scalars
        return x.tolist()
    if isinstance(x, (str, int, float, bool, type(None), dict, list, tuple)):
        return x
    raise TypeError(f"not JSON serialisable: {type(x)}")


def _short(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


def load_torch(path: str | os.PathLike, *, what: str = "file", fix: str = "write it again",
               map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)`` that turns a missing, empty, truncated or foreign file into one
    :class:`pai.utils.errors.UserError` naming ``what``, the path and the ``fix``.

    Always weights only: a pickle may call any function while it loads, and pai's files travel (shared
    storage, copied run folders, DVC caches), so a file is never trusted to run code; torch's restricted
    unpickler builds tensors, dicts, lists, tuples, numbers and strings only, and refuses the rest
    before running anything."""
    import pickle
    import zipfile

    import torch


    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist" + (" (it is a folder)" if path.is_dir() else "") + f"; {fix}")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty (0 bytes); {fix}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if found:  # a pickle that names a function or class: what code would run through
            raise UserError(f"{what} {path} asks for {found.group(1)}, which no file pai writes holds (a pickle "
                            f"can run code through it; refused, nothing of it ran); {fix}") from None
        raise UserError(f"{what} {path} is corrupt, truncated or not a file pai wrote "
                        f"({_weights_only_reason(e)}); {fix}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError,
            AttributeError, TypeError, IndexError) as e:
        raise UserError(f"{what} {path} is corrupt or truncated ({_short(e)}); {fix}") from e


def _weights_only_reason(e: BaseException) -> str:
    """The reason in torch's weights-only message, without its advice to load unsafely."""
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(e))
    return f"UnpicklingError: {found.group(1).strip()[:160]}" if found else _short(e)


def load_json(path: str | os.PathLike, *, what: str = "file", fix: str = "write it again") -> Any:
    """``json.load`` that turns a missing, empty or broken file into one :class:`pai.utils.errors.UserError`."""

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; {fix}")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:  # a binary file (a pickle, a zip) where JSON text belongs
        raise UserError(f"{what} {path} is not valid JSON (binary content, byte {e.start}); {fix}") from None
    if not text.strip():
        raise UserError(f"{what} {path} is empty; {fix}")
    try:
        return json.loads(text)
    except ValueError as e:
        raise UserError(f"{what} {path} is not valid JSON ({e}); {fix}") from e


def load_yaml(path: str | os.PathLike, *, what: str = "file", fix: str = "fix the file") -> Any:
    """``yaml.safe_load`` that turns a missing or broken file into one :class:`pai.utils.errors.UserError`
    naming the line."""
    import yaml


    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; {fix}")
    try:
        return yaml.safe_load(path.read_text())
    except UnicodeDecodeError as e:  # a binary file where YAML text belongs
        raise UserError(f"{what} {path} is not valid YAML (binary content, byte {e.start}); {fix}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or _short(e)
        raise UserError(f"{what} {path} is not valid YAML{where} ({problem}); {fix}") from e


def check_output(path: str | os.PathLike, *, kind: str = "file", what: str = "output") -> Path:
    """Raise :class:`UserError` unless ``path`` can be written as a ``kind`` ("file" or "dir").

    Probes by creating (and removing) a file where the output will go, creating missing parent folders
    as writing would; root passes ``os.access`` everywhere, so only a real write tells."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder; give a folder (it is created if missing)")
    folder = path if kind == "dir" else path.parent
    # a file is probed under the name of the temp file atomic_write will write it through (longer
    # than the target's), so a name too long for the file system is found now, not after the work
    prefix = ".pai-write-probe."
    if kind == "file":
        prefix = temp_prefix(path.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            extra = len(os.fsencode(prefix + "x" * 8 + ".tmp")) - len(os.fsencode(path.name))
            raise UserError(f"cannot write {what} {path}: its name is too long for the file system "
                            f"({len(os.fsencode(path.name))} bytes, and pai writes it through a temp file whose "
                            f"name is {extra} bytes longer); choose a shorter name") from None
        raise UserError(f"cannot write {what} {path} ({e.strerror or e}); choose a writable location") from None
    return path
