"""pai.train: static masks hold under momentum + weight decay, CPU runs are bit-identical, an
interrupted run resumes to the uninterrupted result, finished runs are reused, the CLI writes a
result, and the trainer really learns (digits, and a Fashion-MNIST subset when present)."""
from __future__ import annotations

import json

import pytest
import torch

from pai.train.rundir import RunDir
from pai.masks import prunable_parameters, save_mask
from pai.models import create_model
from pai.train import TrainConfig, TrainResult, main, train

torch.set_num_threads(1)
TIMING_KEYS = ("seconds", "train_seconds")


def _cfg(**kw) -> TrainConfig:
    base = dict(model="lenet-300-100", dataset="digits", epochs=3, batch_size=64, device="cpu", threads=1)
    return TrainConfig(**{**base, **kw})


def _random_mask(density=0.3, seed=0):
    torch.manual_seed(0)
    model = create_model("lenet-300-100", num_classes=10, in_channels=1, image_size=8)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(p.shape, generator=g) < density for k, p in prunable_parameters(model).items()}


def _untimed(history):
    return [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in history]


def _weights(result: TrainResult):
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_pruned_weights_stay_exactly_zero_with_momentum_and_weight_decay():
    mask = _random_mask()
    seen = []

    def check(event, state):
        if event == "step_end" and state.step % 7 == 0:
            params = prunable_parameters(state.model)
            seen.append(all(bool((params[k].detach()[~m] == 0).all()) for k, m in mask.items()))

    cfg = _cfg(momentum=0.9, weight_decay=5e-3, epochs=2)
    r = train(cfg, mask=mask, callbacks=[check], progress=False)
    assert len(seen) >= 3 and all(seen)
    params = prunable_parameters(r.model)
    for k, m in mask.items():
        w = params[k].detach()
        assert torch.count_nonzero(w[~m]) == 0, k
        assert torch.count_nonzero(w[m]) == int(m.sum()), k  # kept weights are alive
    assert r.density == pytest.approx(_density(mask))
    assert r.final_test_acc > 0.5


def test_set_mask_from_a_callback_changes_the_mask_mid_run():
    first, second = _random_mask(0.5, seed=1), _random_mask(0.2, seed=2)

    changed_momentum = []

    def swap(event, state):
        if event == "step_end" and state.step == 5:
            state.set_mask(second)
            for k, w in prunable_parameters(state.model).items():
                buf = state.optimizer.state[w]["momentum_buffer"]
                changed_momentum.append(torch.count_nonzero(buf[first[k] != second[k]]).item())
                assert torch.count_nonzero(buf[first[k] & second[k]]) > 0  # kept weights keep theirs

    r = train(_cfg(epochs=1), mask=first, callbacks=[swap], progress=False)
    assert changed_momentum == [0, 0, 0]  # regrown and newly pruned weights lose their momentum
    params = prunable_parameters(r.model)
    for k, m in second.items():
        assert torch.count_nonzero(params[k].detach()[~m]) == 0, k
    assert r.density == pytest.approx(_density(second))


def _density(mask):
    return sum(int(m.sum()) for m in mask.values()) / sum(m.numel() for m in mask.values())


def test_two_cpu_runs_with_one_seed_are_identical_and_the_seed_matters():
    a = train(_cfg(augment=True), mask=_random_mask(), progress=False)
    b = train(_cfg(augment=True), mask=_random_mask(), progress=False)
    assert _untimed(a.history) == _untimed(b.history)
    _assert_same_weights(_weights(a), _weights(b))
    c = train(_cfg(augment=True, seed=1), mask=_random_mask(), progress=False)
    assert _untimed(c.history) != _untimed(a.history)


def test_a_residual_conv_net_with_batch_norm_trains_bit_identically_on_cpu():
    cfg = _cfg(model="resnet20-w0.25", epochs=1, augment=True)
    a, b = train(cfg, progress=False), train(cfg, progress=False)
    assert _untimed(a.history) == _untimed(b.history)
    _assert_same_weights(_weights(a), _weights(b))


def test_eval_every_skips_evaluations_but_not_the_last_and_changes_nothing_else():
    every = train(_cfg(epochs=3), progress=False)
    sparse = train(_cfg(epochs=3, eval_every=2), progress=False)
    assert [e["test_acc"] is None for e in sparse.history] == [True, False, False]
    assert sparse.history[1]["test_acc"] == every.history[1]["test_acc"]
    assert sparse.final_test_acc == every.final_test_acc
    assert sparse.best_test_acc == max(every.history[1]["test_acc"], every.history[2]["test_acc"])
    _assert_same_weights(_weights(sparse), _weights(every))


def test_init_state_is_the_starting_point():
    torch.manual_seed(0)
    same = create_model("lenet-300-100", 10, 1, 8).state_dict()
    torch.manual_seed(5)
    other = create_model("lenet-300-100", 10, 1, 8).state_dict()
    base = train(_cfg(epochs=1), progress=False)
    assert _untimed(train(_cfg(epochs=1), init_state=same, progress=False).history) == _untimed(base.history)
    assert _untimed(train(_cfg(epochs=1), init_state=other, progress=False).history) != _untimed(base.history)


def test_resume_after_interruption_equals_the_uninterrupted_run(tmp_path):
    mask = _random_mask()
    full = train(_cfg(epochs=3, augment=True), mask=mask, run_dir=tmp_path / "full", progress=False)

    class Stop(Exception):
        pass

    def interrupt(event, state):
        if event == "step_end" and state.epoch == 2 and state.step % 23 == 5:  # killed inside epoch 2
            raise Stop

    run = tmp_path / "cut"
    with pytest.raises(Stop):
        train(_cfg(epochs=3, augment=True), mask=mask, run_dir=run, callbacks=[interrupt], progress=False)
    assert not RunDir(run).result.exists()
    assert torch.load(RunDir(run).checkpoint, weights_only=True)["epoch"] == 1
    steps = []
    resumed = train(_cfg(epochs=3, augment=True), mask=mask, run_dir=run, progress=False,
                    callbacks=[lambda e, s: steps.append(s.epoch) if e == "epoch_end" else None])
    assert steps == [2, 3]  # epoch 1 came from the checkpoint
    assert _untimed(resumed.history) == _untimed(full.history)
    _assert_same_weights(_weights(resumed), _weights(full))
    assert resumed.meta["steps"] == full.meta["steps"]


def test_finished_run_is_returned_from_disk_without_training(tmp_path):
    first = train(_cfg(epochs=2), run_dir=tmp_path, progress=False)
    files = RunDir(tmp_path)
    assert set(tmp_path.iterdir()) == {files.checkpoint, files.final, files.result}

    def no_training(event, state):
        raise AssertionError("trained again")

    again = train(_cfg(epochs=2, threads=2), run_dir=tmp_path, callbacks=[no_training], progress=False)
    assert again.to_dict() == json.loads(json.dumps(first.to_dict()))
    _assert_same_weights(_weights(again), _weights(first))
    with pytest.raises(ValueError, match="epochs"):
        train(_cfg(epochs=3), run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="mask"):
        train(_cfg(epochs=2), mask=_random_mask(), run_dir=tmp_path, progress=False)


def test_checkpoint_of_another_config_is_an_error(tmp_path):
    def stop(event, state):
        if event == "epoch_end":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(epochs=3, lr=0.05), run_dir=tmp_path, callbacks=[stop], progress=False)
    assert not RunDir(tmp_path).checkpoint.exists()  # epoch_end callbacks run before the checkpoint
    train(_cfg(epochs=1, lr=0.05), run_dir=tmp_path / "one", progress=False)
    RunDir(tmp_path / "one").result.unlink()  # leave only the checkpoint of a 1-epoch run
    with pytest.raises(ValueError, match=r"lr: 0\.05 there, 0\.1 now"):
        train(_cfg(epochs=1), run_dir=tmp_path / "one", progress=False)


@pytest.mark.parametrize("broken", ["missing", "shape"])
def test_bad_mask_names_the_layer(broken):
    mask = _random_mask()
    if broken == "missing":
        del mask["fc.weight"]
    else:
        mask["hidden.1.weight"] = mask["hidden.1.weight"][:, :5]
    with pytest.raises(ValueError, match="fc.weight" if broken == "missing" else "hidden.1.weight"):
        train(_cfg(epochs=1), mask=mask, progress=False)


def test_config_checks_and_files(tmp_path):
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) \['learning_rate'\].*valid keys:.*lr"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    (tmp_path / "c.yaml").write_text("model: lenet5\nweight_decay: 1e-4\nmilestones: [0.3, 0.6]\n")
    cfg = TrainConfig.from_file(tmp_path / "c.yaml")
    assert (cfg.model, cfg.weight_decay, cfg.milestones) == ("lenet5", 1e-4, (0.3, 0.6))
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_file(tmp_path / "c.json") == cfg
    (tmp_path / "bad.yaml").write_text("epochz: 3\n")
    with pytest.raises(ValueError, match="epochz"):
        TrainConfig.from_file(tmp_path / "bad.yaml")


def test_learning_rate_schedules():
    multi = TrainConfig(epochs=160)  # Random_Pruning: x0.1 at epochs 80 and 120
    assert [multi.lr_at(e) for e in (0, 79, 80, 119, 120, 159)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cos = TrainConfig(epochs=4, schedule="cosine")
    assert [cos.lr_at(e) for e in range(4)] == pytest.approx([0.1, 0.0853553, 0.05, 0.0146447], rel=1e-5)
    assert TrainConfig(schedule="constant").lr_at(9) == 0.1
    assert TrainConfig(epochs=1).lr_at(0) == 0.1  # no milestone on the first epoch
    assert [TrainConfig(epochs=2).lr_at(e) for e in (0, 1)] == pytest.approx([0.1, 0.001])


def test_cli_writes_result_json(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("dataset: digits\nepochs: 5\nthreads: 1\ndevice: cpu\n")
    mask_path = save_mask(_random_mask(0.5), tmp_path / "mask.pt")
    out = tmp_path / "run"
    assert main(["--config", str(tmp_path / "c.yaml"), "--epochs", "2", "--batch-size", "32", "--no-nesterov",
                 "--mask", str(mask_path), "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["epochs"] == 2 and result["config"]["batch_size"] == 32
    assert result["config"]["nesterov"] is False and result["config"]["dataset"] == "digits"
    assert len(result["history"]) == 2 and result["density"] == pytest.approx(0.5, abs=0.01)
    assert (out / "final.pt").is_file()
    line = capsys.readouterr().out.strip()
    assert "lenet-300-100 on digits" in line and "result.json" in line
    assert main(["--dataset", "digits", "--schedule", "linear", "--out", str(tmp_path / "bad")]) == 2
    assert "schedule must be one of" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_digits_accuracy_is_well_above_chance():
    r = train(_cfg(epochs=4, schedule="cosine"), progress=False)
    assert r.final_test_acc > 0.85  # chance is 0.1
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]
    assert r.images_per_s > 0 and r.num_params == 64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10


def test_lenet5_one_epoch_on_a_fashion_mnist_subset():
    from pai.data import DataNotFoundError

    # lr 0.02: LeNet-5 (no batch norm) at the default 0.1 diverges in its first few dozen steps
    cfg = TrainConfig(model="lenet5", dataset="fashion-mnist", epochs=1, train_subset=2048, test_subset=512,
                      batch_size=64, lr=0.02, device="cpu", threads=1, augment=True)
    try:
        r = train(cfg, progress=False)
    except DataNotFoundError as e:
        pytest.skip(f"Fashion-MNIST not available: {e}")
    assert len(r.history) == 1 and r.history[0]["train_images"] == 2048
    assert r.final_test_acc > 0.4  # 32 steps; chance is 0.1
