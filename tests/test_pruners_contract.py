"""What ``pai.prune`` promises around every pruner: the caller's RNG streams untouched, degenerate masks
reported (empty layers, no input->output path, a count far off target, nothing kept)."""
import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from pai import masks as M
from pai.models import create_model
from pai.pruners import PRUNERS, DegenerateMaskWarning, prune
from pai.pruners.checks import degenerate_problems, has_path


def chain(sizes=(6, 5, 4, 3)):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, bias=False), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    model.input_shape = (sizes[0],)
    return model


def test_prune_leaves_the_callers_rng_streams_as_it_found_them():
    # "create a model, prune it with seed 0" in a loop: each model must come from the continuing stream
    # (a prune that reseeds globally made every model after the first identical)
    torch.manual_seed(123)
    models = []
    for _ in range(3):
        models.append(create_model("lenet-300-100", 10, 1, 28))
        prune(models[-1], "random", 0.1, seed=0)
    w = [m.hidden[0].weight for m in models]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2]) and not torch.equal(w[0], w[2])
    # every stream continues exactly as if prune had not run
    model = chain()

    def draws(prune_first):
        random.seed(1), np.random.seed(1), torch.manual_seed(1)
        if prune_first:
            prune(model, "random", 0.5, seed=0)
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    assert draws(True) == draws(False)
    # the pruner itself is still seeded: same seed, same mask, whatever the caller's state
    torch.manual_seed(5)
    a = prune(chain(), "random", 0.5, seed=3)
    torch.manual_seed(6)
    assert M.masks_equal(a, prune(chain(), "random", 0.5, seed=3))


def test_rng_restored_when_the_pruner_raises():
    model = chain()
    torch.manual_seed(7)
    before = torch.get_rng_state()
    with pytest.raises(ValueError):
        prune(model, "synflow", 0.5, rule="nope")
    assert torch.equal(before, torch.get_rng_state())


def test_a_density_that_keeps_nothing_is_refused_before_any_work():
    with pytest.raises(ValueError, match="keeps no weight.*smallest useful density"):
        prune(chain(), "random", 1e-9)


def test_no_path_is_found_by_reachability_even_when_no_layer_is_empty():
    model = chain()
    mask = {k: torch.zeros_like(p, dtype=torch.bool) for k, p in M.prunable_parameters(model).items()}
    mask["0.weight"][0, :] = True  # input -> hidden unit 0 only
    mask["2.weight"][1, 1] = True  # hidden 1 -> 1: hidden unit 0 leads nowhere
    mask["4.weight"][:, 1] = True
    assert has_path(model, mask) is False
    kinds = [k for k, _ in degenerate_problems(model, mask, M.density(mask))]
    assert kinds == ["no-path"]
    mask["2.weight"][1, 0] = True  # now 0 -> 1 -> outputs connects input to output
    assert has_path(model, mask) is True
    assert degenerate_problems(model, mask, M.density(mask)) == []
    assert has_path(nn.Sequential(nn.Linear(3, 2)), {"0.weight": torch.ones(2, 3, dtype=torch.bool)}) is None


def _empty_first(model, density, *, seed, data=None):
    params = M.prunable_parameters(model)
    out = {k: torch.ones_like(p, dtype=torch.bool) for k, p in params.items()}
    out[next(iter(params))].zero_()
    return out


def test_degenerate_masks_warn_raise_or_pass_as_asked(monkeypatch):
    monkeypatch.setitem(PRUNERS._entries, "test-empty-first-layer", _empty_first)
    model = chain()
    with pytest.warns(DegenerateMaskWarning, match="1 of 3 layers keep no weight.*no input->output path"):
        prune(model, "test-empty-first-layer", 0.5)
    with pytest.raises(ValueError, match="degenerate"):
        prune(model, "test-empty-first-layer", 0.5, degenerate="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prune(model, "test-empty-first-layer", 0.5, degenerate="ignore")
        prune(model, "random", 0.5, degenerate="raise")  # a healthy mask passes silently
    with pytest.raises(ValueError, match="degenerate must be one of"):
        prune(model, "random", 0.5, degenerate="maybe")
    # the count check: the empty-first-layer mask keeps 35 of 65 weights where 0.2 asks for 13
    kinds = [k for k, _ in degenerate_problems(model, prune(model, "test-empty-first-layer", 0.2,
                                                            degenerate="ignore"), 0.2)]
    assert kinds == ["empty-layers", "density", "no-path"]
