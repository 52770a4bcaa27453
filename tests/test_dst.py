"""pai.train.dst: ITOP/SET mask updates keep every layer's density exact, regrow only onto pruned positions
(at zero, momentum reset), record one full-spectrum entry per update, equal static training bit
for bit when nothing is dropped, and resume an interrupted run to the same masks."""
from __future__ import annotations

import math

import pytest
import torch

from pai.train.dst import DynamicSparsity, drop_and_grow, drop_fraction_at
from pai.metrics import moving_distance
from pai.masks import prunable_parameters
from pai.models import create_model
from pai.train.dst import train_dst
from pai.train import TrainConfig, train

torch.set_num_threads(1)
STEPS_PER_EPOCH = 12  # 1437 digits / batch 128


def _cfg(**kw) -> TrainConfig:
    base = dict(model="lenet-300-100", dataset="digits", epochs=2, batch_size=128, device="cpu", threads=1)
    return TrainConfig(**{**base, **kw})


def _mask(density=0.2, seed=0):
    torch.manual_seed(0)
    model = create_model("lenet-300-100", num_classes=10, in_channels=1, image_size=8)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(p.shape, generator=g) < density for k, p in prunable_parameters(model).items()}


def _cheap_spectrum(weight, mask):  # the recording plumbing without the eigen-solver's cost
    w = (weight * mask).abs()
    return (float(mask.sum()), float(w.sum()), float(w.max()), float("nan"))


def _untimed(history):
    return [{k: v for k, v in e.items() if "seconds" not in k} for e in history]


def test_drop_and_grow_is_exact_and_never_regrows_onto_kept_or_just_dropped_weights():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 30, generator=g)
    mask = torch.rand(40, 30, generator=g) < 0.3
    new, regrown, k = drop_and_grow(w, mask, 50, generator=torch.Generator().manual_seed(1))
    assert k == 50 and int(new.sum()) == int(mask.sum())
    assert not (regrown & mask).any()  # only positions pruned before the update
    dropped = mask & ~new
    assert int(dropped.sum()) == 50 and int(regrown.sum()) == 50
    assert float(w[dropped].abs().max()) <= float(w[mask & new].abs().min())  # smallest |w| went
    # regrow_dropped=True (ITOP/RigL official): grows among all zeros after the drop
    new2, regrown2, _ = drop_and_grow(w, mask, 50, generator=torch.Generator().manual_seed(1), regrow_dropped=True)
    assert int(new2.sum()) == int(mask.sum()) and not (regrown2 & (mask & new2 & ~regrown2)).any()
    # too few pruned positions: k is capped, the density stays exact
    dense = torch.ones(4, 5, dtype=torch.bool)
    dense[0, :2] = False
    new3, _, k3 = drop_and_grow(torch.randn(4, 5), dense, 10, generator=g)
    assert k3 == 2 and int(new3.sum()) == 18


def test_gradient_growth_picks_the_largest_gradients_among_pruned_positions():
    w = torch.arange(1.0, 13.0).view(3, 4)
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    grad = torch.zeros(3, 4)
    grad[0, 0] = 100.0  # kept: must be ignored
    grad[2, 3], grad[1, 0] = -9.0, 5.0
    new, regrown, k = drop_and_grow(w, mask, 2, generator=torch.Generator().manual_seed(0), growth="gradient",
                                    grad=grad)
    assert k == 2
    assert regrown.nonzero().tolist() == [[1, 0], [2, 3]]
    assert not new[0, 0] and not new[0, 1]  # the two smallest kept |w| were dropped
    with pytest.raises(ValueError, match="growth"):
        drop_and_grow(w, mask, 1, generator=torch.Generator(), growth="momentum")


def test_cosine_drop_fraction_schedule():
    assert drop_fraction_at(0, 0.5, 100) == 0.5
    assert drop_fraction_at(50, 0.5, 100) == pytest.approx(0.25)
    assert drop_fraction_at(100, 0.5, 100) == 0.0
    assert drop_fraction_at(50, 0.5, 100, "cosine", minimum=0.005) == pytest.approx(0.005 + 0.495 / 2)
    assert drop_fraction_at(25, 0.5, 100, "linear") == pytest.approx(0.375)
    with pytest.raises(ValueError, match="decay"):
        drop_fraction_at(1, 0.5, 10, "step")


def test_every_update_keeps_layer_counts_and_regrows_at_zero_with_zero_momentum():
    mask = _mask()
    counts = {k: int(m.sum()) for k, m in mask.items()}
    seen = []
    previous = {k: m.clone() for k, m in mask.items()}
    union = {k: m.clone() for k, m in mask.items()}

    def check(event, state):
        if event != "step_end" or state.step % 5:
            return
        params = prunable_parameters(state.model)
        for k, m in state.mask.items():
            assert int(m.sum()) == counts[k], (state.step, k)
            grown = m & ~previous[k]
            w = params[k].detach()
            assert bool((w[grown] == 0).all()) and bool((w[~m] == 0).all())
            buf = state.optimizer.state[params[k]]["momentum_buffer"]
            assert bool((buf[grown] == 0).all())
            previous[k] = m.clone()
            union[k] |= m
        seen.append(state.step)

    r = train_dst(_cfg(), mask=mask, update_interval=5, spectrum_fn=_cheap_spectrum, callbacks=[check],
                  progress=False)
    d = r.meta["dst"]
    assert seen == [5, 10, 15, 20] and d["updates"] == 4
    assert all(sum(e["moved"].values()) > 0 for e in d["trajectory"])
    assert r.density == pytest.approx(sum(counts.values()) / sum(m.numel() for m in mask.values()))
    ever = sum(int(u.sum()) for u in union.values())
    assert d["itop_rate"] == ever / sum(m.numel() for m in mask.values()) > r.density


def test_rigl_growth_through_the_trainer_keeps_the_layer_counts():
    mask = _mask(0.1)
    final = {}

    def grab(event, state):
        if event == "epoch_end":
            final.update({k: m.clone() for k, m in state.mask.items()})

    r = train_dst(_cfg(epochs=1), mask=mask, update_interval=4, growth="gradient", regrow_dropped=True,
                  spectrum_fn=_cheap_spectrum, callbacks=[grab], progress=False)
    assert r.meta["dst"]["updates"] == 2 and r.meta["dst"]["options"]["growth"] == "gradient"
    assert all(int(final[k].sum()) == int(m.sum()) for k, m in mask.items())
    assert not all(torch.equal(final[k], mask[k]) for k in mask)


def test_trajectory_has_one_entry_per_update_with_real_full_spectrum_coordinates():
    mask = _mask(0.3)
    r = train_dst(_cfg(epochs=1), mask=mask, update_interval=4, progress=False)
    d = r.meta["dst"]
    expected = [s for s in range(1, STEPS_PER_EPOCH + 1) if s % 4 == 0 and s < STEPS_PER_EPOCH]
    assert [e["step"] for e in d["trajectory"]] == expected == [4, 8] and d["updates"] == 2
    for e in d["trajectory"]:
        assert set(e["coords"]) == set(mask) and all(len(c) == 4 for c in e["coords"].values())
        assert math.isfinite(e["distance"])
    assert d["moving_distance"] > 0 and math.isfinite(d["anchor_distance"])
    per = d["moving_distance_per_layer"]
    assert d["moving_distance_sum"] == pytest.approx(sum(v for v in per.values() if math.isfinite(v)))
    assert set(d["initial"]) == set(d["final"]) == set(mask)


def test_drop_fraction_zero_equals_static_training_bit_for_bit():
    mask = _mask()
    static = train(_cfg(), mask=mask, progress=False)
    dst = train_dst(_cfg(), mask=mask, update_interval=3, drop_fraction=0.0, spectrum_fn=_cheap_spectrum,
                    progress=False)
    assert dst.meta["dst"]["updates"] == 7 and dst.meta["dst"]["itop_rate"] == pytest.approx(static.density)
    assert _untimed(static.history) == _untimed(dst.history)
    a, b = static.model.state_dict(), dst.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_masks_and_another_seed_differs():
    runs = [train_dst(_cfg(epochs=1), mask=_mask(), update_interval=4, seed=s, spectrum_fn=_cheap_spectrum,
                      progress=False) for s in (3, 3, 4)]
    masks = [{k: prunable_parameters(r.model)[k].detach() != 0 for k in _mask()} for r in runs]
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])
    assert not all(torch.equal(masks[0][k], masks[2][k]) for k in masks[0])


def test_interrupted_run_resumes_to_the_same_masks_and_record(tmp_path):
    mask, opts = _mask(), dict(update_interval=5, spectrum_fn=_cheap_spectrum, progress=False)
    full = train_dst(_cfg(epochs=3), mask=mask, run_dir=tmp_path / "full", **opts)

    class Stop(Exception):
        pass

    def interrupt(event, state):  # after the DST state of epoch 2 is saved, before its checkpoint
        if event == "epoch_end" and state.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train_dst(_cfg(epochs=3), mask=mask, run_dir=tmp_path / "run", callbacks=[interrupt], **opts)
    resumed = train_dst(_cfg(epochs=3), mask=mask, run_dir=tmp_path / "run", **opts)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    keep = ("step", "moved", "coords", "itop_rate")
    strip = lambda d: [{k: e[k] for k in keep} for e in d["trajectory"]]  # noqa: E731
    assert strip(full.meta["dst"]) == strip(resumed.meta["dst"])
    again = train_dst(_cfg(epochs=3), mask=mask, run_dir=tmp_path / "run", **opts)  # finished: from disk
    assert again.meta["dst"]["itop_rate"] == resumed.meta["dst"]["itop_rate"]
    with pytest.raises(ValueError, match="DST options"):
        train_dst(_cfg(epochs=3), mask=mask, run_dir=tmp_path / "run", **{**opts, "update_interval": 6})
    train(_cfg(epochs=1), mask=mask, run_dir=tmp_path / "static", progress=False)
    with pytest.raises(ValueError, match="not trained with DST"):
        train_dst(_cfg(epochs=1), mask=mask, run_dir=tmp_path / "static", **opts)


def test_moving_distance_readings_and_bad_options():
    # hand-written coordinates (delta_r, lambda, IMDB_r, IMDB_lambda); NaN = undefined
    a = {"x": [0.0, 0.0, 1.0, float("nan")], "y": [float("nan"), 1.0, 1.0, 1.0], "z": [1.0, 1.0, 1.0, 1.0]}
    b = {"x": [3.0, 4.0, 1.0, 0.0], "y": [0.0, 0.0, 0.0, 0.0], "z": [1.0, 1.0, 1.0, 1.0]}
    d = moving_distance(a, b)  # the dev code's inf -> 0: y moves by |(0, 1, 1, 1)| = sqrt(3)
    assert d["per_layer"] == {"x": 5.0, "y": pytest.approx(3 ** 0.5), "z": 0.0}
    assert d["mean"] == pytest.approx((5 + 3 ** 0.5) / 3) and d["valid_layers"] == 2
    assert d["stacked"] == pytest.approx((25 + 3) ** 0.5)
    d = moving_distance(a, b, invalid="drop")  # y is invalid at the start: left out
    assert d["per_layer"]["x"] == 5.0 and math.isnan(d["per_layer"]["y"]) and d["per_layer"]["z"] == 0.0
    assert d["mean"] == 2.5 and d["sum"] == 5.0 and d["valid_layers"] == 2
    with pytest.raises(ValueError, match="invalid"):
        moving_distance(a, b, invalid="nan")
    with pytest.raises(ValueError, match="same layers"):
        moving_distance(a, {"x": b["x"]})
    with pytest.raises(ValueError, match="update_interval"):
        DynamicSparsity(_mask(), update_interval=0)
    with pytest.raises(ValueError, match="growth"):
        DynamicSparsity(_mask(), growth="momentum")
    with pytest.raises(RuntimeError, match="begin"):
        train(_cfg(epochs=1), mask=_mask(), callbacks=[DynamicSparsity(_mask())], progress=False)
