"""The expander sweep's paper path: the notebook run with the paper-rreg-cifar10 profile's settings (degrees,
multistep schedule, augmentation, published_work) on tiny real-format CIFAR-10 files, a narrow VGG-16,
degree 3 and one epoch; it must print and save the paper-vs-ours table.  And the table's matching on
the published rows, checked on that run's own results."""
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pai.compendium.notebook import run_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from datafiles import write_cifar  # noqa: E402

PROFILE = ROOT / "params" / "profiles" / "paper-rreg-cifar10" / "expander_sweep.yaml"
MODEL = "vgg16-w0.125"  # the real vgg16 layout at 1/8 width: RReg's best-of-100 on full vgg16 takes ~20 s a mask


def test_paper_profiles_are_the_rreg_table():
    for name in ("paper", "paper-rreg-cifar10", "paper-rreg-cifar100"):
        p = yaml.safe_load((ROOT / "params" / "profiles" / name / "expander_sweep.yaml").read_text())
        assert p["models"] == ["vgg16"] and p["degrees"] == [3, 15, 30, 60] and p["published_work"] == "rreg"
        assert p["methods"] == ["random-graph", "xnet", "rreg"] and p["epochs"] == 300
        # the official StepLR x0.5 every 30 epochs, held once 0.5 * lr <= min_lr 5e-4: six halvings
        assert p["schedule"] == "multistep" and p["gamma"] == 0.5 and p["lr"] == 0.05
        assert p["milestones"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
        lr = p["lr"] * p["gamma"] ** len(p["milestones"])
        assert lr > 5e-4 >= lr * p["gamma"]
    assert yaml.safe_load((ROOT / "params" / "profiles" / "paper-rreg-cifar100" / "expander_sweep.yaml").read_text())[
        "dataset"] == "cifar100"


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper_expander")
    write_cifar(tmp / "data", "cifar10", n_train=40, n_test=20)
    params = yaml.safe_load(PROFILE.read_text())
    params.update(models=[MODEL], degrees=[3], seeds=[0], epochs=1, stem_check=[MODEL], batch_size=16, eval_every=1,
                  workers=1, out_dir=str(tmp / "runs" / "expander_sweep"), fig_dir=str(tmp / "figures" / "expander_sweep"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAI_DATA", str(tmp / "data"))  # the kernel inherits it
        out = run_notebook(ROOT / "notebooks" / "01_expander_sweep.py", tmp / "nb.ipynb", params, cwd=ROOT,
                           log_output=False, complete=True)
    return Path(params["out_dir"]), out


def test_paper_path_runs_and_writes_paper_vs_ours(paper_run):
    import nbformat

    run_dir, nb = paper_run
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results["method"]) == {"random-graph", "xnet", "rreg", "dense"}
    assert set(results["dataset"]) == {"cifar10"}
    assert set(results.loc[results["method"] != "dense", "opt_degree"]) == {3}
    versus = pd.read_csv(run_dir / "tables" / "paper_vs_ours.csv")
    # the published CIFAR-10 rows at the degree we ran, and dense; our narrow model is not the paper's
    assert set(zip(versus["method"], versus["degree"].fillna(0).astype(int))) == {
        ("random-graph", 3), ("xnet", 3), ("rreg", 3), ("dense", 0)}
    assert (versus["dataset"] == "cifar10").all() and (versus["n_seeds"] == 0).all()
    assert versus.loc[versus["method"] == "rreg", "paper"].item() == pytest.approx(87.02)
    printed = "".join(o.get("text", "") for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "87.02" in printed and "not run" in printed


def test_paper_vs_ours_matches_on_degree(paper_run):
    """The same results, as if the model were the paper's vgg16: each published row gets our run."""
    from pai.compendium.stages.expanders import paper_comparison, results_table

    run_dir, _ = paper_run
    ours = results_table(pd.read_csv(run_dir / "results.csv").assign(model="vgg16"))
    versus = paper_comparison(ours, "rreg").set_index("method")
    assert (versus["n_seeds"] == 1).all() and len(versus) == 4
    for method in versus.index:
        acc = ours.loc[ours["method"] == method, "final_test_acc"].item()
        assert versus.loc[method, "ours_mean"] == pytest.approx(100 * acc)
        assert versus.loc[method, "delta"] == pytest.approx(100 * acc - versus.loc[method, "paper"])


def test_within_level_residuals_give_the_claims_partial_correlation():
    """The residual figure's cloud has the within-density ρ the claim tests, not the pooled one."""
    import numpy as np

    from pai.metrics.stats import partial_correlation, pearson
    from pai.compendium.stages.expanders import within_level

    rng = np.random.default_rng(0)
    rows = []
    for level in (0.01, 0.03, 0.1):  # across levels both rise with density; within a level x hurts y
        for i in range(8):
            x = 10 * level + rng.normal()
            rows.append({"model": "m", "method": "xnet", "level": level, "expansion": x, "collapsed": False,
                         "final_test_acc": 0.5 + 2 * level - 0.01 * (x - 10 * level) + 0.001 * rng.normal()})
    rows.append({"model": "m", "method": "dense", "level": 1.0, "expansion": np.nan, "collapsed": False,
                 "final_test_acc": 0.9})
    rows.append({"model": "m", "method": "rreg", "level": 0.01, "expansion": 50.0, "collapsed": True,
                 "final_test_acc": 0.1})
    df = within_level(pd.DataFrame(rows), "expansion")
    assert len(df) == 24 and set(df["method"]) == {"xnet"}  # dense and collapsed runs left out
    assert np.allclose(df.groupby("level")[["x_within", "y_within"]].mean(), 0)
    within = partial_correlation(df["expansion"], df["final_test_acc"], groups=df["cell"]).rho
    assert pearson(df["x_within"], df["y_within"]).rho == pytest.approx(within)
    assert within < -0.9 < 0 < pearson(df["expansion"], df["final_test_acc"]).rho


def test_sweep_specs_per_model_levels_and_the_dense_baselines():
    from pai.compendium.params import stage_params
    from pai.compendium.spec import run_id
    from pai.compendium.stages.expanders import sparse_layers, stem_check_specs, sweep_specs

    params = stage_params({"dataset": "fashion-mnist", "models": ["lenet-300-100", "vgg11-w0.25"], "seeds": [0, 1],
                           "epochs": 1})
    specs = sweep_specs(params, ["xnet", "rreg (exact degrees)"],
                        densities={"lenet-300-100": [0.03, 0.01], "vgg11-w0.25": [0.05]})
    got = {(s.train.model, s.prune.method, s.prune.density, s.prune.options.get("exact_degrees", False)) for s in specs}
    assert got == {("lenet-300-100", m, d, e) for m, e in (("xnet", False), ("rreg", True)) for d in (0.03, 0.01)} | {
        ("vgg11-w0.25", m, 0.05, e) for m, e in (("xnet", False), ("rreg", True))} | {
        (net, "dense", 1.0, False) for net in ("lenet-300-100", "vgg11-w0.25")}
    assert len(specs) == 2 * (4 + 2 + 2)
    with pytest.raises(ValueError, match="no densities for model 'vgg11-w0.25'"):
        sweep_specs(params, ["xnet"], densities={"lenet-300-100": [0.03]})
    stem = stem_check_specs(params, ["xnet", "rreg"], ["vgg11-w0.25"], densities={"vgg11-w0.25": [0.05, 0.02]})
    assert {(s.train.model, s.prune.density, s.prune.options["dense_first"], s.train.seed) for s in stem} == {
        ("vgg11-w0.25", 0.02, True, seed) for seed in (0, 1)} and len(stem) == 4  # the sparsest level only
    assert not {run_id(s) for s in stem} & {run_id(s) for s in specs}
    by_degree = sweep_specs(params, ["xnet"], degrees=[3])
    assert {s.prune.options.get("degree") for s in by_degree if s.prune.method == "xnet"} == {3}
    layers = pd.DataFrame({"layer_index": [0, 0, 1, 1], "label": ["xnet", "rreg"] * 2,
                           "kept_fraction": [0.06, 1.0, 1.0, 1.0]})
    assert sparse_layers(layers)["layer_index"].tolist() == [0, 0]  # the stem RReg alone keeps dense stays


def test_tiny_imagenet_profile_is_the_rreg_tiny_table():
    """paper-rreg-tiny: every model of the published Tiny-ImageNet table at d = 3 with the official per-family
    recipe; every spec passes the checks a sweep runs, and each published row finds its run."""
    from pai.compendium.params import stage_params
    from pai.compendium.runs import check_spec
    from pai.compendium.stages.expanders import paper_comparison, sweep_specs

    p = yaml.safe_load((ROOT / "params" / "profiles" / "paper-rreg-tiny" / "expander_sweep.yaml").read_text())
    from pai.compendium.published import load_published

    table_rows = load_published("rreg").query("table_or_figure == 'Tiny-ImageNet table'")
    assert p["dataset"] == "tiny-imagenet" and p["degrees"] == [3] and set(p["models"]) == set(table_rows["model"])
    for model in p["models"]:  # StepLR x0.5 every 30 epochs above min_lr: VGG 5e-4 (six halvings), ResNets 1e-5
        lr, steps = p["lr"][model], len(p["milestones"][model])
        assert (lr, p["batch_size"][model], steps) == ((0.05, 1024, 6) if model == "vgg16" else (0.1, 128, 9))
        assert p["milestones"][model] == pytest.approx([0.1 * (i + 1) for i in range(steps)])
        if model == "vgg16":
            assert lr * 0.5 ** steps > 5e-4 >= lr * 0.5 ** (steps + 1)
    params = stage_params(p)
    specs = sweep_specs(params, p["methods"], degrees=p["degrees"])
    assert len(specs) == 4 * len(p["models"])
    for spec in specs:
        check_spec(spec)
    ours = pd.DataFrame([{"model": s.train.model, "dataset": s.train.dataset, "method": s.prune.method,
                          "seed": s.train.seed, "target_density": s.prune.density,
                          "opt_degree": s.prune.options.get("degree"), "final_test_acc": 0.5} for s in specs])
    versus = paper_comparison(ours, "rreg")
    tiny = versus[versus["table_or_figure"] == "Tiny-ImageNet table"]
    assert len(tiny) == len(table_rows) == 36 and (tiny["n_seeds"] == 1).all()
