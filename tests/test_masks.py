import pytest
import torch
from torch import nn

from pai import masks as M


def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 5))


def half_mask(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(p.shape, generator=g) < 0.5 for k, p in M.prunable_parameters(model).items()}


def test_prunable_parameters_are_conv_and_linear_weights_only():
    model = tiny_net()
    assert list(M.prunable_parameters(model)) == ["0.weight", "4.weight"]


def test_no_prunable_layer_is_a_clear_error():
    with pytest.raises(ValueError, match="no prunable"):
        M.prunable_parameters(nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()))


def test_density_and_apply():
    model = tiny_net()
    mask = half_mask(model)
    kept = sum(int(m.sum()) for m in mask.values())
    assert M.density(mask) == pytest.approx(kept / (36 + 256 * 5))
    M.apply_mask(model, mask)
    for k, p in M.prunable_parameters(model).items():
        assert torch.all(p[~mask[k]] == 0)
        assert torch.all(p[mask[k]] != 0)


def test_save_load_round_trip(tmp_path):
    model = tiny_net()
    mask = half_mask(model)
    path = M.save_mask(mask, tmp_path / "m" / "mask.pt", meta={"method": "test"})
    loaded = M.load_mask(path, model)
    assert M.masks_equal(mask, loaded)
    assert M.load_mask_meta(path)["method"] == "test"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("break_it, match", [
    (lambda m: m.pop("4.weight"), "4.weight"),
    (lambda m: m.__setitem__("9.weight", torch.ones(2, dtype=torch.bool)), "9.weight"),
    (lambda m: m.__setitem__("0.weight", torch.ones(4, 1, 5, 5, dtype=torch.bool)), "0.weight"),
])
def test_mask_that_does_not_fit_names_the_layer(tmp_path, break_it, match):
    model = tiny_net()
    mask = half_mask(model)
    break_it(mask)
    path = M.save_mask(mask, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=match):
        M.load_mask(path, model)


def test_interrupted_save_leaves_no_file(tmp_path, monkeypatch):
    def boom(obj, f):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        M.save_mask({"w": torch.ones(2, dtype=torch.bool)}, tmp_path / "mask.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("adapter", [M.to_torch_prune, M.to_parametrize])
def test_adapters_match_in_place_masking(adapter):
    x = torch.randn(3, 1, 8, 8)
    ref, other = tiny_net(), tiny_net()
    mask = half_mask(ref)
    M.apply_mask(ref, mask)
    adapter(other, mask)
    ref.eval(), other.eval()
    assert torch.allclose(ref(x), other(x), atol=1e-6)
    assert M.masks_equal(M.from_model(other), mask)
    # pruned weights stay pruned under SGD in the adapter form too
    opt = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        opt.zero_grad()
        other(x).sum().backward()
        opt.step()
    with torch.no_grad():
        for k, module in M.prunable_modules(other).items():
            assert torch.all(module.weight[~mask[k]] == 0)


def test_validate_density():
    for bad in (0, -0.1, 1.01):
        with pytest.raises(ValueError, match="density"):
            M.validate_density(bad)
    assert M.validate_density(1) == 1.0


# ---- layer-wise shuffle (Frankle et al., ICLR 2021, Sec. 5) ------------------------------------------

def test_layer_shuffle_keeps_each_layers_count_and_moves_the_positions():
    mask = half_mask(tiny_net())
    out = M.layer_shuffle(mask, seed=3)
    assert list(out) == list(mask)
    for k in mask:
        assert out[k].dtype == torch.bool and out[k].shape == mask[k].shape
        assert int(out[k].sum()) == int(mask[k].sum())  # the layer-wise density is unchanged
        assert not torch.equal(out[k], mask[k])  # which weights are kept is not
    assert M.masks_equal(out, M.layer_shuffle(mask, seed=3))  # seeded: the same shuffle again
    assert not M.masks_equal(out, M.layer_shuffle(mask, seed=4))


def test_layer_shuffle_accepts_a_float_0_1_mask_and_refuses_anything_else():
    mask = {k: v.float() for k, v in half_mask(tiny_net()).items()}
    out = M.layer_shuffle(mask, seed=0)
    assert all(int(out[k].sum()) == int(mask[k].sum()) for k in mask)
    mask["4.weight"][0, 0] = 0.5
    with pytest.raises(ValueError, match="'4.weight' holds 0.5"):
        M.layer_shuffle(mask, seed=0)


def test_prune_with_shuffle_is_the_pruners_mask_shuffled_and_labelled_apart():
    from pai.pruners import prune
    from pai.compendium.variants import label_of, unshuffled

    model = tiny_net()
    plain = prune(model, "magnitude", 0.2, seed=1, degenerate="ignore")
    shuffled = prune(model, "magnitude", 0.2, seed=1, degenerate="ignore", shuffle="layer")
    assert M.masks_equal(shuffled, M.layer_shuffle(plain, seed=1))
    with pytest.raises(ValueError, match="shuffle must be one of layer"):
        prune(model, "magnitude", 0.2, seed=1, shuffle="global")
    from pai.pruners import check_options

    check_options("phew", {"shuffle": "layer"})  # a spec may carry it for any pruner...
    with pytest.raises(ValueError, match="no option 'shuffle'"):
        check_options("dense", {"shuffle": "layer"})  # ...but the dense network has no mask to shuffle
    assert label_of("snip", {"train_mode": True, "shuffle": "layer"}) == "layer-shuffled snip (train mode)"
    assert unshuffled("layer-shuffled snip (train mode)") == "snip (train mode)"
    assert unshuffled("synflow-l2 (exact count)") == "synflow-l2 (exact count)"
