"""Run a jupytext (py:percent) notebook with papermill: ``python -m pai.notebook SRC OUT [--params F]``.

The ``.py`` source is what lives in git and what DVC depends on; the executed ``.ipynb`` is an output.
Parameters come from a YAML file (every top-level key becomes a variable injected after the cell tagged
``parameters``) and ``-p key=value`` overrides.  The kernel is named explicitly (papermill would
otherwise trust the notebook's metadata, which breaks across machines): ``pai`` when that kernel is
installed (``make setup`` registers it inside .venv), else ``python3``.

Before the kernel starts, the parameters are checked against the notebook's parameters cell
(:func:`parameter_schema`, :func:`pai.compendium.params.check_params`): an unknown key, a value of the wrong type
or, for a stage's parameter file, a missing key is one line and exit 2.  The modules of the ``plugins``
list (a researcher's own pruners and models, :mod:`pai.compendium.plugins`) are imported first.  The kernel gets
``OMP_WAIT_POLICY=PASSIVE`` (:func:`pai.utils.threads.passive_wait`) unless the environment says otherwise.

Nothing is left half-written.  The executed notebook is written atomically.  The figures (the
notebook's ``fig_dir``) are written into a staging folder next to it (``.<fig_dir>.<host>.<pid>.staging
.tmp``, the value the executed notebook shows for ``fig_dir``) and swapped in only when the notebook
succeeds; a failed or killed run leaves the previous figures as they were, and the next start removes
its staging folder (and puts the previous figures back if a kill fell between the two renames of the
swap).

Only what pai made is replaced (:mod:`pai.utils.owned`).  The figure folder it swaps in carries a ``.pai-owned``
marker listing the files the notebook wrote; before the kernel starts, a ``fig_dir`` that exists without
that marker, that holds files it does not list, or that is the checkout root, ``$HOME``, the working
directory or a parent of the repository is refused in one line (exit 2), and so is an ``out_dir`` that is
such a location or whose ``runs`` folder is not pai's.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator

import yaml

from pai.utils.errors import Parser, UserError, check_distinct, cli
from pai.utils.io import check_output
from pai.utils.io import clean_stale_temps, is_stale_temp, load_yaml, temp_prefix
from pai.utils.owned import check_replaceable, check_root, is_owned, mark, protected
from pai.compendium.params import check_params
from pai.compendium.plugins import load as load_plugins
from pai.utils.threads import passive_wait


def default_kernel() -> str:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
        if "pai" in specs and Path(specs["pai"]).resolve().is_relative_to(Path(sys.prefix).resolve()):
            return "pai"
    except Exception:  # a broken jupyter install falls back to the default kernel name
        pass
    return "python3"


def parameter_schema(src: str | os.PathLike) -> Dict[str, Any]:
    """``{name: default}`` of the notebook's cell tagged ``parameters`` (literal assignments; a default
    that is not a literal is ``None``: any value)."""
    import jupytext

    nb = jupytext.read(src)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return {}
    schema: Dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                schema[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                schema[node.targets[0].id] = None
    return schema


PAI_KEY = "pai"  # the executed notebook's metadata entry saying pai wrote it


def check_overwritable_notebook(out: Path, src: Path) -> None:
    """Refuse an ``out`` pai may not write: the source itself, a name that is not ``.ipynb``, or an
    existing file that is not a notebook pai executed (pai overwrites only what it wrote)."""
    check_distinct(out, [src], what="executed notebook")
    if out.suffix != ".ipynb":
        raise UserError(f"executed notebook {out} must end in .ipynb (it is written as a Jupyter notebook)")
    if out.exists() and not _executed_by_pai(out):
        raise UserError(f"executed notebook {out} exists and is not a notebook pai executed; pai overwrites "
                        f"only its own outputs: move it away or choose another name")


def _executed_by_pai(path: Path) -> bool:
    """True for a notebook pai executed: its metadata says so, or (written before that entry existed)
    papermill's record names the input pai stages in its run folder (``...run.tmp/in.ipynb``)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False
    if not isinstance(meta, dict):
        return False
    if isinstance(meta.get(PAI_KEY), dict):
        return True
    record = meta.get("papermill")
    input_path = record.get("input_path") if isinstance(record, dict) else None
    return isinstance(input_path, str) and input_path.replace("\\", "/").endswith("run.tmp/in.ipynb")


def run_notebook(src: str | os.PathLike, out: str | os.PathLike, parameters: Dict[str, Any] | None = None,
                 *, kernel: str | None = None, cwd: str | os.PathLike | None = None, log_output: bool = True,
                 timeout: int | None = None, complete: bool = False) -> Path:
    """Execute ``src`` into ``out`` with ``parameters`` (checked first; ``complete``: they are a stage's
    whole parameter set, so a missing key is an error too); figures are swapped in on success.

    Long on purpose: the steps of one run read in order -- check the parameters and the folders pai may
    replace, stage the figures, execute with the inline backend, strip jupytext's pairing, swap in."""
    import jupytext
    import nbformat
    import papermill as pm

    src, out = Path(src), Path(out)
    if not src.is_file():
        raise UserError(f"notebook {src} does not exist")
    check_overwritable_notebook(out, src)
    schema = parameter_schema(src)
    # the user's own pruners and models first (the kernel imports them again): a method a plugin registers
    # is a valid name, and a plugin that does not import fails here, in one line, before the kernel starts
    load_plugins((parameters or {}).get("plugins") or [], where=f"parameters of {src.name}: plugins")
    params = check_params(dict(parameters or {}), schema, complete=complete, where=f"parameters of {src.name}")
    base = Path(cwd or Path.cwd())
    fig_dir = params.get("fig_dir", schema.get("fig_dir"))
    final = None if fig_dir is None else Path(os.path.abspath(base / fig_dir))
    if final is not None:
        check_replaceable(final, what="fig_dir", fix="give a fig_dir of its own (-p fig_dir=...)")
    out_dir = params.get("out_dir", schema.get("out_dir"))
    if isinstance(out_dir, str):
        reason = protected(base / out_dir)
        if reason:
            raise UserError(f"out_dir {out_dir!r} is {reason}; give the stage a folder of its own (-p out_dir=...)")
        check_root(base / out_dir / "runs", what="runs folder",
                   fix="give the stage an out_dir of its own (-p out_dir=...)")
    staging = None if final is None else final.with_name(temp_prefix(final.name) + "staging.tmp")
    if final is not None:
        recover_figures(final)
        params["fig_dir"] = str(Path(fig_dir).with_name(staging.name))
    nb = jupytext.read(src)
    # the executed .ipynb is an output, not the .py's pair: with the source's "formats: py:percent" kept,
    # JupyterLab's jupytext refuses to open it ("Unable to read paired notebook")
    nb.metadata.pop("jupytext", None)
    nb.metadata[PAI_KEY] = {"source": src.name}  # what lets a later run overwrite this output
    nb.metadata["kernelspec"] = {"name": kernel or default_kernel(), "display_name": "Python (pai)",
                                 "language": "python"}
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out.parent)  # run folders a killed earlier run left
    work = out.parent / (temp_prefix(out.name) + "run.tmp")
    passive_wait()  # the kernel inherits this environment
    # both temp folders are removed below only when this call made them: a name that already exists
    # (this pid's leftover, or anyone's folder) fails mkdir and is left as it is
    work.mkdir()
    made_staging = False
    try:
        mark(work)  # a kill leaves it behind: the marker lets the next start remove it
        if staging is not None:
            staging.mkdir(parents=True)
            made_staging = True
            mark(staging)
        nb_in, nb_out = work / "in.ipynb", work / out.name
        nbformat.write(nb, nb_in)
        try:
            with inline_figures():
                pm.execute_notebook(str(nb_in), str(nb_out), parameters=params, kernel_name=kernel or default_kernel(),
                                    log_output=log_output, progress_bar=False, cwd=str(base),
                                    execution_timeout=timeout)
        finally:
            if nb_out.exists():  # a failed run still leaves its notebook (with the error) to inspect
                os.replace(nb_out, out)
        if staging is not None:
            swap_in(staging, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made_staging and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # failed: the previous figures stay
    return out


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@contextmanager
def inline_figures() -> Iterator[None]:
    """The kernel draws figures into the notebook: ``MPLBACKEND`` is the inline backend while it starts
    (ipykernel sets it only where unset, so an inherited ``MPLBACKEND=Agg`` would leave the executed
    notebook without images); the previous value is restored afterwards."""
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old


def swap_in(staging: Path, final: Path) -> None:
    """Replace folder ``final`` by ``staging`` with two renames (the old folder is removed last).  The
    staging folder's marker is rewritten to list every file the notebook wrote; ``final`` is checked again
    (:func:`pai.utils.owned.check_replaceable`: a file put there during the run is not deleted)."""
    mark(staging)
    check_replaceable(final, what="fig_dir", fix="the new figures were not swapped in; run the stage again")
    old = final.with_name(temp_prefix(final.name) + "old.tmp")
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def recover_figures(final: Path) -> None:
    """Undo what a killed run left next to ``final``: a previous folder moved aside but not yet replaced
    is put back; stale staging folders are removed."""
    if final.parent.is_dir():
        for p in final.parent.glob(f".{final.name}.*.old.tmp"):
            if is_stale_temp(p):
                if not final.exists():
                    os.rename(p, final)
                elif is_owned(p):
                    shutil.rmtree(p, ignore_errors=True)
        clean_stale_temps(final.parent, name=final.name)


def load_params(path: str | os.PathLike | None, overrides: list[str] = ()) -> Dict[str, Any]:
    params: Dict[str, Any] = {}
    if path:
        loaded = load_yaml(path, what="params file")
        if loaded is not None and not isinstance(loaded, dict):
            raise UserError(f"params file {path} must hold a mapping of parameter names to values, "
                            f"got {type(loaded).__name__}")
        params.update(loaded or {})
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"-p expects KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise UserError(f"-p {item}: the value is not valid YAML ({getattr(e, 'problem', e)})") from None
    return params


@cli("python -m pai.notebook")
def main(argv=None) -> int:
    ap: argparse.ArgumentParser = Parser(prog="python -m pai.notebook", description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--params", default=None, help="the stage's YAML parameter file (every key checked)")
    ap.add_argument("-p", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--kernel", default=None)
    args = ap.parse_args(argv)
    check_output(args.out, what="executed notebook")
    params = load_params(args.params, args.p)
    start = time.perf_counter()
    try:
        run_notebook(args.src, args.out, params, kernel=args.kernel, complete=args.params is not None)
    except Exception as e:
        if type(e).__name__ != "PapermillExecutionError":
            raise
        print(f"python -m pai.notebook: error: {args.src} failed in cell {e.exec_count}: {e.ename}: {e.evalue}; "
              f"previous figures kept; the executed notebook with the traceback: {args.out}", file=sys.stderr)
        return 1
    # one line per stage, so a `dvc repro` log shows where its time went
    print(f"{Path(args.src).stem}: finished in {_minutes(time.perf_counter() - start)} (wall)", file=sys.stderr)
    return 0


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


if __name__ == "__main__":
    sys.exit(main())
