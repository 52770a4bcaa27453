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

from pai.compendium.notebook import run_notebook

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
                         "shuffled_methods": ["phew", "synflow"], "shuffled_densities": [0.05],
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
    assert "jupytext" not in nb.metadata, "an executed notebook paired with the .py does not open in JupyterLab"
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
    check_figures_shown(nb, captions)
    check_claims_section(stage, nb, run_dir)


def check_figures_shown(nb, captions):
    """Every figure the notebook saved is embedded in it as a PNG, once, in the cell that made it.

    A figure cell is a code cell calling ``plots.finish``; one whose figure sits under an ``if`` (a
    profile without that side check) may show none, any other shows exactly one image."""
    shown = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "plots.finish(" not in cell.source:
            continue
        images = sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
        conditional = any(line.startswith("if ") for line in cell.source.splitlines())
        assert images <= 1, f"figure displayed {images} times:\n{cell.source[:200]}"
        assert images == 1 or conditional, f"figure cell shows no image:\n{cell.source[:200]}"
        shown += images
    assert shown == len(captions), f"{shown} figures shown, {len(captions)} saved"
    for cell in nb.cells:  # text with numbers is rendered from the tables (Markdown(stage.<...>_note(...)))
        if cell.cell_type == "code" and cell.source.startswith("Markdown("):
            rendered = [o["data"]["text/markdown"] for o in cell.get("outputs", [])
                        if "text/markdown" in o.get("data", {})]
            assert len(rendered) == 1 and rendered[0].strip(), cell.source


def check_claims_section(stage, nb, run_dir):
    """The notebook's last code cell prints this stage's claims, each with a computed verdict."""
    from pai.compendium.claims import CLAIMS, plugins, report

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


# What a digit in a notebook's Markdown may be without a computation behind it, each pattern as narrow as the
# texts need: everything else (a result, a count, a density) is rendered by a code cell from the tables.
ALLOWED_IN_TEXT = {  # applied in this order
    "latex": r"\$\$.+?\$\$|\$[^$]+\$",  # an equation, e.g. density notation $10^{-2}$
    "date": r"\b(?:19|20)\d\d-[01]\d-[0-3]\d\b",  # an ISO date: measured 2026-12-02
    "index in code": r"`\w+\[\d+\]`",  # `seeds[0]`
    "interval level": r"\b95\s?%(?=\s+(?:t\s+|Fisher-z\s+|confidence\s+)?intervals?\b)",  # a 95% t interval
    "citation": r"\b(?:ICML|ICLR|NeurIPS|CVPRW?|ECCV|ICCV|AAAI|IJCAI|JMLR|TMLR|arXiv)(?:\s+(?:19|20)\d\d|'\d\d)\b"
                r"|\bet al\.,?\s+(?:19|20)\d\d\b",  # ICML 2021, NeurIPS'23, Gebhart et al. 2021
    "paper part": r"\b(?:Eqs?|Equation|Figs?|Figure|Tables?|Sec|Section|Alg|Algorithm|Appendix)\.?\s+\d+[a-z]?\b",
    "model name": r"\b(?:VGG|ResNet|WRN)-\d+/\d+\b",  # VGG-11/4 (the other names are identifiers below)
    # a name whose digits hang on letters: LeNet-300-100, ResNet-20, CIFAR-10, vgg11-w0.25, SynFlow-L2,
    # log10, σ1, ℓ2 (a token that starts with a digit, such as 577k or 10^4, is a number)
    "identifier": r"(?<![\w.])[^\W\d_¼½¾⅓⅔⅛][\w']*(?:[-.]\w+)*",
}
NUMBER_IN_TEXT = r"\d+(?:[.,]\d+)*|[¼½¾⅓⅔⅛]"


def typed_numbers(line: str) -> list:
    """The numbers in one line of Markdown that no allowed pattern explains."""
    import re

    for pattern in ALLOWED_IN_TEXT.values():
        line = re.sub(pattern, " ", line)
    return re.findall(NUMBER_IN_TEXT, line)


def markdown_cells(source: str):
    """``(first line number, text)`` of every Markdown cell (``# %% [markdown]``) of a py:percent file, its
    lines (``# ...``) joined by spaces, so that a phrase broken over two lines is read whole."""
    cells, cell = [], None
    for i, line in enumerate(source.splitlines(), 1):
        if line.startswith("# %%"):
            cell = [i + 1, []] if "[markdown]" in line else None
            if cell:
                cells.append(cell)
        elif cell is not None and line.startswith("#"):
            cell[1].append(line[1:].strip())
    return [(first, " ".join(lines)) for first, lines in cells]


def test_typed_numbers_finds_results_and_passes_citations_names_and_equations():
    for typed in ("at density 0.01 every pruner", "PHEW 38%, SynFlow 82%", "about 10^4.4 paths", "its 577k weights",
                  "keeps ~136 of 192 kernels", "about 1,700 of them", "(1 − d/16)^16", "at width ¼", "`0.01`",
                  "has trace 0", "1x1 shortcuts", "the best of 100 graphs"):
        assert typed_numbers(typed), typed
    for fine in ("Patil & Dovrolis (ICML 2021)", "Eq. 3 of the paper", "NeurIPS'23 code", "Gebhart et al. 2021",
                 "LeNet-300-100, ResNet-20, VGG-11/4 on CIFAR-10", "`vgg11-w0.25` and `resnet20-w0.5`",
                 "density $10^{-2}$", "σ1 − σ2 and ℓ2", "log10 trace", "SynFlow-L2", "a 95% t interval",
                 "seed `seeds[0]`", "SynFlow's Fig. 6 curves", "measured 2026-12-02"):
        assert not typed_numbers(fine), fine


def test_notebook_text_has_no_hand_typed_numbers():
    """A number in a notebook's Markdown is true for one run of one profile only: results are rendered by
    a code cell (``Markdown(stage.<...>_note(...))`` from the tables), so they hold under every profile."""
    found = [f"{src}: the Markdown cell at line {i}: {nums}" for src in STAGES.values()
             for i, text in markdown_cells((ROOT / "notebooks" / src).read_text())
             if (nums := typed_numbers(text))]
    assert not found, "hand-typed numbers in notebook text:\n" + "\n".join(found)


@pytest.mark.slow  # one kernel start: ~15 s alone, ~50 s on the loaded 2-core box
def test_figures_are_embedded_once_even_with_agg_inherited(tmp_path, monkeypatch):
    """Two cells, as a stage notebook's figure cells: importing pai.compendium.plots in the kernel keeps the inline
    backend, ``plt.show()`` embeds the figure once as a PNG, a displayed Figure is a PNG too, and
    ``plots.finish`` still writes the PNG and PDF; an ``MPLBACKEND=Agg`` inherited from a CI environment
    does not reach the kernel."""
    monkeypatch.setenv("MPLBACKEND", "agg")
    src = tmp_path / "two_cells.py"
    src.write_text('# %% tags=["parameters"]\nfig_dir = "figs"\n\n'
                   "# %%\nimport matplotlib.pyplot as plt\nfrom IPython.display import display\n"
                   "from pai.compendium import plots\nfig, ax = plt.subplots()\nax.plot([1, 2], [2, 1])\n"
                   'plots.finish(fig, fig_dir, "line", title="t", caption_text="c")\nplt.show()\n\n'
                   "# %%\nfig, ax = plt.subplots()\ndisplay(fig)\nplt.close(fig)\n")
    out = run_notebook(src, tmp_path / "two_cells.ipynb", {"fig_dir": "figs"}, cwd=tmp_path, log_output=False)
    cells = [c for c in nbformat.read(out, as_version=4).cells if "plt" in c.source]
    assert len(cells) == 2
    for cell in cells:
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, cell.outputs
    assert (tmp_path / "figs" / "line.png").stat().st_size > 1000 and (tmp_path / "figs" / "line.pdf").exists()
    import os
    assert os.environ["MPLBACKEND"] == "agg"  # restored for this process


@pytest.mark.slow  # ~1-2 min: one dense training and the mask geometry
def test_node_path_stage_runs_mask_only(tmp_path):
    """``densities: []`` (the cpu-long profile's scale check): no pruned network is trained, the geometry
    table is written and the balance claim is decided from it; the accuracy claim lacks its runs."""
    from pai.compendium.claims import report

    params = tiny_params("node_path_balance", tmp_path)
    params.update(densities=[], variant_methods=[], variant_densities=[])
    run_notebook(ROOT / "notebooks" / STAGES["node_path_balance"], tmp_path / "nb.ipynb", params, cwd=ROOT,
                 log_output=False)
    run_dir = Path(params["out_dir"])
    assert set(pd.read_csv(run_dir / "results.csv")["method"]) == {"dense"}
    assert len(pd.read_csv(run_dir / "tables" / "geometry.csv")) == 2 * 2  # 2 methods x 2 densities x 1 seed
    verdicts = {r.id: r for r in report("node_path_balance", run_dir, show=False)}
    assert verdicts["npb_nearest_balance"].evidence is not None
    assert "needs npb and at least one baseline" in verdicts["npb_ge_baselines_sparse"].reason
