"""The full-spectrum notebook on its paper profile's code path: tiny real-format CIFAR-100 files, the
focused profile ``paper-ramanujan-cifar100`` (PAGS/PEGS over four generators, PEGS at two iteration
counts, LTH with rewinding, the published-numbers table) at tiny sizes."""
from pathlib import Path

import pandas as pd
import pytest
import yaml

from datafiles import write_cifar
from pai.compendium.notebook import load_params, parameter_schema, run_notebook
from pai.compendium.params import check_params
from pai.compendium.variants import label_of

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "params" / "profiles" / "paper-ramanujan-cifar100" / "full_spectrum.yaml"


@pytest.mark.slow  # ~35-80 s on the 2-core box (18 tiny runs and the notebook kernel)
def test_paper_profile_path_runs_and_compares_with_the_published_baselines(tmp_path, monkeypatch):
    write_cifar(tmp_path / "data", "cifar100", n_train=96, n_test=32)
    monkeypatch.setenv("PAI_DATA", str(tmp_path / "data"))  # the kernel inherits it
    params = yaml.safe_load(PROFILE.read_text())
    assert params["published_work"] == "ramanujan" and params["pegs_iterations"] == [100, 500]
    # the profile's two PEGS settings carry two labels, so the claims never pair one seed's PEGS rows
    assert {label_of("pegs", {"pretrain_iterations": t}) for t in params["pegs_iterations"]} == {
        "pegs", "pegs (100 iterations)"}
    params.update(model="resnet18-w0.125", epochs=1, seeds=[0], batch_size=32, workers=1, pags_candidates=2,
                  pags_generators=["snip", "random"],
                  pegs_iterations=[2, 1], itop_densities=[0.05], itop_update_interval=2, lth_rate=0.9,
                  lth_rewind_iteration=2, out_dir=str(tmp_path / "runs"), fig_dir=str(tmp_path / "figures"))
    run_notebook(ROOT / "notebooks" / "02_full_spectrum.py", tmp_path / "nb.ipynb", params, cwd=ROOT,
                 log_output=False, complete=True)

    results = pd.read_csv(tmp_path / "runs" / "results.csv")
    assert set(results.method) == {"snip", "grasp", "random-erk", "random", "pags", "pegs", "itop", "lth"}
    pegs = results[results.method == "pegs"]
    assert sorted(pegs.opt_pretrain_iterations.unique()) == [1, 2] and len(pegs) == 4
    meta = pd.read_csv(tmp_path / "runs" / "tables" / "pags_pegs.csv")
    assert {"generator", "PAGS", "PEGS (T=1)", "PEGS (T=2)", "LTH"} <= set(meta.kind)
    moving = pd.read_csv(tmp_path / "runs" / "tables" / "moving_distance.csv")
    assert set(moving.run_id) == set(results.run_id[results.regime.isin(["static", "dst"])])
    # both readings of every sparse run, with the layers whose Δr is valid at both ends
    assert {"moving_distance", "moving_distance_drop", "valid_layers", "layers"} <= set(moving.columns)
    sparse = moving[moving.run_id.isin(results.run_id[results.method != "dense"])]
    assert (sparse.valid_layers <= sparse.layers).all() and sparse.layers.notna().all()

    versus = pd.read_csv(tmp_path / "runs" / "tables" / "paper_vs_ours.csv")
    # the ICLR'23 CIFAR-100 baselines (torchvision ResNet-34): listed, and not run by this model
    assert len(versus) and set(versus.dataset) == {"cifar100"} and (versus.n_seeds == 0).all()
    assert {"random-erk", "random", "snip", "grasp"} <= set(versus.method)
    for figure in ("accuracy_vs_spectrum", "within_density_correlation", "pags_pegs", "itop_moving_distance"):
        assert (tmp_path / "figures" / f"{figure}.png").stat().st_size > 1000


def test_paper_profiles_pass_the_strict_check():
    schema = parameter_schema(ROOT / "notebooks" / "02_full_spectrum.py")
    for profile in ("paper", "paper-ramanujan-cifar100"):
        params = check_params(load_params(ROOT / "params" / "profiles" / profile / "full_spectrum.yaml"), schema,
                              complete=True)
        assert params["published_work"] == "ramanujan" and params["pags_density"] == 0.01
        assert params["pags_candidates"] == 3000  # the population of every shipped run script


def test_paper_table_matches_our_faithful_static_runs_only():
    from pai.compendium.stages.full_spectrum import paper_table

    rows = []
    for seed in (0, 1):
        for method, acc, options in (("snip", 0.60, {}), ("snip", 0.10, {"opt_train_mode": True}),
                                     ("random", 0.40, {}), ("pags", 0.99, {"opt_generator": "snip"})):
            rows.append({"model": "resnet34-tv", "dataset": "cifar100", "method": method, "target_density": 0.01,
                         "seed": seed, "final_test_acc": acc + 0.01 * seed, "regime": "static",
                         "label": "snip (train mode)" if options.get("opt_train_mode") else method, **options})
    rows.append({"model": "resnet34-tv", "dataset": "cifar100", "method": "itop", "target_density": 0.01, "seed": 0,
                 "final_test_acc": 0.9, "regime": "dst", "label": "itop"})
    versus = paper_table(pd.DataFrame(rows), "ramanujan", "cifar100").set_index("method")
    assert versus.loc["snip", "n_seeds"] == 2 and abs(versus.loc["snip", "ours_mean"] - 60.5) < 1e-9
    assert abs(versus.loc["snip", "delta"] - (60.5 - 58.75)) < 1e-9  # ICLR'23 SNIP, ResNet-34, 0.01
    assert versus.loc["random", "n_seeds"] == 2 and versus.loc["synflow", "n_seeds"] == 0  # not run
    assert set(versus.dataset) == {"cifar100"}


def test_both_pegs_settings_stay_out_of_the_correlation_population():
    from pai.compendium.claims.spectrum import _population

    rows = [{"run_id": f"r{i}", "model": "resnet18", "dataset": "cifar100", "method": m, "target_density": 0.01,
             "seed": 0, "final_test_acc": 0.5, "regime": "static", "moving_distance": 0.1, "lambda": 1.0,
             "opt_generator": g, "opt_pretrain_iterations": t}
            for i, (m, g, t) in enumerate([("snip", None, None), ("pags", "snip", None), ("pegs", "snip", 500),
                                           ("pegs", "snip", 100)])]
    pop = _population({"full_spectrum": {"results": pd.DataFrame(rows)}}, "moving_distance", "lambda")
    assert list(pop.label) == ["snip"]
