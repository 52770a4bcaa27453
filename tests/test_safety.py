"""Safe by default: no file runs code, a mask is 0/1, and resource errors are one line.

1. No code runs from data: every loader of pai refuses a pickle that asks for a function (checked on the
   source with ``ast``, and by planting a pickle that would create a sentinel file in every kind of file
   pai reads: the sentinel must not appear, and the error names the file; exit 2 from the CLI).
2. A mask is bool or exactly 0/1, and keeps a weight: a -1, a NaN, a 0.3 or an all-zero mask is refused
   by every reader with one line naming the tensor; tied weights and meta-device models are refused.
3. A full disk, a read-only folder, a name too long for the file system, an unreachable Ray cluster:
   one line naming the file or value and the fix, exit 2, before any work where it can be told then,
   and nothing half-written.
"""
from __future__ import annotations

import ast
import errno
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import datafiles
import numpy as np
import pytest
import torch
from torch import nn

import pai.data as D
from pai.compendium import runs as R
from pai.train.config import TrainConfig
from pai.utils.errors import UserError
from pai.masks import NOTHING_KEPT, load_mask, prunable_parameters, save_mask, to_parametrize
from pai.metrics import cli as metrics_cli
from pai.models import create_model
from pai.pruners import cli as prune_cli
from pai.train.rundir import RunDir
from pai.train import main as train_main, train

ROOT = Path(__file__).resolve().parents[1]
PAI = ROOT / "pai"
TINY = ["--model", "lenet-300-100", "--dataset", "digits", "--epochs", "1", "--batch-size", "128", "--lr", "0.05",
        "--device", "cpu", "--threads", "1", "--no-progress"]
TINY_CFG = dict(model="lenet-300-100", dataset="digits", epochs=1, batch_size=128, lr=0.05, device="cpu", threads=1)


class Payload:
    """Unpickling this runs code: it creates the sentinel file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return exec, (f"open({self.path!r}, 'w').close()",)


def error_line(capsys, *needles) -> str:
    """The one stderr line of a refused command (the data-source note aside), holding every needle."""
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("pai.data:")]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0] and "error" in lines[0] and "internal error" not in lines[0], lines[0]
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    return not list(Path(folder).rglob("*.tmp"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train_main([*TINY, "--out", str(out)]) == 0
    return out


# ----------------------------------------------------------------------------- 1. no code runs from data


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_every_loader_in_the_source_is_safe():
    """``torch.load`` only with ``weights_only=True`` (a literal, never passed through), ``np.load`` only
    with ``allow_pickle=False``, ``yaml.safe_load`` only, and ``pickle`` only through an ``Unpickler``
    subclass that restricts ``find_class``; no other deserialiser that runs code."""
    bad = []
    for path in sorted(PAI.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = lambda n: f"{path.relative_to(ROOT)}:{n.lineno}"  # noqa: E731
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "numpy", "yaml", "pickle", "dill",
                                                                    "cloudpickle", "joblib", "marshal", "shelve"):
                names = {a.name for a in node.names}
                if names & {"load", "loads", "unsafe_load", "full_load", "Unpickler", "read_pickle"}:
                    bad.append(f"{where(node)} imports a loader by name: {ast.unparse(node)}")
            if isinstance(node, ast.Import) and {a.name for a in node.names} & {"dill", "cloudpickle", "shelve",
                                                                                "marshal", "joblib"}:
                bad.append(f"{where(node)} imports a code-running deserialiser: {ast.unparse(node)}")
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b).endswith("Unpickler") for b in node.bases):
                if not any(isinstance(f, ast.FunctionDef) and f.name == "find_class" for f in node.body):
                    bad.append(f"{where(node)} subclasses Unpickler without restricting find_class")
        for call, name in _calls(tree):
            kw = {k.arg: k.value for k in call.keywords}
            if any(k == "weights_only" and not (isinstance(v, ast.Constant) and v.value is True)
                   for k, v in kw.items()):
                bad.append(f"{where(call)} passes weights_only={ast.unparse(kw['weights_only'])}")
            if name in ("torch.load", "torch.serialization.load"):
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    bad.append(f"{where(call)} calls torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load"):
                if not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False):
                    bad.append(f"{where(call)} calls np.load without allow_pickle=False")
            elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
                bad.append(f"{where(call)} calls {name} (use yaml.safe_load)")
            elif name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "pd.read_pickle", "pandas.read_pickle",
                          "marshal.loads", "joblib.load", "dill.load", "dill.loads"):
                bad.append(f"{where(call)} calls {name}: unpickles without a class filter")
    assert not bad, "\n".join(bad)


def test_load_torch_has_no_unsafe_switch():
    import inspect

    from pai.utils.io import load_torch

    assert "weights_only" not in inspect.signature(load_torch).parameters


def _plant(path: Path, sentinel: Path, wrap=lambda p: p) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(wrap(Payload(sentinel)), path)
    return path


def _mask_wrap(payload):
    return {"mask": {"hidden.0.weight": payload}, "meta": {}}


def _spec_file(tmp_path: Path) -> tuple:
    spec = {"train": {"model": "lenet-300-100", "dataset": "digits", "epochs": 1, "batch_size": 128,
                      "device": "cpu", "threads": 1}, "prune": {"method": "random", "density": 0.3}}
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([spec]))
    return path, R.run_dir(spec, tmp_path / "root")


def _cli_case(kind, tmp_path, sentinel, mask_file, finished_run):
    """Plant the payload in one kind of file; return (the planted file, the command to run)."""
    if kind == "mask":
        bad = _plant(tmp_path / "mask.pt", sentinel, _mask_wrap)
        return bad, lambda: train_main([*TINY, "--mask", str(bad), "--out", str(tmp_path / "r")])
    if kind == "mask (metrics)":
        bad = _plant(tmp_path / "mask.pt", sentinel, _mask_wrap)
        return bad, lambda: metrics_cli.main(["--mask", str(bad), "--model", "lenet-300-100", "--dataset", "digits"])
    if kind == "weights (metrics)":
        bad = _plant(tmp_path / "final.pt", sentinel, lambda p: {"hidden.0.weight": p})
        return bad, lambda: metrics_cli.main(["--mask", str(mask_file), "--model", "lenet-300-100", "--dataset",
                                              "digits", "--weights", str(bad)])
    if kind == "checkpoint":
        bad = _plant(RunDir(tmp_path / "r").checkpoint, sentinel, lambda p: {"model": p, "epoch": 1})
        return bad, lambda: train_main([*TINY, "--out", str(tmp_path / "r")])
    if kind == "final weights":
        run = tmp_path / "r"
        run.mkdir()
        (run / "result.json").write_bytes(RunDir(finished_run).result.read_bytes())
        bad = _plant(RunDir(run).final, sentinel, lambda p: {"hidden.0.weight": p})
        return bad, lambda: train_main([*TINY, "--out", str(run)])
    if kind == "training result":
        bad = RunDir(tmp_path / "r").result
        bad.parent.mkdir()
        bad.write_bytes(pickle.dumps({"config": Payload(sentinel)}, protocol=2))
        return bad, lambda: train_main([*TINY, "--out", str(tmp_path / "r")])
    if kind == "config file":
        bad = tmp_path / "c.yaml"
        bad.write_bytes(pickle.dumps({"epochs": Payload(sentinel)}, protocol=2))
        return bad, lambda: train_main([*TINY, "--config", str(bad), "--out", str(tmp_path / "r")])
    if kind == "initial state":
        specs, rd = _spec_file(tmp_path)
        rd.path.mkdir(parents=True)
        rd.mask.write_bytes(mask_file.read_bytes())
        bad = _plant(rd.init_state, sentinel, lambda p: {"hidden.0.weight": p})
        return bad, lambda: R.main([str(specs), "--root", str(tmp_path / "root")])
    if kind == "run mask":
        specs, rd = _spec_file(tmp_path)
        bad = _plant(rd.mask, sentinel, _mask_wrap)
        return bad, lambda: R.main([str(specs), "--root", str(tmp_path / "root")])
    if kind == "run record":
        specs, rd = _spec_file(tmp_path)
        rd.path.mkdir(parents=True)
        rd.record.write_bytes(pickle.dumps({"spec": Payload(sentinel)}, protocol=2))
        return rd.record, lambda: R.main([str(specs), "--root", str(tmp_path / "root")])
    if kind == "specs file":
        bad = tmp_path / "specs.json"
        bad.write_bytes(pickle.dumps([Payload(sentinel)], protocol=2))
        return bad, lambda: R.main([str(bad), "--root", str(tmp_path / "root")])
    if kind == "CIFAR batch":
        folder = datafiles.write_cifar(tmp_path / "store", "cifar10", n_train=10, n_test=4)
        bad = folder / "data_batch_1"
        bad.write_bytes(pickle.dumps({b"data": Payload(sentinel), b"labels": [0]}, protocol=2))
        return bad, lambda: train_main([*TINY, "--dataset", "cifar10", "--data-root", str(tmp_path / "store"),
                                        "--out", str(tmp_path / "r")])
    raise AssertionError(kind)


CLI_KINDS = ["mask", "mask (metrics)", "weights (metrics)", "checkpoint", "final weights", "training result",
             "config file", "initial state", "run mask", "run record", "specs file", "CIFAR batch"]


@pytest.mark.parametrize("kind", CLI_KINDS)
def test_a_planted_pickle_never_runs_and_is_named(kind, tmp_path, capsys, monkeypatch, mask_file, finished_run):
    monkeypatch.delenv("PAI_DATA", raising=False)
    capsys.readouterr()
    sentinel = tmp_path / "SENTINEL"
    bad, command = _cli_case(kind, tmp_path, sentinel, mask_file, finished_run)
    assert command() == 2
    assert not sentinel.exists(), f"the {kind} file ran its code"
    line = error_line(capsys, bad)
    if bad.suffix == ".pt":  # torch's refusal, said as what was refused (not its advice to load unsafely)
        assert "asks for exec" in line and "nothing of it ran" in line and "can still be loaded" not in line


def test_a_planted_dst_state_never_runs(tmp_path):
    from pai.train.dst import train_dst

    sentinel, run = tmp_path / "SENTINEL", tmp_path / "run"
    model = create_model("lenet-300-100", num_classes=10, in_channels=1, image_size=8)
    mask = {k: torch.rand(p.shape, generator=torch.Generator().manual_seed(0)) < 0.3
            for k, p in prunable_parameters(model).items()}
    bad = _plant(RunDir(run).dst_state, sentinel, lambda p: {12: p})
    with pytest.raises(UserError, match=re.escape(str(bad))):
        train_dst(TrainConfig(**TINY_CFG), mask=mask, run_dir=run, progress=False, record_spectrum=False)
    assert not sentinel.exists(), "the DST state ran its code"


def test_a_planted_lottery_ticket_rewind_never_runs(tmp_path):
    from pai.train.lth import lottery_ticket

    sentinel, run = tmp_path / "SENTINEL", tmp_path / "lth"
    bad = _plant(RunDir(run).rewind, sentinel, lambda p: {"rewind_iteration": 2, "state": p})
    with pytest.raises(UserError, match=re.escape(str(bad)) + ".*asks for exec.*nothing of it ran"):
        lottery_ticket(TrainConfig(**TINY_CFG), rounds=1, rewind_iteration=2, run_dir=run, progress=False)
    assert not sentinel.exists(), "the LTH rewind file ran its code"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_load_through_the_restricted_unpickler(protocol, tmp_path, monkeypatch):
    """Real batches (numpy 1 names, as the archives were written; any protocol) load; a planted one at any
    protocol is refused unrun, naming the file."""
    monkeypatch.delenv("PAI_DATA", raising=False)
    folder = datafiles.write_cifar(tmp_path / "store", "cifar10", n_train=10, n_test=4)
    good = folder / "data_batch_2"
    d = pickle.loads(good.read_bytes())
    legacy = pickle.dumps(d, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    good.write_bytes(legacy)  # as numpy 1.x pickled it
    (folder / "data_batch_3").write_bytes(pickle.dumps(d, protocol=protocol))
    D._read_cifar.cache_clear()
    data = D.load_dataset("cifar10", root=tmp_path / "store")
    assert len(data.y_train) == 10
    sentinel = tmp_path / "SENTINEL"
    bad = folder / "data_batch_4"
    bad.write_bytes(pickle.dumps({b"data": Payload(sentinel), b"labels": [0]}, protocol=protocol))
    D._read_cifar.cache_clear()
    with pytest.raises(D.DataCorruptError, match=re.escape(str(bad)) + ".*refused unrun"):
        D.load_dataset("cifar10", root=tmp_path / "store")
    assert not sentinel.exists()
    bad.write_bytes(pickle.dumps({b"data": np.array([Payload(sentinel)], dtype=object), b"labels": [0]},
                                 protocol=protocol))
    D._read_cifar.cache_clear()
    with pytest.raises(D.DataCorruptError, match=re.escape(str(bad))):
        D.load_dataset("cifar10", root=tmp_path / "store")
    assert not sentinel.exists()


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return datafiles.write_tiny_imagenet(tmp_path_factory.mktemp("tin")).resolve()


@pytest.mark.parametrize("how", ["pickle", "npz-object-array"])
def test_a_planted_tiny_imagenet_cache_never_runs_and_is_rebuilt(how, tiny_folder, tmp_path, monkeypatch):
    import pai.data.tiny_imagenet as T

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAI_CACHE", str(tmp_path / "cache"))
    sentinel = tmp_path / "SENTINEL"
    cache = T.cache_path(tiny_folder)
    cache.parent.mkdir(parents=True)
    if how == "pickle":
        cache.write_bytes(pickle.dumps({"x_train": Payload(sentinel)}, protocol=2))
    else:
        with open(cache, "wb") as f:
            np.savez(f, stamp=np.array(T.stamp(tiny_folder)), x_train=np.array([Payload(sentinel)], dtype=object))
    T.load_arrays.cache_clear()
    with pytest.warns(UserWarning, match=re.escape(str(cache))):
        arrays = T.load_arrays(tiny_folder, T.stamp(tiny_folder))
    T.load_arrays.cache_clear()
    assert not sentinel.exists()
    assert arrays["x_train"].dtype == np.uint8 and len(arrays["y_test"]) == 200


# ----------------------------------------------------------------------------- 2. a mask is 0/1


def _raw_mask(value_at_0, dtype):
    """A LeNet-300-100 (digits) mask of 0/1 ``dtype`` values with ``value_at_0`` at one entry."""
    model = create_model("lenet-300-100", num_classes=10, in_channels=1, image_size=8)
    mask = {k: (torch.rand(p.shape, generator=torch.Generator().manual_seed(1)) < 0.5).to(dtype)
            for k, p in prunable_parameters(model).items()}
    if value_at_0 is not None:
        mask["hidden.1.weight"][0, 0] = value_at_0
    return model, mask


BAD_VALUES = {"minus-one (a +-1 mask)": (-1, torch.int8), "nan": (float("nan"), torch.float32),
              "fraction": (0.3, torch.float32), "two": (2, torch.int64), "inf": (float("inf"), torch.float64)}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_a_mask_that_is_not_0_1_is_refused_naming_the_tensor(case, tmp_path, capsys):
    model, mask = _raw_mask(*BAD_VALUES[case])
    path = tmp_path / "mask.pt"
    torch.save({"mask": mask, "meta": {}}, path)  # what another tool could hand over (not save_mask: bool)
    assert train_main([*TINY, "--mask", str(path), "--out", str(tmp_path / "r")]) == 2
    error_line(capsys, path, "'hidden.1.weight'", "exactly 0 or 1")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
    assert metrics_cli.main(["--mask", str(path), "--model", "lenet-300-100", "--dataset", "digits"]) == 2
    error_line(capsys, path, "'hidden.1.weight'")
    with pytest.raises(UserError, match="'hidden.1.weight'"):
        load_mask(path)
    with pytest.raises(UserError, match="'hidden.1.weight'.*exactly 0 or 1"):
        train(TrainConfig(**TINY_CFG), mask=mask, progress=False)
    from pai.metrics import network_metrics

    with pytest.raises(UserError, match="'hidden.1.weight'"):
        network_metrics(model, mask, include=["paths"])
    with pytest.raises(UserError, match="'hidden.1.weight'"):
        to_parametrize(model, mask)


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32, torch.uint8])
def test_an_all_zero_mask_is_refused_everywhere_with_prunes_message(dtype, tmp_path, capsys, monkeypatch):
    import pai.pruners as pruners
    from pai.metrics import layer_metrics

    model, mask = _raw_mask(None, dtype)
    mask = {k: torch.zeros_like(m) for k, m in mask.items()}
    path = tmp_path / "zeros.pt"
    torch.save({"mask": mask, "meta": {}}, path)
    assert train_main([*TINY, "--mask", str(path), "--out", str(tmp_path / "r")]) == 2
    train_line = error_line(capsys, path, NOTHING_KEPT)
    assert metrics_cli.main(["--mask", str(path), "--model", "lenet-300-100", "--dataset", "digits"]) == 2
    error_line(capsys, path, NOTHING_KEPT)
    for call in (lambda: train(TrainConfig(**TINY_CFG), mask=mask, progress=False),
                 lambda: layer_metrics(model, mask), lambda: load_mask(path)):
        with pytest.raises(UserError, match=re.escape(NOTHING_KEPT)):
            call()
    # prune refuses a pruner's all-zero mask with the same words
    def nothing(m, d, **kw):
        return {k: torch.zeros_like(v, dtype=torch.bool) for k, v in prunable_parameters(m).items()}

    monkeypatch.setattr(pruners, "get", lambda name: pruners.Pruner.of(name, nothing))
    with pytest.raises(ValueError, match=re.escape(NOTHING_KEPT)) as refused:
        pruners.prune(model, "random", 0.5)
    assert "degenerate" in str(refused.value) and "degenerate" in train_line


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.int32, torch.uint8])
def test_a_numeric_0_1_mask_is_read_as_it_says(dtype, tmp_path):
    model, mask = _raw_mask(None, dtype)
    path = tmp_path / "m.pt"
    torch.save({"mask": mask, "meta": {}}, path)
    loaded = load_mask(path, model)
    assert all(loaded[k].dtype == torch.bool and torch.equal(loaded[k], mask[k] == 1) for k in mask)


def _tied():
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    model[2].weight = model[0].weight
    return model


def test_tied_weights_are_refused_naming_both_layers():
    from pai import prune
    from pai.metrics import layer_metrics

    model = _tied()
    with pytest.raises(UserError, match=r"'0.weight' and '2.weight' share one weight tensor \(tied weights\)"):
        prune(model, "random", 0.5)
    with pytest.raises(UserError, match="tied weights"):
        prunable_parameters(model)
    mask = {"0.weight": torch.ones(6, 6, dtype=torch.bool), "4.weight": torch.ones(2, 6, dtype=torch.bool)}
    with pytest.raises(UserError, match="tied weights"):
        layer_metrics(model, mask, include=[], input_shape=(6,))


def test_a_model_on_the_meta_device_is_refused():
    from pai import prune
    from pai.metrics import layer_metrics

    with torch.device("meta"):
        model = create_model("lenet-300-100", num_classes=10, in_channels=1, image_size=8)
    _, mask = _raw_mask(None, torch.bool)
    for call in (lambda: prune(model, "random", 0.5), lambda: layer_metrics(model, mask),
                 lambda: train(TrainConfig(**TINY_CFG), model=model, progress=False)):
        with pytest.raises(UserError, match="meta device.*to_empty"):
            call()


# ----------------------------------------------------------------------------- 3. resources and environment


PRUNE = ["--model", "lenet-300-100", "--method", "random", "--density", "0.3", "--dataset", "digits", "--quiet"]


def test_a_full_disk_is_one_line_naming_the_file_and_nothing_is_half_written(tmp_path, capsys, monkeypatch):
    import pai.utils.io

    def full(point):
        if point == "before_rename":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "m.pt"
    with monkeypatch.context() as m:
        m.setattr(pai.utils.io, "fault_point", full)
        assert prune_cli.main([*PRUNE, "--out", str(out)]) == 2
        error_line(capsys, out, "no space left on the device", "free space")
        assert not out.exists() and no_temp_files(tmp_path)
        run = tmp_path / "run"
        assert train_main([*TINY, "--out", str(run)]) == 2
        error_line(capsys, RunDir(run).checkpoint, "no space left")
        assert no_temp_files(run) and not RunDir(run).checkpoint.exists()

    def short_write(obj, f, *a, **k):  # what torch.save given a path says when the disk fills
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", short_write)
    assert prune_cli.main([*PRUNE, "--out", str(out)]) == 2
    error_line(capsys, out, "cannot write", "full disk")
    assert not out.exists() and no_temp_files(tmp_path)


def test_a_name_too_long_for_the_file_system_is_refused_before_pruning(tmp_path, capsys, monkeypatch):
    import pai.pruners

    def never(*a, **k):
        raise AssertionError("pruned although the output name cannot be written")

    monkeypatch.setattr(pai.pruners, "prune", never)
    out = tmp_path / ("m" * 248 + ".pt")  # 251 bytes: a legal name; its temp file's is not
    assert prune_cli.main([*PRUNE, "--out", str(out)]) == 2
    error_line(capsys, "too long for the file system", "choose a shorter name")
    assert not list(tmp_path.iterdir())


def test_a_read_only_output_is_one_line_from_the_library(tmp_path, monkeypatch):
    import pai.utils.io

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(pai.utils.io.tempfile, "mkstemp", read_only)
    model, mask = _raw_mask(None, torch.bool)
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "m.pt")) + ".*read-only.*writable folder"):
        save_mask(mask, tmp_path / "m.pt")


def test_a_read_only_cache_is_a_warning_not_a_failure(tiny_folder, tmp_path, monkeypatch):
    """The arrays are decoded and in memory: failing the run would throw that away."""
    import pai.data.tiny_imagenet as T
    from pai.utils.errors import WriteError

    def read_only(path, write):
        raise WriteError(f"cannot write {path}: the folder is on a read-only file system; choose a writable folder")

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAI_CACHE", str(tmp_path / "ro-cache"))
    monkeypatch.setattr(T, "atomic_write", read_only)
    T.load_arrays.cache_clear()
    with pytest.warns(UserWarning, match="cannot cache Tiny-ImageNet.*PAI_CACHE"):
        arrays = T.load_arrays(tiny_folder, T.stamp(tiny_folder))
    T.load_arrays.cache_clear()
    assert len(arrays["y_train"]) == 400


def test_no_ray_cluster_at_the_address_is_one_line_in_seconds(tmp_path):
    specs, _ = _spec_file(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "pai", "sweep", str(specs), "--root", str(tmp_path / "root"),
                           "--executor", "ray", "--address", "127.0.0.1:1"], env=env, capture_output=True, text=True,
                          timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert "'127.0.0.1:1'" in lines[0] and "no Ray cluster" in lines[0]
    assert not list((tmp_path / "root").glob("*/run.json"))
    from pai.compendium.executors import check_ray_address

    with pytest.raises(UserError, match="not host:port"):
        check_ray_address("127.0.0.1:http")


@pytest.mark.parametrize("main,args,needle", [
    (prune_cli.main, [*PRUNE, "--method", "phew", "--option", "input_shape=[1,2]"], "input_shape (1, 2) does not fit"),
    (prune_cli.main, [*PRUNE, "--method", "phew", "--option", "input_shape=abc"], "input_shape must be a tuple of ints"),
    (prune_cli.main, [*PRUNE, "--num-classes", "0"], "num_classes must be a positive int, got 0"),
    (prune_cli.main, [*PRUNE, "--seed", "-1"], "--seed must be an int >= 0"),
    (metrics_cli.main, ["--model", "lenet-300-100", "--dataset", "digits", "--samples", "0"], "--samples"),
    (metrics_cli.main, ["--model", "lenet-300-100", "--dataset", "digits", "--samples", "-1"], "--samples"),
])
def test_user_mistakes_are_one_line_errors(main, args, needle, mask_file, tmp_path, capsys):
    """Each of these ended as an internal error (exit 1), a silent default, or a message naming nothing."""
    if main is prune_cli.main:
        args = [*args, "--out", str(tmp_path / "m.pt")]
    else:
        args = [*args, "--mask", str(mask_file)]
    capsys.readouterr()
    assert main(args) == 2
    error_line(capsys, needle)
    assert not (tmp_path / "m.pt").exists()
