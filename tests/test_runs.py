"""Runs are pure functions of their config: stable ids, cache hits, resumable sweeps, executors agree."""
import json

import pytest
import torch

from pai import runs

TINY = dict(model="lenet-300-100", dataset="digits", epochs=1, batch_size=64, lr=0.05, threads=1,
            schedule="constant")


def spec(method="random", density=0.2, seed=0, **kw):
    return runs.make_spec(method=method, density=density, prune_seed=seed, seed=seed, **{**TINY, **kw})


def test_run_id_is_pinned():
    # If this changes, every cached run directory of every user is orphaned: bump SPEC_VERSION knowingly.
    fixed = {"train": {"model": "lenet5", "epochs": 3}, "prune": {"method": "rreg", "density": 0.05, "seed": 1,
                                                                  "options": {}}, "metrics": True}
    assert runs.run_id(fixed) == runs.run_id(json.loads(json.dumps(fixed)))
    assert runs.run_id(fixed) == "6e75d41a7c315404"


def test_spec_order_does_not_matter_and_values_do():
    a = spec()
    b = json.loads(json.dumps(a, sort_keys=True))
    assert runs.run_id(a) == runs.run_id(b)
    assert runs.run_id(a) != runs.run_id(spec(density=0.3))


def test_finished_run_is_a_cache_hit(tmp_path, monkeypatch):
    s = spec()
    first = runs.run_one(s, tmp_path)
    assert (tmp_path / runs.run_id(s) / "mask.pt").exists()
    assert (tmp_path / runs.run_id(s) / "final.pt").exists()

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
    (tmp_path / runs.run_id(s) / runs.RECORD).unlink()  # as if killed after training, before the record
    again = runs.run_one(s, tmp_path)
    assert again["prune_seconds"] == first["prune_seconds"]


def test_fields_added_later_keep_old_run_ids_at_their_default():
    # made with the TrainConfig of before image_size and eval_every existed
    old = runs.make_spec(model="vgg11-w0.25", dataset="fashion-mnist", method="synflow", density=0.01,
                         prune_seed=2, seed=2, epochs=6, train_subset=10000)
    assert "image_size" not in old["train"] and "eval_every" not in old["train"]
    assert runs.run_id(old) == "7ed6e03eab881cc2"
    new = runs.make_spec(model="vgg11-w0.25", dataset="fashion-mnist", method="synflow", density=0.01,
                         prune_seed=2, seed=2, epochs=6, train_subset=10000, image_size=14, eval_every=6)
    assert new["train"]["image_size"] == 14 and runs.run_id(new) != runs.run_id(old)
