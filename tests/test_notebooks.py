"""Each stage notebook runs end to end on a tiny parameterization, and writes what it promises.

The parameters are the stage's own ``params/<stage>.yaml`` with a few keys shrunk (digits or a small
Fashion-MNIST subset, one epoch, one seed), so this exercises the same parameter path DVC uses.
"""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from pai.notebook import run_notebook

ROOT = Path(__file__).resolve().parents[1]
STAGES = {
    "expander_sweep": "01_expander_sweep.py",
    "full_spectrum": "02_full_spectrum.py",
    "phew_path_kernel": "03_phew_path_kernel.py",
    "node_path_balance": "04_node_path_balance.py",
}
TINY = {"train_subset": 512, "test_subset": 256, "seeds": [0], "workers": 1, "batch_size": 64}
TINY_BY_STAGE = {
    "expander_sweep": {"densities": {"lenet-300-100": [0.05], "vgg11-w0.25": [0.05]},
                       "spectral_density": {"lenet-300-100": 0.05, "vgg11-w0.25": 0.05},
                       "epochs": {"lenet-300-100": 1, "vgg11-w0.25": 1}, "eval_every": 1, "stem_check": None,
                       "train_subset": {"lenet-300-100": 512, "vgg11-w0.25": 512}},
    "full_spectrum": {"population_methods": ["random", "snip"], "population_densities": [0.2, 0.05], "epochs": 1,
                      "eval_every": 1, "pags_generators": ["random-erk"], "pags_candidates": 3,
                      "pegs_iterations": [5], "pags_density": 0.05, "itop_densities": [0.2, 0.05],
                      "itop_update_interval": 4, "lth_rate": 0.6},
    "phew_path_kernel": {"models": ["lenet-300-100"], "methods": ["phew", "synflow", "snip (train mode)", "random"],
                         "densities": [0.2, 0.05], "variant_densities": [0.05], "geometry_densities": [0.2, 0.05],
                         "epochs": 2, "eval_every": 2, "focus_density": 0.05, "curve_epochs": 2},
    "node_path_balance": {"methods": ["random-erk", "npb"], "densities": [0.2, 0.05],
                          "variant_methods": ["npb (paper normaliser)"], "variant_densities": [0.05],
                          "geometry_densities": [0.2, 0.05], "epochs": 1, "train_subset": 2048},
}


def tiny_params(stage, tmp_path):
    params = yaml.safe_load((ROOT / "params" / f"{stage}.yaml").read_text())
    params.update(TINY)
    params.update(TINY_BY_STAGE[stage])
    params.update(out_dir=str(tmp_path / "runs" / stage), fig_dir=str(tmp_path / "figures" / stage))
    return params


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_notebook_runs_and_writes_its_artifacts(stage, tmp_path):
    params = tiny_params(stage, tmp_path)
    out = run_notebook(ROOT / "notebooks" / STAGES[stage], tmp_path / "nb.ipynb", params, cwd=ROOT,
                       log_output=False)
    nb = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    run_dir, fig_dir = Path(params["out_dir"]), Path(params["fig_dir"])
    table = pd.read_csv(run_dir / "results.csv")
    assert len(table) > 0 and table["final_test_acc"].between(0, 1).all()
    assert (table["final_test_acc"] > 0.15).any(), "no run learned anything above chance"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics and all(isinstance(v, dict) for v in metrics.values())
    masks = list((run_dir / "runs").glob("*/mask.pt"))
    finals = list((run_dir / "runs").glob("*/final.pt"))
    assert masks and finals
    captions = json.loads((fig_dir / "captions.json").read_text())
    assert captions
    plots = {p for p in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] if isinstance(p, str)}
    assert {f"figures/{stage}/{e['file']}.png" for e in captions} <= plots, "figure missing from dvc.yaml plots"
    for entry in captions:
        for ext in ("png", "pdf"):
            f = fig_dir / f"{entry['file']}.{ext}"
            assert f.exists() and f.stat().st_size > 1000, f
        assert entry["caption"]
    assert list((run_dir / "tables").glob("*.csv")), "the stage saves its extra tables (a DVC out)"
    check_claims_section(stage, nb, run_dir)


def check_claims_section(stage, nb, run_dir):
    """The notebook's last code cell prints this stage's claims, each with a computed verdict."""
    from pai.claims import CLAIMS, plugins, report

    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    printed = "".join(o.get("text", "") for o in last.get("outputs", []) if o.get("output_type") == "stream")
    assert "Claims tested by this notebook" in printed, "the last cell prints the stage's claims"
    results = report(stage, run_dir, show=False)
    ids = {c.id for c in CLAIMS.values() if c.stage == stage} - set(plugins.CLAIM_IDS)  # rows only with plugins
    assert ids and ids <= {r.id for r in results}
    for r in results:
        assert r.verdict in ("holds", "contradicted", "inconclusive") and r.reason
        assert f"{r.verdict}" in printed


def test_committed_notebooks_have_no_outputs():
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert not any(c.get("outputs") for c in json.loads(nb.read_text())["cells"]), nb
    for src in STAGES.values():  # sources are jupytext percent files with a parameters cell
        text = (ROOT / "notebooks" / src).read_text()
        assert 'tags=["parameters"]' in text
        assert "\ndef " not in text and "\nclass " not in text, f"{src}: logic belongs in pai, not the notebook"


def test_params_have_both_profiles():
    for stage in STAGES:
        for profile in ("cpu", "paper"):
            assert (ROOT / "params" / "profiles" / profile / f"{stage}.yaml").exists()
        live = yaml.safe_load((ROOT / "params" / f"{stage}.yaml").read_text())
        cpu = yaml.safe_load((ROOT / "params" / "profiles" / "cpu" / f"{stage}.yaml").read_text())
        assert live == cpu, "committed params must be the cpu profile"


def _dvc(*args):
    dvc = Path(sys.executable).with_name("dvc")
    return subprocess.run([str(dvc), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_dvc_pipeline_is_valid():
    dag = _dvc("dag")
    assert dag.returncode == 0, dag.stderr
    for stage in (*(f"notebook@{s}" for s in STAGES), "figure_index"):
        assert stage in dag.stdout
    status = _dvc("status")
    assert status.returncode == 0, status.stderr
    # a dry run resolves every stage's params and deps (a malformed params entry fails only here)
    dry = _dvc("repro", "--dry", "--single-item", *(f"notebook@{s}" for s in STAGES))
    assert dry.returncode == 0, dry.stderr
