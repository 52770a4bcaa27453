"""Runs are pure functions of their config: stable ids, cache hits, resumable sweeps, executors agree."""
import json
import re

import pytest
import torch

from pai.compendium import runs
from pai.data import shape
from pai.models import initial_model

TINY = dict(model="lenet-300-100", dataset="digits", epochs=1, batch_size=64, lr=0.05, threads=1,
            schedule="constant")


def spec(method="random", density=0.2, seed=0, **kw):
    return runs.make_spec(method=method, density=density, prune_seed=seed, seed=seed, **{**TINY, **kw})


def test_run_id_is_pinned():
    # If this changes, every cached run directory of every user is orphaned: bump SPEC_VERSION knowingly.
    fixed = {"train": {"model": "lenet5", "epochs": 3}, "prune": {"method": "rreg", "density": 0.05, "seed": 1,
                                                                  "options": {}}, "metrics": True}
    assert runs.run_id(fixed) == runs.run_id(json.loads(json.dumps(fixed)))
    # rreg's default changed (revision 2, issue 11: the official graph model): its id moved from
    # 6e75d41a7c315404 on purpose, so a run cached under the old default is not reused.
    assert runs.run_id(fixed) == "c031c48f31d6fc74"


def test_spec_order_does_not_matter_and_values_do():
    a = spec()
    b = json.loads(json.dumps(a.to_dict(), sort_keys=True))
    assert runs.run_id(a) == runs.run_id(b) == runs.run_id(runs.RunSpec.from_dict(b))
    assert runs.run_id(a) != runs.run_id(spec(density=0.3))


def test_finished_run_is_a_cache_hit(tmp_path, monkeypatch):
    s = spec()
    first = runs.run_one(s, tmp_path)
    assert runs.run_dir(s, tmp_path).mask.exists()
    assert runs.run_dir(s, tmp_path).final.exists()

    def boom(*a, **k):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr("pai.train.train", boom)
    assert runs.run_one(s, tmp_path) == first


def test_interrupted_sweep_resumes(tmp_path, monkeypatch):
    specs = [spec(seed=0), spec(seed=1)]
    runs.sweep(specs[:1], tmp_path, progress=False)
    calls = []
    real = runs.run_one

    def counting(s, root, progress=False):
        calls.append(runs.run_id(s) if not runs.is_done(s, root) else None)
        return real(s, root, progress)

    monkeypatch.setattr(runs, "run_one", counting)
    results = runs.sweep(specs, tmp_path, progress=False)
    assert [c for c in calls if c] == [runs.run_id(specs[1])]
    assert [r["run_id"] for r in results] == [runs.run_id(s) for s in specs]


def _learning(result):
    """The deterministic part of a run's history (wall-clock fields differ run to run)."""
    return [(h["train_loss"], h["train_acc"], h["test_loss"], h["test_acc"]) for h in result["train"]["history"]]


def test_local_executor_with_workers_matches_sequential(tmp_path):
    specs = [spec(seed=s) for s in (0, 1)]
    one = runs.sweep(specs, tmp_path / "a", executor="local", workers=1, progress=False)
    two = runs.sweep(specs, tmp_path / "b", executor="local", workers=2, progress=False)
    assert [_learning(r) for r in one] == [_learning(r) for r in two]


def test_ray_executor_matches_local(tmp_path):
    pytest.importorskip("ray")
    import pandas as pd

    specs = [spec(seed=s) for s in (0, 1)]
    local = runs.sweep(specs, tmp_path / "local", executor="local", progress=False)
    ray = runs.sweep(specs, tmp_path / "ray", executor="ray", workers=2, progress=False)
    cols = ["run_id", "method", "density", "final_test_acc", "best_test_acc"]
    a = pd.DataFrame([runs.flatten_result(r) for r in local])[cols]
    b = pd.DataFrame([runs.flatten_result(r) for r in ray])[cols]
    pd.testing.assert_frame_equal(a, b)
    assert [_learning(r) for r in local] == [_learning(r) for r in ray]


def test_executors_map_any_function():
    from pai.compendium.executors import get_executor

    assert get_executor("local")(abs, [-1, 2, -3], progress=False) == [1, 2, 3]


def test_unknown_executor_lists_valid_names(tmp_path):
    with pytest.raises(KeyError, match="local"):
        runs.sweep([spec()], tmp_path, executor="slurm")


def _fake_result(generator, acc, rid):
    spec = {"train": {"model": "m", "dataset": "d", "seed": 0, "epochs": 1},
            "prune": {"method": "pags", "density": 0.01, "seed": 0, "options": {"generator": generator}}}
    return {"run_id": rid, "spec": spec, "density": 0.01, "prune_seconds": 1.0, "metrics": {"lambda": float("nan")},
            "train": {"best_test_acc": acc, "final_test_acc": acc, "wall_time_s": 1.0}}


def test_metrics_table_keeps_every_run_and_writes_valid_json(tmp_path):
    results = [_fake_result("snip", 0.5, "a"), _fake_result("grasp", 0.6, "b")]
    table = runs.write_tables(results, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())  # strict JSON: no NaN
    assert len(table) == 2 and len(metrics) == 2
    assert sorted(v["final_test_acc"] for v in metrics.values()) == [0.5, 0.6]


def test_prune_time_survives_a_resume(tmp_path):
    s = spec()
    first = runs.run_one(s, tmp_path)
    runs.run_dir(s, tmp_path).record.unlink()  # as if killed after training, before the record
    again = runs.run_one(s, tmp_path)
    assert again["prune_seconds"] == first["prune_seconds"]


# Ids computed with the code before the typed RunSpec (commit 66a50b0, make_spec returning dicts): the
# refactor must leave every cached run directory reachable.
_T = dict(epochs=5, batch_size=128, lr=0.05, weight_decay=5e-4, schedule="cosine", train_subset=None)
PINNED = [
    ("5737f75521d5ba72", dict(model="lenet-300-100", dataset="fashion-mnist", method="random", density=0.1,
                              prune_seed=0, seed=0, **_T)),
    ("7daa6f85f10a14dc", dict(model="lenet5", dataset="fashion-mnist", method="rreg", density=0.05, prune_seed=1,
                              seed=1, prune_options={"allocation": "uniform"}, epochs=3, train_subset=15000, lr=0.05,
                              weight_decay=5e-4, schedule="cosine")),
    ("d44751b080885f61", dict(model="vgg11-w0.25", dataset="cifar10", method="xnet", density=1.0, prune_seed=0, seed=0,
                              prune_options={"degree": 4}, epochs=10, milestones=(0.5, 0.75))),
    ("f160d56cc7115aff", dict(model="lenet-300-100", dataset="fashion-mnist", prune_seed=1, seed=1, **_T)),
    ("1e194a7a9fe3cb93", dict(model="lenet-300-100", dataset="fashion-mnist", method="pegs", density=0.01,
                              prune_seed=0, seed=0, prune_options={"generator": "snip", "candidates": 20,
                                                                   "pretrain_iterations": 200}, **_T)),
    ("66013d1e5e0e4105", dict(model="lenet-300-100", dataset="fashion-mnist", method="random-erk", density=0.05,
                              prune_seed=1, seed=1, regime="dst",
                              regime_options={"update_interval": 100, "drop_fraction": 0.5}, **_T)),
    ("03b1dbd044d6db91", dict(model="lenet-300-100", dataset="fashion-mnist", method="dense", density=0.01,
                              prune_seed=0, seed=0, regime="lth", regime_options={"rate": 0.4, "rewind_iteration": 0},
                              **_T)),
    ("aa10bd59b20686c0", dict(model="lenet5", dataset="digits", method="snip", density=0.2, prune_seed=0, seed=0,
                              threads=1, data_root="/tmp/x", metrics=False)),  # how-to-run fields are not in the id
]


# Ids before the faithful defaults of issue 11: a revised pruner (``pai.pruners.revised``) moves its
# specs' ids, every other spec keeps its id.
BEFORE_REVISION = {"rreg": "a0f0536273641045", "xnet": "c5c4d4f84597e236"}


def test_a_revised_default_moves_only_its_own_ids():
    from pai.compendium.spec import revisions

    for expected, kwargs in PINNED:
        s = runs.make_spec(**kwargs)
        method = kwargs.get("method", "dense")
        assert bool(revisions(s.to_dict())) == (method in BEFORE_REVISION)
        if method in BEFORE_REVISION:
            assert runs.run_id(s) != BEFORE_REVISION[method]
    pags = runs.make_spec(model="lenet5", dataset="digits", method="pags", density=0.1,
                          prune_options={"generator": "synflow"})
    assert revisions(pags.to_dict()) == [("synflow", 2)]  # a revised generator moves a meta-pruner's id


@pytest.mark.parametrize("expected,kwargs", PINNED, ids=[k["method"] if "method" in k else "dense" for _, k in PINNED])
def test_run_ids_of_existing_specs_are_pinned(expected, kwargs):
    s = runs.make_spec(**kwargs)
    assert runs.run_id(s) == s.id == expected
    assert runs.run_id(s.to_dict()) == expected  # the JSON form (spec.json, run.json) hashes the same
    assert runs.RunSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_spec_json_form_is_the_historical_one():
    s = runs.make_spec(model="lenet5", dataset="digits", method="random-erk", density=0.1, regime="dst",
                       regime_options={"update_interval": 4})
    d = s.to_dict()
    assert set(d) == {"train", "metrics", "prune", "regime"} and d["regime"] == {"kind": "dst",
                                                                                  "options": {"update_interval": 4}}
    assert d["prune"] == {"method": "random-erk", "density": 0.1, "seed": 0, "options": {}}
    assert "regime" not in runs.make_spec(model="lenet5", dataset="digits").to_dict()  # static: absent


def test_a_mapping_spec_hashes_as_given(tmp_path):
    partial = {"train": {**TINY, "seed": 0}, "prune": {"method": "random", "density": 0.2, "seed": 0, "options": {}}}
    assert runs.run_id(partial) != runs.run_id(runs.RunSpec.from_dict(partial))  # defaults would change it
    out = runs.run_one(partial, tmp_path)
    assert out["run_id"] == runs.run_id(partial) and (tmp_path / runs.run_id(partial) / "run.json").exists()


def test_spec_validation():
    with pytest.raises(ValueError, match="dense"):
        spec(regime="lth")
    with pytest.raises(KeyError, match="static"):
        spec(regime="bogus")
    with pytest.raises(ValueError, match="no options"):
        spec(regime_options={"rate": 0.5})


def test_dst_regime_runs_resumes_and_records_its_columns(tmp_path):
    s = spec(method="random-erk", density=0.2, regime="dst", regime_options={"update_interval": 4})
    first = runs.run_one(s, tmp_path)
    assert first["train"]["meta"]["dst"]["updates"] > 0
    rd = runs.run_dir(s, tmp_path)
    assert rd.dst_record.exists()
    assert not rd.dst_state.exists() and not rd.checkpoint.exists()  # resume-only state dropped once finished
    rd.record.unlink()  # killed after training: the trainer's result and dst.json are reused
    again = runs.run_one(s, tmp_path)
    assert again["train"]["final_test_acc"] == first["train"]["final_test_acc"]
    row = runs.flatten_result(again)
    assert row["method"] == "itop" and row["generator"] == "random-erk" and row["itop_rate"] > 0.2


def test_lth_regime_prunes_to_the_target_and_saves_the_ticket(tmp_path):
    s = spec(method="dense", density=0.2, regime="lth", regime_options={"rate": 0.6})
    out = runs.run_one(s, tmp_path)
    rd = runs.run_dir(s, tmp_path)
    assert [r["round"] for r in out["lth_rounds"]] == [0, 1, 2]
    assert out["density"] == pytest.approx(0.2, abs=1e-3) and out["metrics"]
    assert rd.mask.exists() and rd.final.exists() and rd.lth.is_dir()
    assert runs.flatten_result(out)["method"] == "lth"


def test_a_pruner_that_returns_its_state_gets_it_saved(tmp_path):
    s = spec(method="pegs", density=0.2, prune_options={"generator": "random", "candidates": 2,
                                                       "pretrain_iterations": 3})
    out = runs.run_one(s, tmp_path)
    rd = runs.run_dir(s, tmp_path)
    assert rd.init_state.exists() and out["metrics"]
    trained_from = torch.load(rd.init_state, weights_only=True)
    init = initial_model(TINY["model"], shape("digits"), 0).state_dict()
    assert any(not torch.equal(trained_from[k], init[k]) for k in init)  # θ_T, not θ_0


def test_fields_added_later_keep_old_run_ids_at_their_default():
    # made with the TrainConfig of before image_size and eval_every existed
    old = runs.make_spec(model="vgg11-w0.25", dataset="fashion-mnist", method="random-erk", density=0.01,
                         prune_seed=2, seed=2, epochs=6, train_subset=10000).to_dict()
    assert "image_size" not in old["train"] and "eval_every" not in old["train"]
    assert runs.run_id(old) == "716f37a31bc19c7c"
    new = runs.make_spec(model="vgg11-w0.25", dataset="fashion-mnist", method="random-erk", density=0.01,
                         prune_seed=2, seed=2, epochs=6, train_subset=10000, image_size=14, eval_every=6).to_dict()
    assert new["train"]["image_size"] == 14 and runs.run_id(new) != runs.run_id(old)


def test_a_finished_run_keeps_what_a_reader_needs_and_not_the_resume_state(tmp_path):
    s = spec(epochs=2)
    runs.run_one(s, tmp_path)
    rd = runs.run_dir(s, tmp_path)
    kept = sorted(p.name for p in rd.path.iterdir())
    assert kept == ["final.pt", "mask.pt", "metrics.json", "result.json", "run.json", "spec.json"]
    lth = spec(method="dense", density=0.4, regime="lth", regime_options={"rate": 0.6})
    runs.run_one(lth, tmp_path)
    left = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.name in ("checkpoint.pt", "dst_state.pt")]
    assert not left
    assert (runs.run_dir(lth, tmp_path).lth / "round_01" / "final.pt").exists()


@pytest.mark.parametrize("regime,options,needle", [
    ("dst", {"update_intervall": 5}, "did you mean 'update_interval'"),
    ("dst", {"update_interval": 0}, "update_interval must be an int >= 1"),
    ("dst", {"drop_fraction": "0.5"}, "drop_fraction must be a number"),
    ("dst", {"record_spectrum": "no"}, "record_spectrum must be true or false"),
    ("lth", {"rat": 0.2}, "unexpected keyword argument 'rat'"),
    ("lth", {"rate": 1.0}, "must be in (0, 1)"),
])
def test_a_bad_regime_option_stops_the_sweep_before_any_pruning(regime, options, needle, tmp_path, monkeypatch):
    from pai.utils.errors import UserError

    method = "dense" if regime == "lth" else "random"
    monkeypatch.setattr("pai.pruners.prune", lambda *a, **k: pytest.fail("pruned before the options were checked"))
    with pytest.raises(UserError, match=re.escape(needle)):
        runs.sweep([spec(method=method, regime=regime, regime_options=options)], tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.pt"))


def test_a_number_written_as_a_string_in_a_spec_file_is_refused(tmp_path, capsys):
    d = spec().to_dict()
    d["prune"]["density"] = "0.2"  # hashed as written, it would be a second run of spec()
    (tmp_path / "specs.json").write_text(json.dumps([d]))
    assert runs.main([str(tmp_path / "specs.json"), "--root", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "prune.density is written as a string ('0.2')" in err and not list(tmp_path.rglob("run.json"))


def test_sweep_refuses_zero_workers_before_any_run(tmp_path):
    from pai.utils.errors import UserError

    with pytest.raises(UserError, match="workers must be an int >= 1"):
        runs.sweep([spec()], tmp_path, workers=0, progress=False)
    assert not list(tmp_path.rglob("run.json"))
