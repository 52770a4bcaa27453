"""The PHEW stage's paper path: the notebook under its paper profiles' settings (CIFAR-10, VGG-16 and
ResNet-20, the official recipes, SNIP/GraSP in train mode, ``published_work``) at tiny sizes, on tiny
CIFAR-10 files in the real on-disk format: one epoch, a handful of images.  ``resnet20`` runs at its
real width in seconds, so its rows meet the published NPB numbers; VGG-16 runs at width 1/8.  Also:
both paper profiles switch in and resolve under ``dvc repro --dry``."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from datafiles import write_cifar
from pai.compendium.notebook import parameter_schema, run_notebook
from pai.compendium.params import check_params

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_phew_path_kernel.py"
STAGE = "phew_path_kernel"
PROFILES = ("paper", "paper-phew-cifar10")
NARROW = {"vgg16": "vgg16-w0.125"}


def profile(name):
    return yaml.safe_load((ROOT / "params" / "profiles" / name / f"{STAGE}.yaml").read_text())


def renamed(value):
    """A per-model mapping with the narrow model names (``{vgg16: x}`` -> ``{vgg16-w0.125: x}``)."""
    if isinstance(value, dict):
        return {NARROW.get(k, k): v for k, v in value.items()}
    if isinstance(value, list):
        return [NARROW.get(v, v) if isinstance(v, str) else v for v in value]
    return value


@pytest.mark.parametrize("name", PROFILES)
def test_paper_profiles_are_complete_and_valid(name):
    params = profile(name)
    checked = check_params(params, parameter_schema(NOTEBOOK), complete=True, where=name)
    assert checked["dataset"] == "cifar10" and checked["published_work"]
    assert set(checked["models"]) <= {"vgg16", "resnet20"} and checked["epochs"] == 160
    assert all(m in checked["methods"] for m in ("snip (train mode)", "grasp (train mode)", "phew", "synflow"))


@pytest.mark.slow  # ~40 s alone: 10 trainings of ResNet-20 and VGG-16/8 with their pruning and metrics
def test_paper_path_runs_on_tiny_cifar10_and_compares_with_the_papers(tmp_path, monkeypatch):
    write_cifar(tmp_path / "data", "cifar10", n_train=160, n_test=40)
    monkeypatch.setenv("PAI_DATA", str(tmp_path / "data"))  # the notebook kernel inherits it
    params = {k: renamed(v) for k, v in profile("paper").items()}
    params.update(models=["resnet20", "vgg16-w0.125"], geometry_models=["resnet20", "vgg16-w0.125"],
                  methods=["phew", "synflow", "snip (train mode)"], densities=[0.01], variant_densities=[0.01],
                  geometry_densities=[0.01], seeds=[0],
                  epochs=1, batch_size=32, curve_epochs=1, focus_density=0.01, workers=1,
                  out_dir=str(tmp_path / "runs" / STAGE), fig_dir=str(tmp_path / "figures" / STAGE))
    run_notebook(NOTEBOOK, tmp_path / "nb.ipynb", params, cwd=ROOT, log_output=False, complete=True)
    run_dir = Path(params["out_dir"])
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results["dataset"]) == {"cifar10"} and set(results["model"]) == {"resnet20", "vgg16-w0.125"}
    # the variant label reached the runs: SNIP scored in train mode
    assert results[results.method == "snip"]["opt_train_mode"].astype(bool).all()
    paper = pd.read_csv(run_dir / "tables" / "paper_vs_ours.csv")
    # ResNet-20 PHEW and SynFlow at density 0.01 are NPB's published points; our one-epoch noise-data
    # numbers sit beside them (the table's values are not checked, only the matching)
    npb = paper[paper.work == "npb"]
    assert sorted(zip(npb.method, npb.density)) == [("phew", 0.01), ("synflow", 0.01)]
    assert (npb.n_seeds == 1).all() and npb.ours_mean.between(0, 100).all()
    assert "snip" not in set(paper.method), "train-mode SNIP must not be matched with eval-mode published SNIP"
    geometry = pd.read_csv(run_dir / "tables" / "geometry.csv")
    assert set(geometry.model) == {"resnet20", "vgg16-w0.125"}
    assert {"log10_path_kernel_trace", "mean_width_fraction", "label"} <= set(geometry.columns)


def test_paper_run_specs_carry_the_per_model_recipe():
    """The full paper profile trains VGG-16 on SynFlow's schedule and ResNet-20 on the NPB repository's."""
    from pai.compendium.params import StageParams

    p = profile("paper")
    sp = StageParams({**p, "models": p["models"]})
    specs = sp.grid(methods=["synflow"], densities=[0.01])
    by_model = {s.train.model: s.train for s in specs}
    assert by_model["vgg16"].milestones == (0.375, 0.75) and by_model["vgg16"].nesterov is True
    assert by_model["resnet20"].milestones == (0.5, 0.75) and by_model["resnet20"].nesterov is False
    assert all(t.epochs == 160 and t.augment and t.weight_decay == 1e-4 for t in by_model.values())


def _top_level_ignore(folder, names):
    """What a clone lacks: the environment, git, runs and data at the top (not pai/data), caches."""
    top = Path(folder) == ROOT
    return [n for n in names if n == "__pycache__" or (top and n in (".venv", ".git", "runs", "data"))]


def _dvc(cwd, *args):
    dvc = Path(sys.executable).with_name("dvc")
    return subprocess.run([str(dvc), *args], cwd=cwd, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("name", PROFILES)
def test_paper_profile_switches_in_and_dvc_resolves_it(name, tmp_path):
    """``python -m pai.profiles use <profile>`` then ``dvc repro --dry``, on a copy of the repository."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=_top_level_ignore)
    use = subprocess.run([sys.executable, "-m", "pai.compendium.profiles", "use", name], cwd=repo, capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": str(repo), "PATH": ""})
    assert use.returncode == 0, use.stderr
    live = yaml.safe_load((repo / "params" / f"{STAGE}.yaml").read_text())
    assert live == profile(name)
    init = _dvc(repo, "init", "--no-scm", "-f")
    assert init.returncode == 0, init.stderr
    dry = _dvc(repo, "repro", "--dry", "--single-item", f"notebook@{STAGE}")
    assert dry.returncode == 0, dry.stderr


# ----------------------------------------------------------------------------- the stage's glue


def test_level_ticks_merge_the_methods_slightly_different_kept_densities():
    from pai.compendium.plots import _level_ticks

    kept = [0.003008, 0.003001, 0.003, 0.003, 0.010012, 0.01, 0.000999, 0.001, 0.001]
    assert [f"{t:.3g}" for t in _level_ticks(kept)] == ["0.001", "0.003", "0.01"]
    assert _level_ticks([0.1, 0.0316, 0.01]) == [0.01, 0.0316, 0.1]  # a density grid stays whole


def test_width_bars_and_geometry_csv_label_variants_and_keep_every_seed():
    from pai.compendium.experiments import mask_geometry_grid
    from pai.compendium.stages import phew as stage

    geometry = mask_geometry_grid(["lenet-300-100"], ["phew", "synflow", "synflow (exact count)"], [0.01],
                                  "fashion-mnist", seeds=[0, 1])
    flat = stage.geometry_csv(geometry)
    assert list(flat.label) == ["phew", "phew", "synflow", "synflow", "synflow (exact count)",
                                "synflow (exact count)"]
    assert flat.opt_rule.tolist()[-2:] == ["exact", "exact"] and flat.kept_density.between(0.0099, 0.0101).all()
    layers, series = stage.width_bars(geometry, "lenet-300-100", 0.01, ["phew", "synflow (exact count)", "snip"])
    assert layers == ["hidden.0", "hidden.1", "fc"] and set(series) == {"phew", "synflow (exact count)"}
    widths = geometry.width_fraction.tolist()
    assert series["phew"][0] == [widths[0][0], widths[1][0]]  # layer 0, seeds 0 and 1
    assert flat.mean_width_fraction.iloc[0] == pytest.approx(sum(widths[0]) / 3)


def test_geometry_spread_over_workers_is_the_same_table(capsys):
    """Two spawned workers give the table one process gives (each mask seeded on its own), in loop order,
    with progress lines at most every 10 s plus the last."""
    from pai.compendium.experiments import mask_geometry_grid

    args = (["lenet-300-100"], ["phew", "snip (train mode)", "random"], [0.01, 0.003], "fashion-mnist")
    train = {"train_subset": 256, "test_subset": 64}
    one = mask_geometry_grid(*args, seeds=[0, 1], train=train)
    two = mask_geometry_grid(*args, seeds=[0, 1], train=train, workers=2, progress=None)
    pd.testing.assert_frame_equal(one, two)
    assert list(two.method[::4]) == ["phew", "snip", "random"]  # methods, then densities, then seeds
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("masks")]
    assert lines and lines[-1].startswith("masks 12/12 | elapsed") and len(lines) <= 4, lines  # none "cached"


def test_loss_curves_average_over_seeds_by_label():
    from pai.compendium.stages.phew import loss_curves

    def run(method, seed, losses, options=None):
        return {"spec": {"train": {"model": "m", "seed": seed}, "prune": {"method": method, "density": 0.01,
                                                                          "options": options or {}}},
                "train": {"history": [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(losses)]}}

    results = [run("synflow", 0, [2.0, 1.0, 0.5]), run("synflow", 1, [3.0, 2.0, 1.5]),
               run("synflow", 0, [9.0, 9.0, 9.0], {"rule": "exact"}),
               {"spec": {"train": {"model": "m", "seed": 2}, "prune": {"method": "synflow", "density": 0.01,
                                                                       "options": {}}}, "train": None}]
    curves = loss_curves(results, ["synflow", "synflow (exact count)"], model="m", density=0.01, epochs=2)
    assert curves["synflow"]["mean"].tolist() == [2.5, 1.5] and curves["synflow"]["low"].tolist() == [2.0, 1.0]
    assert curves["synflow"]["n"].tolist() == [2, 2] and curves["synflow (exact count)"]["mean"].tolist() == [9, 9]


def test_paper_table_matches_faithful_runs_only():
    from pai.compendium.stages.phew import paper_table

    rows = []
    for seed in (0, 1):
        for method, opts, acc in (("synflow", {}, 0.80), ("synflow", {"opt_rule": "exact"}, 0.10),
                                  ("snip", {"opt_train_mode": True}, 0.70)):
            rows.append({"model": "vgg16", "dataset": "cifar10", "method": method, "seed": seed,
                         "target_density": 0.001, "best_test_acc": acc + seed / 100, "final_test_acc": acc,
                         **opts})
    table = paper_table(pd.DataFrame(rows), "synflow")
    assert table.method.tolist() == ["synflow"]  # SynFlow's eval-mode SNIP is not matched by train-mode SNIP
    assert table.paper.iloc[0] == pytest.approx(80.39) and table.ours_mean.iloc[0] == pytest.approx(80.5)


def test_geometry_mask_is_the_mask_the_trained_run_starts_from(tmp_path):
    """mask_geometry_grid prunes the run's initial weights with the run's prune set (its training subset,
    its input size, its seed), so the mask-only tables describe the trained masks."""
    from pai.compendium.experiments import mask_geometry_grid
    from pai.compendium.params import grid
    from pai.compendium.runs import run_one

    train = {"train_subset": 512, "test_subset": 128, "epochs": 1, "image_size": 14}
    spec = grid(dataset="fashion-mnist", models=["lenet-300-100"], seeds=[1], methods=["snip (train mode)"],
                densities=[0.01], train=train)[0]
    run = run_one(spec, tmp_path)
    geo = mask_geometry_grid(["lenet-300-100"], ["snip (train mode)"], [0.01], "fashion-mnist", seeds=[1],
                             train=train).iloc[0]
    assert bool(geo.opt_train_mode) and geo.kept_density == run["density"]
    for key in ("log10_path_kernel_trace", "log10_paths", "effective_nodes"):
        assert geo[key] == run["metrics"][key], key
    other = mask_geometry_grid(["lenet-300-100"], ["snip (train mode)"], [0.01], "fashion-mnist", seeds=[1],
                               train={**train, "train_subset": 256}).iloc[0]
    assert other.log10_path_kernel_trace != geo.log10_path_kernel_trace  # the prune set matters
