"""Parameter profiles: ``python -m pai.profiles use NAME`` (or ``make repro PROFILE=NAME``).

``params/<stage>.yaml`` are the live parameters DVC tracks; ``params/profiles/<profile>/<stage>.yaml``
are the named sets.  ``cpu`` (the committed default) is sized so the whole ``dvc repro`` finishes on a
2-core machine; ``paper`` runs the papers' settings on a GPU machine.  Switching copies the profile's
files over the live ones, so ``git diff params/`` shows exactly what changed and DVC re-runs only the
stages whose parameters moved.  A focused profile (``paper-<work>-<dataset>``) holds one stage's file:
``make repro PROFILE=...`` then runs that notebook alone (``python -m pai.profiles targets NAME``).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pai.utils.errors import UserError, cli

ROOT = Path(__file__).resolve().parents[2]


def profiles(root: Path = ROOT) -> list[str]:
    return sorted(p.name for p in (root / "params" / "profiles").iterdir() if p.is_dir())


def current(root: Path = ROOT) -> str | None:
    live = root / "params"
    for name in profiles(root):
        files = sorted((live / "profiles" / name).glob("*.yaml"))
        if files and all((live / f.name).exists() and (live / f.name).read_text() == f.read_text() for f in files):
            return name
    return None


def use(name: str, root: Path = ROOT) -> list[Path]:
    src = root / "params" / "profiles" / name
    if not src.is_dir():
        raise UserError(f"unknown profile {name!r}; valid: {', '.join(profiles(root))}")
    written = []
    for f in sorted(src.glob("*.yaml")):
        dst = root / "params" / f.name
        if not dst.exists() or dst.read_text() != f.read_text():
            shutil.copyfile(f, dst)
            written.append(dst)
    return written


def stages(name: str, root: Path = ROOT) -> list[str]:
    """The stages a profile sets (its ``<stage>.yaml`` files)."""
    src = root / "params" / "profiles" / name
    if not src.is_dir():
        raise UserError(f"unknown profile {name!r}; valid: {', '.join(profiles(root))}")
    return sorted(f.stem for f in src.glob("*.yaml"))


def repro_targets(name: str, root: Path = ROOT) -> list[str]:
    """``dvc repro`` arguments for a profile: none (the whole pipeline) for a profile of every stage; for a
    focused one (e.g. ``paper-rreg-cifar10``, one stage) only its notebook stages -- the other stages keep
    their own parameters, and the notebook prints its stage's claims itself."""
    every = sorted(p.stem for p in (root / "params").glob("*.yaml"))
    mine = stages(name, root)
    return [] if mine == every else ["--single-item", *(f"notebook@{s}" for s in mine)]


@cli("python -m pai.profiles")
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["targets"] and len(argv) == 2:
        print(" ".join(repro_targets(argv[1])))
        return 0
    if argv and argv[0] != "use" or argv[:1] == ["use"] and len(argv) != 2:
        raise UserError(f"usage: python -m pai.profiles use|targets {{{','.join(profiles())}}}; got {' '.join(argv)!r}")
    if len(argv) == 2 and argv[0] == "use":
        changed = use(argv[1])
        print(f"profile {argv[1]}: " + (", ".join(str(p.relative_to(ROOT)) for p in changed) or "already active"))
        return 0
    print(f"usage: python -m pai.profiles use {{{','.join(profiles())}}}   (current: {current()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
