"""A researcher's own pruner enters the compendium as a plugin (``examples/my_pruner.py``): params name it,
specs carry it to workers, figures give it a colour and a legend entry, the scoreboard a row."""
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pai.compendium import plugins
from pai.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TINY = dict(model="lenet-300-100", dataset="digits", epochs=1, batch_size=64, lr=0.05, threads=1,
            schedule="constant")


@pytest.fixture
def clean_plugins(monkeypatch):
    """The example on the path, and pai's registries and plugin list as they were afterwards (a plugin
    registers process-wide; other tests must not see its method)."""
    from pai import pruners
    from pai.models import MODELS

    pruners.names()  # pai's own families first, so the snapshot holds them
    monkeypatch.syspath_prepend(str(EXAMPLES))
    saved = [dict(r._entries) for r in (pruners.PRUNERS, MODELS)]
    state = (list(plugins._LOADED), dict(plugins._PROVIDERS), plugins._ENTRY_POINTS_LOADED)
    yield
    for reg, entries in zip((pruners.PRUNERS, MODELS), saved):
        reg._entries.clear()
        reg._entries.update(entries)
    plugins._LOADED[:], plugins._ENTRY_POINTS_LOADED = state[0], state[2]
    plugins._PROVIDERS.clear()
    plugins._PROVIDERS.update(state[1])
    sys.modules.pop("my_pruner", None)


@pytest.mark.parametrize("bad", [["examples/my_pruner.py"], ["my_pruner.py"], ["../evil"], [""], ["a b"], "my_pruner",
                                 [3], {"my_pruner": 1}])
def test_only_module_names_are_accepted(bad):
    with pytest.raises(UserError) as e:
        plugins.check_names(bad)
    assert "\n" not in str(e.value)
    if bad == ["examples/my_pruner.py"]:
        assert "PYTHONPATH" in str(e.value) and "'my_pruner'" in str(e.value)
    assert plugins.check_names(["my_pruner", "mypkg.pruners", "_x.y2"]) == ["my_pruner", "mypkg.pruners", "_x.y2"]


def test_a_missing_plugin_is_one_line():
    with pytest.raises(UserError, match="plugin module 'no_such_pai_plugin' not found; put its folder on PYTHONPATH"):
        plugins.load(["no_such_pai_plugin"], entry_points=False)


def test_a_plugin_method_runs_and_its_spec_names_the_plugin(clean_plugins):
    from pai.compendium import runs

    assert plugins.load(["my_pruner"], entry_points=False) == ["my_pruner"]
    assert plugins.methods() == ["layer-magnitude"] and plugins.provider("pruner", "random") is None
    s = runs.make_spec(method="layer-magnitude", density=0.2, **TINY)
    d = s.to_dict()
    assert s.plugins == ("my_pruner",) and d["plugins"] == ["my_pruner"]
    assert runs.RunSpec.from_dict(json.loads(json.dumps(d))) == s and runs.run_id(d) == s.id
    assert s.id != runs.run_id({k: v for k, v in d.items() if k != "plugins"})
    assert "plugins" not in runs.make_spec(method="random", density=0.2, **TINY).to_dict()  # pai's own: as before
    assert s.replace(prune={"method": "random"}).plugins == ()
    runs.check_spec(d)


def test_a_worker_imports_the_plugin_its_spec_names(clean_plugins, tmp_path):
    """A fresh process (a spawned worker, a Ray task) that never imported the plugin runs the spec."""
    from pai.compendium import runs

    plugins.load(["my_pruner"], entry_points=False)
    spec = runs.make_spec(method="layer-magnitude", density=0.2, **TINY).to_dict()
    code = ("import json, sys; from pai.compendium.runs import run_one; "
            "r = run_one(json.loads(sys.argv[1]), sys.argv[2]); print(r['status'], r['density'])")
    env = {**__import__("os").environ, "PYTHONPATH": f"{ROOT}:{EXAMPLES}"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(spec), str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    status, density = out.stdout.split()
    assert status == "finished" and abs(float(density) - 0.2) < 0.01
    record = json.loads((tmp_path / runs.run_id(spec) / "run.json").read_text())
    assert record["spec"]["plugins"] == ["my_pruner"]
    row = runs.flatten_result(record)
    assert row["method"] == "layer-magnitude" and row["plugin"] == "my_pruner"


def test_spawned_workers_import_what_the_sweep_loaded(clean_plugins, tmp_path):
    """A hand-written spec names no plugin; the sweep's workers still import the ones its process loaded."""
    from pai.compendium import runs

    plugins.load(["my_pruner"], entry_points=False)
    spec = {"train": {**TINY, "seed": 0}, "prune": {"method": "layer-magnitude", "density": 0.2, "seed": 0,
                                                    "options": {}}}
    other = {**spec, "train": {**TINY, "seed": 1}}
    out = runs.sweep([spec, other], tmp_path, workers=2, progress=False)
    assert [r["status"] for r in out] == ["finished", "finished"]
    assert out[0]["run_id"] == runs.run_id(spec)  # a mapping keeps the id it has as given


def test_a_model_plugin_runs_and_its_spec_names_the_plugin(clean_plugins, tmp_path, monkeypatch):
    from pai.compendium import runs

    (tmp_path / "my_models.py").write_text(
        "from torch import nn\nfrom pai.models import register_model\n\n\n@register_model('my-net')\n"
        "def my_net(num_classes, in_channels, image_size):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, 32), nn.ReLU(),\n"
        "                         nn.Linear(32, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.load(["my_models", "my_pruner"], entry_points=False)
    s = runs.make_spec(**{**TINY, "model": "my-net"}, method="layer-magnitude", density=0.2)
    assert s.plugins == ("my_models", "my_pruner") and runs.make_spec(**{**TINY, "model": "my-net"}).plugins == (
        "my_models",)
    record = runs.run_one(s, tmp_path / "runs")
    assert record["status"] == "finished" and record["spec"]["plugins"] == ["my_models", "my_pruner"]
    sys.modules.pop("my_models", None)


def test_entry_point_plugins_load_without_params(clean_plugins, monkeypatch):
    ep = importlib.metadata.EntryPoint(name="mine", value="my_pruner", group=plugins.GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [ep] if group == plugins.GROUP else [])
    monkeypatch.setattr(plugins, "_ENTRY_POINTS_LOADED", False)
    assert plugins.load([]) == ["my_pruner"] and plugins.methods() == ["layer-magnitude"]


def test_a_plugin_method_has_its_own_colour(clean_plugins):
    from pai.compendium import plots

    plugins.load(["my_pruner"], entry_points=False)
    own = plots.color("layer-magnitude")
    assert own in plots.PLUGIN_PALETTE and own not in plots.PALETTE.values()
    assert plots.color("layer-magnitude") == own == plots.style_of("layer-magnitude")["color"]
    names = [f"method-{i}" for i in range(len(plots.PLUGIN_PALETTE))]
    assert len({plots.plugin_color(n, names) for n in names}) == len(names)  # distinct among plugins
    assert plots.color("synflow") == plots.PALETTE["synflow"]


def test_params_take_a_plugin_list_and_refuse_paths():
    from pai.compendium.params import check_params

    schema = {"methods": ["random"], "plugins": []}
    assert check_params({"methods": ["random"]}, schema, complete=True) == {"methods": ["random"]}  # optional
    assert check_params({"plugins": ["my_pruner"]}, {})["plugins"] == ["my_pruner"]  # any stage takes it
    with pytest.raises(UserError, match="plugins: 'examples/my_pruner.py' is not a module name"):
        check_params({"plugins": ["examples/my_pruner.py"]}, schema, where="params/x.yaml")


def test_notebook_runner_refuses_a_plugin_path_in_one_line(tmp_path, capsys):
    from pai.compendium.notebook import main

    nb = tmp_path / "nb.py"
    nb.write_text('# %% tags=["parameters"]\nx = 1\n\n# %%\nprint(x)\n')
    assert main([str(nb), str(tmp_path / "out.ipynb"), "-p", "plugins=[./evil.py]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'./evil.py' is not a module name" in err[0]


def test_sweep_imports_a_specs_files_plugin_only_when_trusted(clean_plugins, tmp_path, capsys):
    from pai.compendium import runs

    plugins.load(["my_pruner"], entry_points=False)
    spec = runs.make_spec(method="layer-magnitude", density=0.2, **TINY).to_dict()
    plugins._LOADED.clear()  # as in a fresh process: nothing imported
    plugins._PROVIDERS.clear()
    sys.modules.pop("my_pruner", None)
    (tmp_path / "specs.json").write_text(json.dumps([spec]))
    assert runs.main([str(tmp_path / "specs.json"), "--root", str(tmp_path / "runs")]) == 2
    assert "pass --plugin my_pruner if you trust it" in capsys.readouterr().err
    assert "my_pruner" not in sys.modules


def test_the_scoreboard_has_a_row_per_plugin_method():
    from pai.compendium.claims import evaluate, plugins as plugin_claims

    rows = [{"run_id": f"{m}{s}", "model": "m", "dataset": "fashion-mnist", "method": m, "target_density": d,
             "seed": s, "prune_seed": s, "final_test_acc": acc + 0.01 * s, **({"plugin": "my_pruner"} if m == "mine" else {})}
            for m, acc in (("mine", 0.8), ("random", 0.7)) for d in (0.1, 0.05) for s in range(3)]
    found = evaluate({"phew_path_kernel": {"results": pd.DataFrame(rows)}}, stages=["phew_path_kernel"])
    mine = [r for r in found if r.id in plugin_claims.CLAIM_IDS]
    assert [(r.id, r.evidence.variant, r.verdict) for r in mine] == [("plugin_ge_random_phew_path_kernel", "mine",
                                                                       "holds")]
    assert mine[0].evidence.estimate == pytest.approx(10.0)
    without = pd.DataFrame([r for r in rows if r["method"] == "random"])
    found = evaluate({"phew_path_kernel": {"results": without}}, stages=["phew_path_kernel"])
    assert not [r for r in found if r.id in plugin_claims.CLAIM_IDS]


@pytest.mark.slow
def test_the_readme_example_runs_through_a_tiny_notebook(clean_plugins, tmp_path, monkeypatch):
    """The README's worked example: the plugin listed in a stage's params, its folder on PYTHONPATH; two
    workers (spawned processes) run the specs, so they import it too."""
    from pai.compendium.claims import write
    from pai.compendium.notebook import run_notebook

    monkeypatch.setenv("PYTHONPATH", f"{EXAMPLES}:{ROOT}")
    params = yaml.safe_load((ROOT / "params" / "node_path_balance.yaml").read_text())
    params.update(plugins=["my_pruner"], methods=["random-erk", "layer-magnitude"], densities=[0.1],
                  variant_methods=[], geometry_densities=[0.1], seeds=[0], epochs=1, eval_every=1,
                  train_subset=512, test_subset=256, batch_size=64, workers=2,
                  out_dir=str(tmp_path / "runs" / "node_path_balance"),
                  fig_dir=str(tmp_path / "figures" / "node_path_balance"))
    run_notebook(ROOT / "notebooks" / "04_node_path_balance.py", tmp_path / "nb.ipynb", params, cwd=ROOT,
                 log_output=False, complete=True)
    table = pd.read_csv(tmp_path / "runs" / "node_path_balance" / "results.csv")
    mine = table[table.method == "layer-magnitude"]
    assert len(mine) == 1 and (mine.plugin == "my_pruner").all() and mine.final_test_acc.between(0, 1).all()
    captions = json.loads((tmp_path / "figures" / "node_path_balance" / "captions.json").read_text())
    assert all("layer-magnitude" in e["legend"] for e in captions if e["file"] in ("paths_vs_nodes",
                                                                                   "accuracy_vs_density"))
    geometry = pd.read_csv(tmp_path / "runs" / "node_path_balance" / "tables" / "geometry.csv")
    assert "layer-magnitude" in set(geometry.label)
    results = write(tmp_path / "CLAIMS.md", tmp_path / "runs", stages=["node_path_balance"])
    assert [r.evidence.variant for r in results if r.id == "plugin_ge_random_node_path_balance"] == ["layer-magnitude"]
    assert "variant: layer-magnitude" in (tmp_path / "CLAIMS.md").read_text()


def test_the_readme_shows_the_example_as_it_is():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Your own method", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert block.strip() in (EXAMPLES / "my_pruner.py").read_text()
    assert len((EXAMPLES / "my_pruner.py").read_text().splitlines()) <= 25
