"""pai.train.lth: iterative magnitude pruning reaches density 0.8^n (within one weight per layer), masks
are nested, the kept weights restart exactly from theta_0 (or theta_k), and run_dir rounds are
saved and reused."""
from __future__ import annotations

import json

import pytest
import torch

from pai.train.checkpoint import tensor_digest
from pai.train.lth import keep_counts, lottery_ticket, magnitude_prune, num_rounds
from pai.masks import prunable_parameters
from pai.models import create_model
from pai.train import TrainConfig, train

torch.set_num_threads(1)


def _cfg(**kw) -> TrainConfig:
    base = dict(model="lenet-300-100", dataset="digits", epochs=1, batch_size=128, device="cpu", threads=1)
    return TrainConfig(**{**base, **kw})


def _theta0(seed=0):
    torch.manual_seed(seed)  # what pai.train builds for the config (seed_everything(seed) first)
    return create_model("lenet-300-100", num_classes=10, in_channels=1, image_size=8).state_dict()


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_density_after_n_rounds_is_0_8_to_the_n_and_masks_are_nested(scope):
    rounds = lottery_ticket(_cfg(), rounds=3, scope=scope, progress=False)
    assert [t.round for t in rounds] == [0, 1, 2, 3]
    first = rounds[0].mask
    sizes = {k: m.numel() for k, m in first.items()}
    assert rounds[0].result.density == 1.0
    for t in rounds[1:]:
        kept = {k: int(m.sum()) for k, m in t.mask.items()}
        target = 0.8 ** t.round
        if scope == "layer":
            assert all(abs(kept[k] - target * sizes[k]) <= 1 for k in kept)
        assert abs(sum(kept.values()) - target * sum(sizes.values())) <= 1
        assert t.result.density == pytest.approx(t.density)
    for a, b in zip(rounds[1:], rounds[2:]):
        assert all(not (b.mask[k] & ~a.mask[k]).any() for k in a.mask)  # a pruned weight never comes back
    if scope == "global":  # one threshold: layer densities differ
        d = rounds[-1].summary()["layer_densities"]
        assert max(d.values()) - min(d.values()) > 0.01


def test_rewinding_restarts_the_kept_weights_exactly_from_the_initialization():
    cfg = _cfg(momentum=0.0, weight_decay=0.0, nesterov=False, lr=0.05)
    theta0 = _theta0()
    first_steps = []

    def after_first_step(event, state):  # plain SGD: w_1 = w_0 - lr * g_0, exactly reproducible
        if event == "step_end" and state.step == 1:
            params = prunable_parameters(state.model)
            first_steps.append({k: (p.detach().clone(), p.grad.detach().clone()) for k, p in params.items()})

    rounds = lottery_ticket(cfg, rounds=2, callbacks=[after_first_step], progress=False)
    assert len(first_steps) == 3
    for t, seen in zip(rounds[1:], first_steps[1:]):
        assert t.result.meta["fingerprint"]["init_state"] == tensor_digest(theta0)
        for k, (w1, g0) in seen.items():
            m = t.mask[k]
            expected = (theta0[k] * m).add_(g0, alpha=-cfg.lr)
            assert torch.equal(w1[m], expected[m]), k
            assert bool((w1[~m] == 0).all())
    # the pruned-away weights of round 2 were the smallest trained |w| of round 1 among its kept ones
    w = prunable_parameters(rounds[1].result.model)
    assert all((rounds[1].mask[k] & ~rounds[2].mask[k]).any() for k in w)  # global: every layer lost some
    flat_gone = torch.cat([w[k].detach().abs()[rounds[1].mask[k] & ~rounds[2].mask[k]] for k in w])
    flat_stay = torch.cat([w[k].detach().abs()[rounds[2].mask[k]] for k in w])
    assert float(flat_gone.max()) <= float(flat_stay.min())


def test_rewinding_to_iteration_k_uses_the_weights_after_k_steps(tmp_path):
    k = 5
    captured = {}

    def grab(event, state):
        if event == "step_end" and state.step == k:
            captured.update({n: v.detach().clone() for n, v in state.model.state_dict().items()})

    train(_cfg(), callbacks=[grab], progress=False)  # the same dense first training, independently
    rounds = lottery_ticket(_cfg(), rounds=1, rewind_iteration=k, run_dir=tmp_path, progress=False)
    assert rounds[1].result.meta["fingerprint"]["init_state"] == tensor_digest(captured)
    saved = torch.load(tmp_path / "rewind.pt", weights_only=True)
    assert saved["rewind_iteration"] == k and all(torch.equal(saved["state"][n], captured[n]) for n in captured)
    with pytest.raises(ValueError, match="theta_5, not theta_3"):
        lottery_ticket(_cfg(), rounds=1, rewind_iteration=3, run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="exceeds"):
        lottery_ticket(_cfg(), rounds=1, rewind_iteration=10_000, progress=False)


def test_run_dir_saves_every_round_and_reuses_them(tmp_path):
    first = lottery_ticket(_cfg(), density_target=0.6, scope="layer", run_dir=tmp_path, progress=False)
    assert len(first) == 4  # 0.8^3 = 0.512 <= 0.6 < 0.8^2: three rounds, the last one straight to 0.6
    sizes = {k: m.numel() for k, m in first[0].mask.items()}
    assert all(abs(int(m.sum()) - 0.6 * sizes[k]) <= 1 for k, m in first[-1].mask.items())
    summary = json.loads((tmp_path / "lth.json").read_text())
    assert [s["round"] for s in summary["rounds"]] == [0, 1, 2, 3] and summary["options"]["rounds"] == 3
    assert summary["rounds"][-1]["density"] == pytest.approx(0.6, abs=1e-3)
    assert all((tmp_path / f"round_{r:02d}" / "result.json").is_file() for r in range(4))
    saved = torch.load(tmp_path / "round_03" / "mask.pt", weights_only=True)["mask"]
    assert all(torch.equal(saved[k], first[-1].mask[k]) for k in saved)

    def no_training(event, state):
        raise AssertionError("trained again")

    again = lottery_ticket(_cfg(), density_target=0.6, scope="layer", run_dir=tmp_path, callbacks=[no_training],
                           progress=False)
    assert [t.result.final_test_acc for t in again] == [t.result.final_test_acc for t in first]


def test_pruning_helpers_and_bad_arguments():
    w = {"a": torch.tensor([[0.1, -3.0], [2.0, 0.5]]), "b": torch.tensor([1.0, -0.2, 4.0])}
    m = {"a": torch.tensor([[True, True], [False, True]]), "b": torch.ones(3, dtype=torch.bool)}
    out = magnitude_prune(w, m, 3, "global")
    assert out["a"].tolist() == [[False, True], [False, False]] and out["b"].tolist() == [True, False, True]
    out = magnitude_prune(w, m, {"a": 1, "b": 2}, "layer")
    assert out["a"].tolist() == [[False, True], [False, False]] and out["b"].tolist() == [True, False, True]
    assert keep_counts(m, 0.8, "layer") == {"a": 2, "b": 2} and keep_counts(m, 0.8) == 5
    assert num_rounds(0.2, 1.0, 0.8) == 1 and num_rounds(0.2, 1.0, 0.64) == 2 and num_rounds(0.2, 1.0, 0.5) == 4
    with pytest.raises(ValueError, match="scope"):
        lottery_ticket(_cfg(), rounds=1, scope="neuron")
    with pytest.raises(ValueError, match="exactly one"):
        lottery_ticket(_cfg(), rounds=1, density_target=0.5)
    with pytest.raises(ValueError, match="rate"):
        lottery_ticket(_cfg(), rounds=1, rate=1.0)
    with pytest.raises(ValueError, match="density_target"):
        lottery_ticket(_cfg(), density_target=1.5)
