"""Fault injection: bad input files, kills at chosen points, concurrent writers, typos, divergence.

Every case asserts either one clear error line (exit 2, naming the file or value, before any work)
or the unchanged result, and that no file is half-written.  Kills are ``SIGKILL`` sent by the process
itself at a named point (``PAI_FAULT=<point>:<n>``, :mod:`pai.utils.faults`), never a guess at a time; the
runs are tiny (LeNet-300-100 on scikit-learn's digits, a few epochs), so each case takes seconds.
Tests marked ``needs_degenerate_checks`` need ``pai.pruners.checks`` (the degenerate-mask checks of
``pai.prune``) and are skipped without it.
"""
import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pai.data as D
from pai.compendium import notebook as nb
from pai.compendium import runs as R
from pai.train.checkpoint import load_checkpoint
from pai.train.config import TrainConfig
from pai.utils.errors import TrainingDiverged, UserError
from pai.utils.io import clean_stale_temps, save_json, save_torch, temp_prefix
from pai.masks import load_mask, save_mask
from pai.utils.owned import MARKER, mark
from pai.metrics import cli as metrics_cli
from pai.pruners import cli as prune_cli
from pai.train.rundir import RunDir
from pai.train import main as train_main, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "lenet-300-100", "--dataset", "digits", "--epochs", "3", "--batch-size", "64", "--lr", "0.05",
        "--device", "cpu", "--threads", "1", "--no-progress"]
TINY_CFG = dict(model="lenet-300-100", dataset="digits", epochs=3, batch_size=64, lr=0.05, device="cpu", threads=1)
needs_degenerate_checks = pytest.mark.skipif(importlib.util.find_spec("pai.pruners.checks") is None,
                                             reason="needs pai.prune's degenerate-mask checks (pai.pruners.checks)")


def error_line(capsys, *needles) -> str:
    """The one stderr line of a refused command (the data-source note aside), holding every needle."""
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("pai.data:")]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0] and "error" in lines[0]
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in Path(folder).rglob("*.tmp")]


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"not a file of this kind\n" * 8}[how])


def subprocess_env(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}
    env.pop("PAI_FAULT", None)
    env.update(extra)
    return env


def pai_cli(args, cwd, timeout=300, **env):
    return subprocess.run([sys.executable, "-m", "pai", *args], cwd=cwd, env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- input files


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_bad_mask_file_is_one_line_before_any_work(how, mask_file, tmp_path, capsys):
    bad = tmp_path / "mask.pt"
    bad.write_bytes(mask_file.read_bytes())
    corrupt(bad, how)
    out = tmp_path / "run"
    assert train_main([*TINY, "--mask", str(bad), "--out", str(out)]) == 2
    error_line(capsys, bad, "mask file", "python -m pai prune")
    assert not (out / "checkpoint.pt").exists() and not (out / "result.json").exists()
    assert metrics_cli.main(["--mask", str(bad), "--model", "lenet-300-100", "--dataset", "digits"]) == 2
    error_line(capsys, bad)


def test_mask_of_another_model_is_refused_before_training(tmp_path, capsys):
    other = tmp_path / "fashion.pt"  # LeNet-300-100 on 28x28 inputs, trained here on 8x8 digits
    assert prune_cli.main(["--model", "lenet-300-100", "--method", "random", "--density", "0.3", "--quiet",
                           "--out", str(other)]) == 0
    capsys.readouterr()
    assert train_main([*TINY, "--mask", str(other), "--out", str(tmp_path / "r")]) == 2
    error_line(capsys, other, "does not fit lenet-300-100 on digits")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def _interrupted_run(tmp_path: Path) -> Path:
    """A run directory holding the checkpoint of epoch 1 of 3 (a callback stops the run there)."""
    def stop(event, state):
        if event == "epoch_end" and state.epoch == 2:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TINY_CFG), run_dir=run, progress=False, callbacks=[stop])
    assert load_checkpoint(run)["epoch"] == 1
    return run


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_bad_checkpoint_is_one_line_and_kept(how, tmp_path, capsys):
    run = _interrupted_run(tmp_path)
    corrupt(RunDir(run).checkpoint, how)
    before = RunDir(run).checkpoint.read_bytes()
    assert train_main([*TINY, "--out", str(run)]) == 2
    error_line(capsys, "checkpoint.pt", "delete it to restart")
    assert RunDir(run).checkpoint.read_bytes() == before and not RunDir(run).result.exists()


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_bad_run_records_name_the_file(how, tmp_path):
    spec = R.make_spec(model="lenet-300-100", dataset="digits", epochs=1, batch_size=64, lr=0.05, device="cpu",
                       threads=1, metrics=False)
    R.run_one(spec, tmp_path)
    rd = R.run_dir(spec, tmp_path)
    corrupt(rd.record, how)
    with pytest.raises(UserError, match="run record .*run.json.*delete"):
        R.run_one(spec, tmp_path)
    corrupt(rd.result, how)
    with pytest.raises(UserError, match="result.json"):
        train(spec.train, run_dir=rd.path, progress=False)


@pytest.mark.parametrize("text", ["epochs: [1\n", "epochs: 1\n  lr: 2\n", "{{{"])
def test_broken_yaml_config_names_the_line(text, tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(text)
    assert train_main([*TINY, "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")]) == 2
    error_line(capsys, "c.yaml", "not valid YAML")


@pytest.mark.parametrize("content,needle", [
    ("", "is empty"), ('[{"train": {"model": "lenet-300-100"', "not valid JSON"), ("garbage", "not valid JSON"),
    ('{"train": {}}', "non-empty JSON list"), ("[]", "non-empty JSON list"), ("[3]", "spec 0: a spec is a mapping"),
    ('[{"train": {"model": "lenet-300-100", "dataset": "digits"}}]', "needs 'train' and 'prune'"),
    ('[{"train": {"model": "lenet", "dataset": "digits"}, "prune": {}}]', "unknown model 'lenet'"),
    ('[{"train": {"model": "lenet5", "dataset": "digts"}, "prune": {}}]', "unknown dataset 'digts'"),
    ('[{"train": {"model": "lenet5", "dataset": "digits", "epoch": 2}, "prune": {}}]', "did you mean 'epochs'"),
    ('[{"train": {"model": "lenet5", "dataset": "digits", "nesterov": "no"}, "prune": {}}]', "nesterov must be"),
    ('[{"train": {"model": "lenet5", "dataset": "digits"}, "prune": {"method": "synflo", "density": 0.1}}]',
     "unknown pruner 'synflo'"),
    ('[{"train": {"model": "lenet5", "dataset": "digits"}, "prune": {"method": "random", "density": 0}}]',
     "density must be in (0, 1]"),
    ('[{"train": {"model": "lenet5", "dataset": "digits"}, "prune": {"method": "random", "density": 0.1, '
     '"options": {"iteratons": 3}}}]', "has no option 'iteratons'"),
    ('[{"train": {"model": "lenet5", "dataset": "digits"}, "prune": {"method": "random", "densty": 0.1}}]',
     "densty"),
    ('[{"train": {"model": "lenet5", "dataset": "digits"}, "prune": {}}, '
     '{"train": {"model": "lenet5", "dataset": "digits"}, "prune": {}}]', "spec 1 is the same run as spec 0"),
])
def test_every_sweep_input_error_is_one_line_before_any_run(content, needle, tmp_path, capsys):
    (tmp_path / "specs.json").write_text(content)
    assert R.main([str(tmp_path / "specs.json"), "--root", str(tmp_path / "root")]) == 2
    error_line(capsys, needle)
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())


def test_sweep_refuses_bad_options_and_outputs(tmp_path, capsys):
    specs = tmp_path / "specs.json"
    specs.write_text('[{"train": {"model": "lenet5", "dataset": "digits"}, "prune": {}}]')
    assert R.main([str(specs), "--root", str(tmp_path / "r"), "--executor", "slurm"]) == 2
    error_line(capsys, "unknown executor 'slurm'", "local")
    assert R.main([str(specs), "--root", str(specs)]) == 2
    error_line(capsys, "is a file")
    assert R.main([str(specs), "--root", "/proc/pai-cannot-write"]) == 2
    error_line(capsys, "cannot write")
    assert R.main([str(tmp_path / "missing.json"), "--root", str(tmp_path / "r")]) == 2
    error_line(capsys, "missing.json", "does not exist")
    assert R.main([str(specs)]) == 2
    error_line(capsys, "--root")


def _fake_idx(tmp_path: Path, gz: bool) -> Path:
    from test_data import write_fake_mnist

    write_fake_mnist(tmp_path / "store" / "fashion-mnist", gz=gz)
    return tmp_path / "store"


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_bad_idx_data_names_the_file(gz, how, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PAI_DATA", raising=False)
    store = _fake_idx(tmp_path, gz)
    bad = store / "fashion-mnist" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    corrupt(bad, how)
    with pytest.raises(D.DataCorruptError, match=str(bad)):
        D.load_dataset("fashion-mnist", root=store)
    capsys.readouterr()
    out = tmp_path / "run"
    assert train_main([*TINY, "--dataset", "fashion-mnist", "--data-root", str(store), "--out", str(out)]) == 2
    error_line(capsys, bad, "fetch the dataset again")
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage", "not-a-dict", "no-labels"])
def test_bad_cifar_pickle_names_the_file(how, tmp_path, monkeypatch):
    from test_data import write_cifar

    monkeypatch.delenv("PAI_DATA", raising=False)
    folder = tmp_path / "store" / "cifar-10-batches-py"
    write_cifar(folder, [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels", 10)
    bad = folder / "data_batch_3"
    if how == "not-a-dict":
        bad.write_bytes(pickle.dumps([1, 2, 3]))
    elif how == "no-labels":
        bad.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    else:
        corrupt(bad, how)
    with pytest.raises(D.DataCorruptError, match=str(bad)):
        D.load_dataset("cifar10", root=tmp_path / "store")


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_bad_tiny_imagenet_cache_is_rebuilt_unchanged(how, tmp_path, monkeypatch):
    import pai.data.tiny_imagenet as T
    from test_tiny_imagenet import write_tiny_imagenet

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PAI_CACHE", raising=False)
    folder = write_tiny_imagenet(tmp_path)
    T.load_arrays.cache_clear()
    good = T.load_arrays(folder.resolve(), T.stamp(folder.resolve()))
    cache = T.cache_path(folder.resolve())
    corrupt(cache, how)
    T.load_arrays.cache_clear()
    with pytest.warns(UserWarning, match="unreadable Tiny-ImageNet cache"):
        again = T.load_arrays(folder.resolve(), T.stamp(folder.resolve()))
    T.load_arrays.cache_clear()
    assert all(np.array_equal(good[k], again[k]) for k in good)
    assert no_temp_files(cache.parent)


# ----------------------------------------------------------------------------- values and outputs


@pytest.mark.parametrize("args,needle", [
    (["--lr", "nan"], "lr must be a finite number"), (["--label-smoothing", "3"], "label_smoothing must be"),
    (["--momentum", "1.5"], "momentum must be"), (["--model", "lenet"], "valid names: "),
    (["--dataset", "cifar"], "unknown dataset 'cifar'"), (["--epochs", "two"], "invalid int value"),
    (["--schedule", "linear"], "schedule must be one of"),
])
def test_bad_train_values_are_one_line(args, needle, tmp_path, capsys):
    assert train_main([*TINY, *args, "--out", str(tmp_path / "r")]) == 2
    error_line(capsys, needle)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    assert train_main([*TINY, "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    error_line(capsys, "no CUDA GPU", "--device cpu")


def test_outputs_checked_before_any_work(mask_file, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert train_main([*TINY, "--out", str(tmp_path / "file")]) == 2
    error_line(capsys, "is a file, not a folder")
    assert train_main([*TINY, "--out", "/proc/pai-cannot-write/run"]) == 2
    error_line(capsys, "cannot write --out")
    prune = ["--model", "lenet-300-100", "--method", "random", "--density", "0.1", "--quiet"]
    assert prune_cli.main([*prune, "--out", str(tmp_path)]) == 2
    error_line(capsys, "is a folder")
    assert prune_cli.main([*prune, "--out", "/proc/pai-cannot-write/m.pt"]) == 2
    error_line(capsys, "cannot write --out")
    before = mask_file.read_bytes()
    assert metrics_cli.main(["--mask", str(mask_file), "--model", "lenet-300-100", "--json", str(mask_file)]) == 2
    error_line(capsys, "also an input")
    assert mask_file.read_bytes() == before


def test_help_names_the_valid_choices(capsys):
    for main, names in ((train_main, ["lenet5", "resnet20", "digits", "cifar10", "cosine"]),
                        (prune_cli.main, ["synflow", "rreg", "phew", "lenet-300-100", "fashion-mnist"]),
                        (metrics_cli.main, ["resnet20"])):
        assert main(["--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert all(n in text for n in names), names


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    def boom(*a, **k):
        raise ZeroDivisionError("synthetic bug")

    monkeypatch.setattr("pai.train.train", boom)
    assert train_main([*TINY, "--out", str(tmp_path / "r")]) == 1
    error_line(capsys, "internal error: ZeroDivisionError", "--debug")
    with pytest.raises(ZeroDivisionError):
        train_main([*TINY, "--out", str(tmp_path / "r"), "--debug"])


@needs_degenerate_checks
@pytest.mark.parametrize("extra,needle", [
    (["--method", "random", "--density", "1e-9"], "keeps no weight"),
    (["--method", "rreg", "--density", "0.05", "--option", "degree=1000"], "degenerate"),
    (["--model", "resnet56-w0.25", "--in-channels", "3", "--image-size", "32", "--method", "synflow",
      "--density", "0.01", "--option", "dtype=float32"], "dtype=float64"),
])
def test_degenerate_masks_are_one_line_and_write_nothing(extra, needle, tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = ["--model", "lenet-300-100", "--quiet", "--out", str(out), *extra]
    assert prune_cli.main(args) == 2
    error_line(capsys, needle)
    assert not out.exists() and no_temp_files(tmp_path)


# ----------------------------------------------------------------------------- divergence


def test_diverged_training_stops_is_marked_and_never_cached(tmp_path, capsys):
    cfg = TrainConfig(**{**TINY_CFG, "lr": 1e6})
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as e:
        train(cfg, run_dir=run, progress=False)
    assert e.value.epoch == 1 and "nan" in e.value.reason
    note = json.loads(RunDir(run).diverged.read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    assert note["epoch"] == 1 and note["history"][0]["train_loss"] is None
    assert note["history"][0]["train_loss_reason"] == "nan"
    assert not RunDir(run).result.exists() and not RunDir(run).checkpoint.exists()
    with pytest.raises(TrainingDiverged):  # a rerun retries (and diverges again), it is not a cache hit
        train(cfg, run_dir=run, progress=False)
    assert train_main([*TINY, "--lr", "1e6", "--out", str(run)]) == 3
    assert "diverged at epoch 1" in capsys.readouterr().err


def test_sweeps_report_diverged_runs_and_tables_show_them(tmp_path, capsys):
    train_cfg = {**TINY_CFG, "epochs": 2}
    specs = [{"train": train_cfg, "prune": {"method": "dense", "density": 1.0, "seed": 0, "options": {}},
              "metrics": False},
             {"train": {**train_cfg, "lr": 1e6}, "prune": {"method": "dense", "density": 1.0, "seed": 0,
                                                           "options": {}}, "metrics": False}]
    (tmp_path / "specs.json").write_text(json.dumps(specs))
    assert R.main([str(tmp_path / "specs.json"), "--root", str(tmp_path / "root")]) == 3
    out = capsys.readouterr()
    assert "1 of 2 runs diverged" in out.err and out.out.count("diverged") == 1 and "finished" in out.out
    records = R.sweep(specs, tmp_path / "root")
    assert [r["status"] for r in records] == ["finished", "diverged"]
    assert not R.run_dir(specs[1], tmp_path / "root").record.exists()  # never a cache hit
    table = R.write_tables(records, tmp_path)
    assert table["status"].tolist() == ["finished", "diverged"] and table["diverged_epoch"].iloc[1] == 1
    assert np.isnan(table["final_test_acc"].iloc[1])
    metrics = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=pytest.fail)
    assert [m.get("diverged_epoch") for m in metrics.values()] == [None, 1]


def test_json_is_strict_everywhere(tmp_path):
    save_json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}}, tmp_path / "x.json")
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "a_reason": "nan", "b": [1.0, None], "c": {"d": None, "d_reason": "-inf"}}


# ----------------------------------------------------------------------------- bytes and litter


def test_identical_inputs_give_identical_bytes(tmp_path):
    paths = []
    for name in ("a.pt", "bb.pt"):
        assert prune_cli.main(["--model", "lenet5", "--method", "synflow", "--density", "0.05", "--quiet",
                               "--out", str(tmp_path / name)]) == 0
        paths.append(tmp_path / name)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    state = {"w": torch.arange(6.0).view(2, 3)}
    save_torch(state, tmp_path / "x.pt")
    save_torch(state, tmp_path / "yyyy.pt")
    assert (tmp_path / "x.pt").read_bytes() == (tmp_path / "yyyy.pt").read_bytes()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_litter_of_killed_writers_is_cleaned_and_live_writers_kept(tmp_path):
    dead = _dead_pid()
    host = temp_prefix("x").split(".")[2]
    stale_file = tmp_path / f".mask.pt.{host}.{dead}.abcd1234.tmp"
    stale_file.write_bytes(b"")
    stale_dir = tmp_path / f".notebook.ipynb.{host}.{dead}.run.tmp"
    (stale_dir / "sub").mkdir(parents=True)
    mark(stale_dir)  # pai marks the temp folders it makes
    live = tmp_path / (temp_prefix("mask.pt") + "efgh5678.tmp")  # this process: still writing
    live.write_bytes(b"")
    removed = clean_stale_temps(tmp_path)
    assert set(removed) == {stale_file, stale_dir} and live.exists()
    stale_file.write_bytes(b"")
    save_mask({"w": torch.ones(2, 2, dtype=torch.bool)}, tmp_path / "mask.pt")  # a write cleans its own litter
    assert not stale_file.exists() and live.exists()


def test_run_start_cleans_the_litter_of_a_killed_attempt(tmp_path):
    spec = R.make_spec(model="lenet-300-100", dataset="digits", epochs=1, batch_size=64, lr=0.05, device="cpu",
                       threads=1, metrics=False)
    rd = R.run_dir(spec, tmp_path)
    rd.path.mkdir(parents=True)
    host, dead = temp_prefix("x").split(".")[2], _dead_pid()
    (rd.path / f".checkpoint.pt.{host}.{dead}.zzzz9999.tmp").write_bytes(b"")
    R.run_one(spec, tmp_path)
    assert no_temp_files(tmp_path) and rd.is_done()


# ----------------------------------------------------------------------------- kill -9 and resume


def _final_state(run: Path):
    result = json.loads(RunDir(run).result.read_text())
    curve = [(e["train_loss"], e["test_acc"]) for e in result["history"]]
    return RunDir(run).final.read_bytes(), curve


@pytest.mark.parametrize("point", ["epoch_end:2", "before_rename:2"])
def test_train_killed_then_resumed_equals_an_uninterrupted_run(point, tmp_path, capsys):
    assert train_main([*TINY, "--out", str(tmp_path / "ref")]) == 0
    killed = pai_cli(["train", *TINY, "--out", "run"], cwd=tmp_path, PAI_FAULT=point)
    assert killed.returncode == -9, killed.stderr
    run = tmp_path / "run"
    assert not RunDir(run).result.exists()
    epoch = load_checkpoint(run)["epoch"]
    assert epoch == (2 if point.startswith("epoch_end") else 1)
    if point.startswith("before_rename"):
        assert not no_temp_files(run)  # the complete temp file of the killed write
    capsys.readouterr()
    assert train_main([*TINY, "--out", str(run)]) == 0
    assert f"resumed {run} from epoch {epoch} of 3" in capsys.readouterr().err
    assert _final_state(run) == _final_state(tmp_path / "ref") and no_temp_files(run)
    assert train_main([*TINY, "--out", str(run)]) == 0
    assert "already finished, reused" in capsys.readouterr().out


def _sweep_specs(tmp_path: Path) -> Path:
    base = {**TINY_CFG, "epochs": 2}
    specs = [{"train": base, "prune": {"method": m, "density": d, "seed": 0, "options": {}}, "metrics": False}
             for m, d in (("random", 0.3), ("magnitude", 0.3), ("random", 0.1))]
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(specs))
    return path


def _sweep_outcome(root: Path, specs):
    out = []
    for s in specs:
        rd = R.run_dir(s, root)
        rec = json.loads(rd.record.read_text())
        out.append((rec["density"], [(e["train_loss"], e["test_acc"]) for e in rec["train"]["history"]],
                    rd.final.read_bytes(), {k: v.tolist() for k, v in load_mask(rd.mask).items()}))
    return out


def test_sweep_killed_twice_then_resumed_equals_an_uninterrupted_sweep(tmp_path, capsys):
    specs_file = _sweep_specs(tmp_path)
    specs = json.loads(specs_file.read_text())
    R.sweep(specs, tmp_path / "ref", progress=False)
    for point in ("run_done:2", "pruned:1"):  # after the second run; then just after the third run's pruning
        killed = pai_cli(["sweep", str(specs_file), "--root", "root"], cwd=tmp_path, PAI_FAULT=point)
        assert killed.returncode == -9, killed.stderr
    done = [R.is_done(s, tmp_path / "root") for s in specs]
    assert done == [True, True, False] and R.run_dir(specs[2], tmp_path / "root").mask.exists()
    assert R.main([str(specs_file), "--root", str(tmp_path / "root")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[-1] for r in rows] == ["reused", "reused", "finished"]
    assert _sweep_outcome(tmp_path / "root", specs) == _sweep_outcome(tmp_path / "ref", specs)
    assert no_temp_files(tmp_path / "root")


def test_two_writers_on_one_run_directory(tmp_path):
    specs_file = _sweep_specs(tmp_path)
    specs = json.loads(specs_file.read_text())[:1]
    specs_file.write_text(json.dumps(specs))
    cmd = [sys.executable, "-m", "pai", "sweep", str(specs_file), "--root", "root"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    R.sweep(specs, tmp_path / "ref", progress=False)
    assert _sweep_outcome(tmp_path / "root", specs) == _sweep_outcome(tmp_path / "ref", specs)
    assert no_temp_files(tmp_path / "root")


# ----------------------------------------------------------------------------- notebooks


STAGE = ROOT / "notebooks" / "03_phew_path_kernel.py"


@pytest.mark.parametrize("edit,needle", [
    ({"epoch": 2}, "unknown parameter 'epoch' (did you mean 'epochs'?)"),
    ({"nesterov": "no"}, "nesterov must be true or false"),
    ({"densities": [0.1, "0.05x"]}, "densities[1] must be a number"),
    ({"epochs": {"lenet-300-100": 2.5}}, "epochs[lenet-300-100] must be an integer"),
    ({"focus_density": "__drop__"}, "missing parameter focus_density"),
])
def test_params_typos_stop_a_stage_before_its_kernel_starts(edit, needle, tmp_path, capsys):
    import yaml

    params = yaml.safe_load((ROOT / "params" / "phew_path_kernel.yaml").read_text())
    for k, v in edit.items():
        params.pop(k) if v == "__drop__" else params.__setitem__(k, v)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "nb.ipynb"
    assert nb.main([str(STAGE), str(out), "--params", str(tmp_path / "p.yaml")]) == 2
    error_line(capsys, needle)
    assert not out.exists()


@pytest.mark.parametrize("text,needle", [("methods: [phew\n", "not valid YAML at line 2"),
                                         ("- 1\n- 2\n", "must hold a mapping"), ("", "missing parameters")])
def test_bad_params_files_are_one_line(text, needle, tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(text)
    assert nb.main([str(STAGE), str(tmp_path / "nb.ipynb"), "--params", str(tmp_path / "p.yaml")]) == 2
    error_line(capsys, needle)


def test_committed_params_pass_the_check():
    for src, stage in (("01_expander_sweep", "expander_sweep"), ("02_full_spectrum", "full_spectrum"),
                       ("03_phew_path_kernel", "phew_path_kernel"), ("04_node_path_balance", "node_path_balance")):
        schema = nb.parameter_schema(ROOT / "notebooks" / f"{src}.py")
        files = [ROOT / "params" / f"{stage}.yaml", *sorted((ROOT / "params" / "profiles").glob(f"*/{stage}.yaml"))]
        assert len(files) >= 3, files  # the live file, cpu and paper at least
        for path in files:
            nb.check_params(nb.load_params(path), schema, complete=True)


TOY = '''# %% tags=["parameters"]
fig_dir = "figs"
fail = False
extra = False

# %%
import os
from pathlib import Path
Path(fig_dir, "a.txt").write_text("new " + os.environ.get("OMP_WAIT_POLICY", "unset"))
if extra:
    Path(fig_dir, "b.txt").write_text("a figure of this run only")
if fail:
    raise RuntimeError("stage failed half-way")
'''


def test_a_failed_stage_leaves_its_previous_figures_untouched(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    src = tmp_path / "toy.py"
    src.write_text(TOY)
    figs = tmp_path / "figs"
    nb.run_notebook(src, tmp_path / "out.ipynb", {"extra": True}, cwd=tmp_path, log_output=False)
    assert (figs / "a.txt").read_text() == "new PASSIVE"  # the kernel waits passively
    (figs / "a.txt").write_text("old")
    (figs / "b.txt").write_text("old too")
    assert nb.main([str(src), str(tmp_path / "out.ipynb"), "-p", "fail=true", "-p", f"fig_dir={figs}"]) == 1
    assert "failed in cell" in capsys.readouterr().err
    assert sorted(p.name for p in figs.iterdir()) == [".pai-owned", "a.txt", "b.txt"]
    assert (figs / "a.txt").read_text() == "old"
    assert no_temp_files(tmp_path)
    nb.run_notebook(src, tmp_path / "out.ipynb", {"fig_dir": str(figs)}, cwd=tmp_path, log_output=False)
    assert sorted(p.name for p in figs.iterdir()) == [".pai-owned", "a.txt"]  # swapped in whole: no stale figure


def test_a_kill_inside_the_figure_swap_is_undone(tmp_path):
    figs = tmp_path / "figs"
    host, dead = temp_prefix("x").split(".")[2], _dead_pid()
    moved = tmp_path / f".figs.{host}.{dead}.old.tmp"  # killed between the two renames of the swap
    moved.mkdir()
    (moved / "a.png").write_text("previous")
    mark(moved)
    mark(tmp_path / f".figs.{host}.{dead}.staging.tmp")  # pai marks the folders it makes
    nb.recover_figures(figs)
    assert (figs / "a.png").read_text() == "previous" and no_temp_files(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".figs")]


# ----------------------------------------------------------------------------- pai replaces only what it made


def _fake_checkout(tmp_path: Path, monkeypatch) -> Path:
    """A checkout (``.git``) in tmp, with the working directory in ``work/`` and $HOME at ``home/``; every
    folder of it carries pai's marker, so only the location itself can be the reason for a refusal."""
    repo = tmp_path / "outer" / "repo"
    for sub in (".git", "work", "home"):
        (repo / sub).mkdir(parents=True)
    for folder in (tmp_path / "outer", repo, repo / "work", repo / "home"):
        mark(folder, files=[])
    monkeypatch.chdir(repo / "work")
    monkeypatch.setenv("HOME", str(repo / "home"))
    return repo


@pytest.mark.parametrize("where,needle", [
    ("repo", "the checkout root"), ("repo/work", "the working directory"), ("repo/home", "$HOME"),
    ("outer", "a parent of the repository"),
])
def test_fig_dir_never_replaces_a_protected_location(where, needle, tmp_path, capsys, monkeypatch):
    repo = _fake_checkout(tmp_path, monkeypatch)
    target = tmp_path / "outer" if where == "outer" else tmp_path / "outer" / where
    src = tmp_path / "toy.py"
    src.write_text(TOY)
    assert nb.main([str(src), str(tmp_path / "out.ipynb"), "-p", f"fig_dir={target}"]) == 2
    error_line(capsys, "fig_dir", needle)
    assert (target / MARKER).is_file() and (repo / ".git").is_dir() and not (tmp_path / "out.ipynb").exists()


def test_fig_dir_must_be_a_folder_pai_made_holding_only_its_files(tmp_path, capsys):
    src = tmp_path / "toy.py"
    src.write_text(TOY)
    out = str(tmp_path / "out.ipynb")
    mine = tmp_path / "my_folder"  # a user's folder
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert nb.main([str(src), out, "-p", f"fig_dir={mine}"]) == 2
    error_line(capsys, str(mine), "not made by pai", MARKER)
    figures = tmp_path / "figures"  # every stage's figures and CLAIMS.md: not one stage's folder
    (figures / "stage").mkdir(parents=True)
    (figures / "CLAIMS.md").write_text("verdicts")
    mark(figures / "stage", files=[])
    assert nb.main([str(src), out, "-p", f"fig_dir={figures}"]) == 2
    error_line(capsys, "not made by pai")
    nb.run_notebook(src, out, {"fig_dir": str(figures / "stage")}, cwd=tmp_path, log_output=False)
    (figures / "stage" / "notes.txt").write_text("a user's note in pai's folder")
    assert nb.main([str(src), out, "-p", f"fig_dir={figures / 'stage'}"]) == 2
    error_line(capsys, "holds files pai did not write", "notes.txt")
    assert (mine / "thesis.tex").is_file() and (figures / "CLAIMS.md").is_file()
    assert (figures / "stage" / "notes.txt").is_file() and (figures / "stage" / "a.txt").is_file()
    (figures / "stage" / "notes.txt").unlink()
    restored = tmp_path / "restored"  # what DVC restores from its cache: the marker is inside the output
    shutil.copytree(figures / "stage", restored)
    assert nb.main([str(src), out, "-p", f"fig_dir={restored}", "-p", "extra=true"]) == 0
    assert sorted(p.name for p in restored.iterdir()) == [MARKER, "a.txt", "b.txt"]
    assert sorted((restored / MARKER).read_text().split("\n")[3:]) == ["", "a.txt", "b.txt"]


def test_the_executed_notebook_overwrites_only_a_notebook_pai_executed(tmp_path, capsys):
    src = tmp_path / "toy.py"
    src.write_text(TOY)
    figs = str(tmp_path / "figs")
    assert nb.main([str(src), str(src), "-p", f"fig_dir={figs}"]) == 2  # would have written JSON over the source
    error_line(capsys, "is also an input")
    assert src.read_text() == TOY
    assert nb.main([str(src), str(tmp_path / "out.py"), "-p", f"fig_dir={figs}"]) == 2
    error_line(capsys, "must end in .ipynb")
    theirs = tmp_path / "analysis.ipynb"  # a user's own notebook (never executed by pai)
    theirs.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert nb.main([str(src), str(theirs), "-p", f"fig_dir={figs}"]) == 2
    error_line(capsys, "not a notebook pai executed")
    assert "cells" in theirs.read_text() and not Path(figs).exists()
    out = tmp_path / "out.ipynb"
    assert nb.main([str(src), str(out), "-p", f"fig_dir={figs}"]) == 0
    assert json.loads(out.read_text())["metadata"]["pai"] == {"source": "toy.py"}
    assert nb.main([str(src), str(out), "-p", f"fig_dir={figs}"]) == 0  # its own output: overwritten
    older = json.loads(out.read_text())  # one written before the entry existed: papermill's record tells
    del older["metadata"]["pai"]
    out.write_text(json.dumps(older))
    assert nb.main([str(src), str(out), "-p", f"fig_dir={figs}"]) == 0


def test_a_figure_folder_dvc_restores_from_its_cache_is_still_pais(tmp_path):
    from pai.utils.owned import check_replaceable

    dvc = Path(sys.executable).with_name("dvc")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(dvc), "init", "-q"], cwd=tmp_path, check=True, env=env)
    figs = tmp_path / "figures" / "stage"
    figs.mkdir(parents=True)
    (figs / "a.png").write_bytes(b"png")
    mark(figs)
    subprocess.run([str(dvc), "add", "-q", "figures/stage"], cwd=tmp_path, check=True, env=env)
    shutil.rmtree(figs)
    subprocess.run([str(dvc), "checkout", "-q"], cwd=tmp_path, check=True, env=env)
    assert (figs / MARKER).is_file() and check_replaceable(figs) == figs


def test_stale_temp_folders_are_removed_only_with_the_marker(tmp_path):
    host, dead = temp_prefix("x").split(".")[2], _dead_pid()
    theirs = tmp_path / f".data.{host}.{dead}.backup.tmp"  # a temp-looking folder pai did not make
    theirs.mkdir()
    (theirs / "keep.csv").write_text("1,2")
    ours = tmp_path / f".data.{host}.{dead}.run.tmp"
    mark(ours)
    assert clean_stale_temps(tmp_path) == [ours]
    assert (theirs / "keep.csv").is_file()


@pytest.mark.parametrize("where,needle", [
    ("foreign", "holds files that are not run directories"), (".", "the working directory"),
    ("checkout", "the checkout root"), ("home", "$HOME"),
])
def test_sweep_root_must_be_pais(where, needle, tmp_path, capsys, monkeypatch):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "CLAIMS.md").write_text("verdicts")
    (tmp_path / "checkout" / ".git").mkdir(parents=True)
    (tmp_path / "checkout" / "sub").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    specs = tmp_path / "specs.json"
    spec = R.make_spec(**TINY_CFG, method="random", density=0.2, metrics=False)
    specs.write_text(json.dumps([spec.to_dict()]))
    root = {"checkout": tmp_path / "checkout", ".": Path(".")}.get(where, tmp_path / where)
    if where == "checkout":
        monkeypatch.chdir(tmp_path / "checkout" / "sub")
    assert R.main([str(specs), "--root", str(root)]) == 2
    error_line(capsys, "--root", needle)
    assert not list(tmp_path.rglob("run.json"))


def test_a_runs_folder_of_an_earlier_pai_is_adopted(tmp_path):
    spec = R.make_spec(**TINY_CFG, method="random", density=0.2, metrics=False)
    R.run_one(spec, tmp_path / "runs")  # run_one alone writes no marker (as pai did before markers)
    assert not (tmp_path / "runs" / MARKER).exists()
    R.sweep([spec], tmp_path / "runs", progress=False)
    assert (tmp_path / "runs" / MARKER).is_file()


# ----------------------------------------------------------------------------- thread policy and make


def test_entry_points_wait_passively_before_torch_loads(tmp_path):
    code = ("import os, sys\nimport pai.__main__\nprint(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)")
    env = subprocess_env()
    env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["PASSIVE", "False"], out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own choice is kept
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[0] == "ACTIVE"


def test_makefile_exports_passive_waiting_and_opens_jupyterlab():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MAKEFLAGS", "MFLAGS")}
    shown = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "pai-env: ; @echo $$OMP_WAIT_POLICY",
                            "pai-env"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert shown.stdout.strip() == "PASSIVE", shown.stderr
    lab = subprocess.run(["make", "-n", "lab"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60).stdout
    assert "jupyter lab" in lab and "Jupytext Notebook" in lab
    assert ("--allow-root" in lab) == (os.geteuid() == 0)


def test_the_other_commands_take_the_same_error_path(tmp_path, capsys):
    from pai.compendium import figindex, profiles
    from pai.compendium.claims.__main__ import main as claims_main

    assert profiles.main(["use", "gpu-cluster"]) == 2
    error_line(capsys, "unknown profile 'gpu-cluster'", "cpu", "paper")
    assert profiles.main(["usee", "cpu"]) == 2
    error_line(capsys, "usage")
    assert claims_main([str(tmp_path / "CLAIMS.md"), "--runs", str(tmp_path / "nowhere")]) == 2
    error_line(capsys, "nowhere", "dvc repro")
    assert figindex.main([str(tmp_path / "nofigs"), str(tmp_path / "README.md")]) == 2
    error_line(capsys, "nofigs")
    (tmp_path / "figs" / "stage").mkdir(parents=True)
    (tmp_path / "figs" / "stage" / "captions.json").write_text("[{")
    assert figindex.main([str(tmp_path / "figs"), str(tmp_path / "README.md")]) == 2
    error_line(capsys, "captions.json", "not valid JSON")
    assert not (tmp_path / "README.md").exists()
