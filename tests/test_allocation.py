"""Layer-wise density allocation: uniform, ER, ERK (pai.pruners.allocation)."""
import math

import pytest
import torch
from torch import nn

from pai.pruners import allocation as A

CONV_SHAPES = {"c1": (16, 3, 3, 3), "c2": (32, 16, 3, 3), "c3": (64, 32, 3, 3), "s": (64, 32, 1, 1),
               "fc": (10, 64)}


def sizes(shapes):
    return {k: math.prod(s) for k, s in shapes.items()}


@pytest.mark.parametrize("scheme", ["erk", "er"])
@pytest.mark.parametrize("density", [0.01, 0.1, 0.3, 0.9])
def test_erk_keeps_density_times_n_with_every_layer_at_most_dense(scheme, density):
    dens = A.target_layer_densities(CONV_SHAPES, density, scheme)
    n = sizes(CONV_SHAPES)
    assert sum(dens[k] * n[k] for k in n) == pytest.approx(density * sum(n.values()), rel=1e-12)
    assert all(0 < p <= 1 for p in dens.values())


@pytest.mark.parametrize("scheme", ["uniform", "erk", "er"])
@pytest.mark.parametrize("density", [0.003, 0.05, 0.5, 1.0])
def test_budgets_are_exact_integers(scheme, density):
    budgets = A.layer_budgets(CONV_SHAPES, density, scheme)
    n = sizes(CONV_SHAPES)
    assert sum(budgets.values()) == round(density * sum(n.values()))
    assert all(0 <= budgets[k] <= n[k] for k in n)
    dens = A.target_layer_densities(CONV_SHAPES, density, scheme)
    assert all(abs(budgets[k] - dens[k] * n[k]) < 1 + 1e-9 for k in n)  # largest remainder: within one


def test_small_first_layer_is_made_dense():
    # ERK wants a density > 1 for a 3->4 layer next to big ones: it is capped at 1 and the rest re-solved
    shapes = {"first": (4, 3), "mid": (256, 4), "big": (256, 256), "out": (10, 256)}
    dens = A.target_layer_densities(shapes, 0.05, "erk")
    assert dens["first"] == 1.0
    assert all(dens[k] < 1 for k in ("mid", "big", "out"))
    n = sizes(shapes)
    assert sum(dens[k] * n[k] for k in n) == pytest.approx(0.05 * sum(n.values()), rel=1e-12)
    # without the cap the naive epsilon would have given the first layer more than all its weights
    raw = {k: sum(s) / math.prod(s) for k, s in shapes.items()}
    eps = 0.05 * sum(n.values()) / sum(raw[k] * n[k] for k in n)
    assert eps * raw["first"] > 1


def test_er_and_erk_differ_on_convs_and_agree_on_linears():
    erk, er = A.target_layer_densities(CONV_SHAPES, 0.1, "erk"), A.target_layer_densities(CONV_SHAPES, 0.1, "er")
    assert any(abs(erk[k] - er[k]) > 1e-6 for k in ("c1", "c2", "c3"))
    mlp = {"a": (300, 784), "b": (100, 300), "c": (10, 100)}
    erk, er = A.target_layer_densities(mlp, 0.1, "erk"), A.target_layer_densities(mlp, 0.1, "er")
    assert erk == pytest.approx(er)


def test_erk_gives_larger_density_to_smaller_layers():
    dens = A.target_layer_densities(CONV_SHAPES, 0.05, "erk")
    assert dens["c1"] > dens["c2"] > dens["c3"]


def test_uniform_is_the_same_everywhere():
    assert set(A.target_layer_densities(CONV_SHAPES, 0.37, "uniform").values()) == {0.37}
    budgets = A.layer_budgets(CONV_SHAPES, 0.37, "uniform")
    n = sizes(CONV_SHAPES)
    assert all(budgets[k] in (math.floor(0.37 * n[k]), math.ceil(0.37 * n[k])) for k in n)


def test_shapes_from_a_model():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 4))
    assert A.layer_shapes(model) == {"0.weight": (8, 3, 3, 3), "3.weight": (4, 8)}
    assert sum(A.layer_budgets(model, 0.5).values()) == round(0.5 * (216 + 32))
    shapes = A.layer_shapes({"w": torch.zeros(2, 3)})
    assert shapes == {"w": (2, 3)}


def test_round_budgets_respects_sizes():
    out = A.round_budgets({"a": 2.9, "b": 0.6}, {"a": 3, "b": 1}, 4)
    assert out == {"a": 3, "b": 1}
    out = A.round_budgets({"a": 1.5, "b": 1.5}, {"a": 5, "b": 5}, 3)
    assert sum(out.values()) == 3 and out == {"a": 2, "b": 1}  # ties: by name, deterministic


@pytest.mark.parametrize("density", [0, -0.1, 1.5])
def test_bad_density(density):
    with pytest.raises(ValueError, match="density"):
        A.target_layer_densities(CONV_SHAPES, density, "erk")


def test_bad_scheme():
    with pytest.raises(ValueError, match="erk"):
        A.target_layer_densities(CONV_SHAPES, 0.1, "gaussian")
