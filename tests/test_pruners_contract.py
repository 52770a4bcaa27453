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
from pai.pruners import PRUNERS, DegenerateMaskWarning, names, prune
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


# ---- one contract for every method ----------------------------------------------------------------

CHEAP = {"synflow": dict(iterations=2), "synflow-l2": dict(iterations=2), "rreg": dict(n_graphs=2),
         "pags": dict(candidates=2), "pegs": dict(candidates=1, pretrain_iterations=2, pretrain_batch_size=4)}
REVISED = {"synflow": 2, "synflow-l2": 2, "xnet": 2, "rreg": 2, "random-graph": 2, "phew": 2, "npb": 2}


def small_convnet():
    """A network pai did not build: no ``input_shape`` attribute to lean on."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def images(n=12):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 10


@pytest.mark.parametrize("method", names())
def test_every_method_takes_the_one_contract(method):
    from dataclasses import FrozenInstanceError

    from pai.data import Dataset
    from pai.pruners import Pruner, get, option_names

    rec = get(method)
    assert isinstance(rec, Pruner) and rec.name == method
    with pytest.raises(FrozenInstanceError):
        rec.needs_data = not rec.needs_data
    assert rec.revision == REVISED.get(method, 1) and (rec.revision == 1) == (rec.revision_note == "")
    assert rec.needs_data == (method in ("snip", "grasp", "pegs"))
    assert rec.returns_state == (method == "pegs")
    assert rec.needs_input_shape == (method in ("synflow", "synflow-l2", "phew", "npb"))
    assert option_names(method) is not None  # every option is declared, so a typo is caught up front
    opts = CHEAP.get(method, {})
    x, y = images()
    # data as an (x, y) pair: the input shape comes from it (the model has no .input_shape)
    pair = prune(small_convnet(), method, 0.5, seed=3, data=(x, y), degenerate="ignore", **opts)
    pair = pair[0] if isinstance(pair, tuple) else pair
    assert set(pair) == set(M.prunable_parameters(small_convnet()))
    # a Dataset, and an iterable of batches (a DataLoader) give the same mask; input_shape is accepted by all
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=5)
    for data in (Dataset.from_tensors(x, y), loader):
        other = prune(small_convnet(), method, 0.5, seed=3, data=data, input_shape=(3, 8, 8),
                      degenerate="ignore", **opts)
        assert M.masks_equal(pair, other[0] if isinstance(other, tuple) else other)
    # what it needs is refused in one line, before any work; so is an option it does not take
    if rec.needs_data:
        with pytest.raises(ValueError, match=f"pruner '{method}' is data-dependent: pass data="):
            prune(small_convnet(), method, 0.5, input_shape=(3, 8, 8), **opts)
    elif rec.needs_input_shape:
        with pytest.raises(ValueError, match=f"pruner '{method}' traces the network and needs the input shape"):
            prune(small_convnet(), method, 0.5, **opts)
    else:
        prune(small_convnet(), method, 0.5, degenerate="ignore", **opts)  # neither data nor a shape needed
    with pytest.raises(ValueError, match=f"method '{method}' has no option 'bogus'"):
        prune(small_convnet(), method, 0.5, data=(x, y), bogus=1)


def test_the_metadata_lives_only_in_the_records():
    import pai.pruners as P

    for gone in ("needs_data", "revised", "returns_state", "DATA_DEPENDENT"):
        assert not hasattr(P, gone)
    for name in P.names():  # the registered functions carry no metadata attributes of their own
        fn = P.get(name).fn
        assert not any(hasattr(fn, a) for a in ("needs_data", "revision", "returns_state", "density_free",
                                                 "degenerate_hint"))


def test_bad_data_and_input_shapes_are_refused_in_one_line():
    model = small_convnet()
    for bad, match in ((3, "got int"), ("cifar10", "got str"), ([(1, 2)], "item 0 is a tuple, not an"),
                       ([], "gave no batch")):
        with pytest.raises(ValueError, match=f"data must be a pai Dataset.*{match}"):
            prune(model, "snip", 0.5, data=bad)
    with pytest.raises(ValueError, match="input_shape must be a tuple of positive ints"):
        prune(model, "synflow", 0.5, input_shape=(3, -8, 8))
    with pytest.raises(ValueError, match="input_shape must be a tuple"):
        prune(model, "synflow", 0.5, input_shape="3x8x8")
