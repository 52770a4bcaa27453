"""Run a jupytext (py:percent) notebook with papermill: ``python -m pai.notebook SRC OUT [--params F]``.

The ``.py`` source is what lives in git and what DVC depends on; the executed ``.ipynb`` is an output.
Parameters come from a YAML file (every top-level key becomes a variable injected after the cell tagged
``parameters``) and ``-p key=value`` overrides.  The kernel is named explicitly (papermill would
otherwise trust the notebook's metadata, which breaks across machines): ``pai`` when that kernel is
installed (``make setup`` registers it inside .venv), else ``python3``.  The executed notebook is
written atomically, so an interrupted stage never leaves a half-written one.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

import yaml


def default_kernel() -> str:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
        if "pai" in specs and Path(specs["pai"]).resolve().is_relative_to(Path(sys.prefix).resolve()):
            return "pai"
    except Exception:  # a broken jupyter install falls back to the default kernel name
        pass
    return "python3"


def run_notebook(src: str | os.PathLike, out: str | os.PathLike, parameters: Dict[str, Any] | None = None,
                 *, kernel: str | None = None, cwd: str | os.PathLike | None = None, log_output: bool = True,
                 timeout: int | None = None) -> Path:
    import jupytext
    import nbformat
    import papermill as pm

    src, out = Path(src), Path(out)
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": kernel or default_kernel(), "display_name": "Python (pai)",
                                 "language": "python"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        nb_in, nb_out = Path(tmp) / "in.ipynb", Path(tmp) / out.name
        nbformat.write(nb, nb_in)
        try:
            pm.execute_notebook(str(nb_in), str(nb_out), parameters=dict(parameters or {}),
                                kernel_name=kernel or default_kernel(), log_output=log_output,
                                progress_bar=False, cwd=str(cwd or Path.cwd()), execution_timeout=timeout)
        finally:
            if nb_out.exists():  # a failed run still leaves its notebook (with the error) to inspect
                os.replace(nb_out, out)
    return out


def load_params(path: str | os.PathLike | None, overrides: list[str] = ()) -> Dict[str, Any]:
    params: Dict[str, Any] = {}
    if path:
        with open(path) as f:
            params.update(yaml.safe_load(f) or {})
    for item in overrides:
        key, _, value = item.partition("=")
        params[key] = yaml.safe_load(value)
    return params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pai.notebook", description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--params", default=None)
    ap.add_argument("-p", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--kernel", default=None)
    args = ap.parse_args(argv)
    run_notebook(args.src, args.out, load_params(args.params, args.p), kernel=args.kernel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
