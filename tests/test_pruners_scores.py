"""Score-based pruners: random (uniform/ER/ERK), magnitude, SNIP, GraSP, SynFlow, SynFlow-L2, shuffle,
the fast exact top-k, and the ``prune`` command line."""
import itertools
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pai import masks as M
from pai.pruners import allocation, prune
from pai.pruners import cli, saliency, synflow
from pai.masks import threshold_mask_official, topk_flat, topk_global
from pai.pruners.random import shuffle_layerwise

METHODS = ["random", "random-er", "random-erk", "magnitude", "snip", "grasp", "synflow", "synflow-l2", "shuffle"]
RANDOM = ["random", "random-er", "random-erk", "shuffle"]
FAST = {"synflow": {"iterations": 10}, "synflow-l2": {"iterations": 10}}
THRESHOLD = {"synflow", "synflow-l2"}  # the published rules keep score > a threshold, not an exact count


def mlp(bias=True, sizes=(20, 16, 12, 4), seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    model.input_shape = (sizes[0],)
    return model


def convnet(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    model.input_shape = (3, 8, 8)
    return model


def fake_data(shape=(3, 8, 8), n=120, classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    return types.SimpleNamespace(x_train=torch.randn(n, *shape, generator=g), y_train=y, num_classes=classes)


def n_weights(model):
    return sum(p.numel() for p in M.prunable_parameters(model).values())


def run(model, method, density=0.2, seed=0, **options):
    return prune(model, method, density, seed=seed, data=fake_data(), **{**FAST.get(method, {}), **options})


# ---- properties every method has ---------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_exact_count_keys_and_model_untouched(method):
    model = convnet()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mask = run(model, method, 0.3)
    assert list(mask) == ["0.weight", "4.weight", "9.weight"]  # weights only: no bias, no BN
    n = n_weights(model)
    # without ties, SynFlow's rule (score > the k-th smallest, k = int((1-d) N)) keeps N - k; the PHEW
    # repo's SynFlow-L2 rule (score > np.percentile at rank (1-d)(N-1)) keeps N - floor((1-d)(N-1)) - 1
    expected = {"synflow": n - int(0.7 * n), "synflow-l2": n - int(0.7 * (n - 1)) - 1}
    assert M.num_kept(mask) == expected.get(method, round(0.3 * n))
    assert all(m.dtype == torch.bool for m in mask.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_mask(method):
    model = convnet()
    assert M.masks_equal(run(model, method, seed=3), run(model, method, seed=3))


@pytest.mark.parametrize("method", RANDOM)
def test_different_seeds_different_masks(method):
    model = convnet()
    assert not M.masks_equal(run(model, method, seed=1), run(model, method, seed=2))


def test_random_layer_counts():
    model = convnet()
    n = {k: p.numel() for k, p in M.prunable_parameters(model).items()}
    for method, scheme in (("random", "uniform"), ("random-erk", "erk"), ("random-er", "er")):
        mask = run(model, method, 0.15)
        budgets = allocation.layer_budgets(model, 0.15, scheme)
        assert {k: int(m.sum()) for k, m in mask.items()} == budgets
    mask = run(model, "random", 0.15)
    assert all(abs(int(mask[k].sum()) - 0.15 * n[k]) < 1 for k in n)


def test_bad_density_unknown_method_and_missing_data():
    model = convnet()
    for d in (0, 1.5, -0.2):
        with pytest.raises(ValueError, match="density"):
            prune(model, "random", d)
    with pytest.raises(KeyError, match="valid names:.*synflow"):
        prune(model, "synflowz", 0.1)
    for method in ("snip", "grasp"):
        with pytest.raises(ValueError, match="data"):
            prune(model, method, 0.1)
        with pytest.raises(ValueError, match="data"):
            saliency.snip_scores(model, None)


def test_density_one_keeps_everything():
    model = convnet()
    for method in METHODS:
        assert M.num_kept(run(model, method, 1.0)) == n_weights(model)


# ---- magnitude, SNIP, GraSP ----------------------------------------------------------------------

def test_magnitude_global_and_layer_scope():
    model = mlp()
    mask = run(model, "magnitude", 0.25)
    w = torch.cat([p.detach().abs().flatten() for p in M.prunable_parameters(model).values()])
    kept = torch.cat([m.flatten() for m in mask.values()])
    assert w[kept].min() >= w[~kept].max()
    layer = run(model, "magnitude", 0.25, scope="layer")
    for k, p in M.prunable_parameters(model).items():
        assert abs(int(layer[k].sum()) - 0.25 * p.numel()) < 1
        a = p.detach().abs()
        assert a[layer[k]].min() >= a[~layer[k]].max()
    with pytest.raises(ValueError, match="scope"):
        run(model, "magnitude", scope="kernel")


def test_prune_subset_size_seed_and_balance():
    data = fake_data(n=200, classes=5)
    x, y = saliency.prune_subset(data, 5, samples_per_class=4, seed=1)
    assert len(y) == 20
    x2, _ = saliency.prune_subset(data, 5, samples_per_class=4, seed=1)
    x3, _ = saliency.prune_subset(data, 5, samples_per_class=4, seed=2)
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    _, yb = saliency.prune_subset(data, 5, samples_per_class=4, class_balanced=True, seed=1)
    assert torch.bincount(yb, minlength=5).tolist() == [4] * 5


def test_snip_scores_are_abs_grad_times_weight():
    model = convnet().double().eval()
    data = fake_data()
    data.x_train = data.x_train.double()
    scores = saliency.snip_scores(model, data, seed=4)
    x, y = saliency.prune_subset(data, 5, seed=4)
    weights = M.prunable_parameters(model)
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(weights.values()))
    for (k, w), g in zip(weights.items(), grads):
        torch.testing.assert_close(scores[k], (g * w).abs())


def test_grasp_scores_match_a_finite_difference_hessian_vector_product():
    model = mlp().double().eval()
    data = types.SimpleNamespace(x_train=torch.randn(40, 20, dtype=torch.float64), y_train=torch.arange(40) % 4,
                                 num_classes=4)
    scores = saliency.grasp_scores(model, data, seed=0, temperature=2.0)
    x, y = saliency.prune_subset(data, 4, seed=0)
    weights = list(M.prunable_parameters(model).values())

    def grad_at(shift):
        with torch.no_grad():
            for w, s in zip(weights, shift):
                w.add_(s)
        g = torch.autograd.grad(F.cross_entropy(model(x) / 2.0, y), weights)
        with torch.no_grad():
            for w, s in zip(weights, shift):
                w.sub_(s)
        return g

    g = grad_at([torch.zeros_like(w) for w in weights])
    eps = 1e-5
    plus, minus = grad_at([eps * gi for gi in g]), grad_at([-eps * gi for gi in g])
    for (k, w), a, b in zip(M.prunable_parameters(model).items(), plus, minus):
        hg = (a - b) / (2 * eps)
        torch.testing.assert_close(scores[k], hg * w.detach(), rtol=1e-5, atol=1e-9)


def test_snip_train_mode_option_changes_bn_statistics_used():
    model = convnet()
    eval_mask = run(model, "snip", 0.2)
    train_mask = run(model, "snip", 0.2, train_mode=True)
    assert M.num_kept(train_mask) == M.num_kept(eval_mask)
    assert not M.masks_equal(eval_mask, train_mask)


# ---- SynFlow and SynFlow-L2 against a brute-force sum over paths --------------------------------

def brute_force_path_sums(model, power):
    """Per weight: the sum over every input->output path through it (and every path starting at a
    bias) of the product of |θ|**power along the path; inputs are ones."""
    lin = [m for m in model if isinstance(m, nn.Linear)]
    a = [m.weight.detach().abs().double() ** power for m in lin]
    b = [(m.bias.detach().abs().double() ** power if m.bias is not None else torch.zeros(m.out_features))
         for m in lin]
    s = [torch.zeros_like(t) for t in a]
    widths = [lin[0].in_features] + [m.out_features for m in lin]
    for start in range(len(lin) + 1):  # 0: a path from an input; l: from the bias of layer l
        for nodes in itertools.product(*[range(w) for w in widths[max(start, 1) - (start == 0):]]):
            if start == 0:
                value, edges = 1.0, list(zip(range(len(lin)), nodes[1:], nodes[:-1]))
            else:
                value = float(b[start - 1][nodes[0]])
                edges = [(start + i, nodes[i + 1], nodes[i]) for i in range(len(nodes) - 1)]
            for layer, out, inp in edges:
                value *= float(a[layer][out, inp])
            for layer, out, inp in edges:
                s[layer][out, inp] += value
    return {f"{2 * i}.weight": t for i, t in enumerate(s)}


@pytest.mark.parametrize("bias", [False, True])
def test_synflow_scores_equal_brute_force_path_sums(bias):
    model = mlp(bias=bias, sizes=(3, 4, 3, 2), seed=1)
    if bias:
        with torch.no_grad():
            for m in model:
                if isinstance(m, nn.Linear):
                    m.bias.uniform_(-1, 1)
    expected = brute_force_path_sums(model, 1)
    scores = synflow.flow_scores(model, kind="synflow")
    for k in expected:
        torch.testing.assert_close(scores[k], expected[k], rtol=1e-12, atol=0)
    # SynFlow-L2 (PHEW): |dR2/d(θ²)|·|θ| = (path sums of θ²) / |θ|; Gebhart: θ·dR2/dθ = 2·(path sums of θ²)
    expected2 = brute_force_path_sums(model, 2)
    phew = synflow.flow_scores(model, kind="phew")
    gebhart = synflow.flow_scores(model, kind="gebhart")
    for k, p in M.prunable_parameters(model).items():
        torch.testing.assert_close(phew[k], expected2[k] / p.detach().abs().double(), rtol=1e-10, atol=0)
        torch.testing.assert_close(gebhart[k], expected2[k], rtol=1e-12, atol=0)


def test_one_synflow_iteration_is_the_top_k_of_the_path_sums():
    model = mlp(bias=False, sizes=(3, 4, 3, 2), seed=2)
    expected = topk_global(brute_force_path_sums(model, 1), round(0.4 * 30))
    assert M.masks_equal(prune(model, "synflow", 0.4, iterations=1, rule="exact", dtype="float64"), expected)
    assert M.masks_equal(prune(model, "synflow", 0.4, iterations=1), expected)  # no ties: the same set
    expected = topk_global(brute_force_path_sums(model, 2), round(0.4 * 30))
    assert M.masks_equal(prune(model, "synflow-l2", 0.4, iterations=1, variant="gebhart", rule="exact"), expected)
    # SynFlow-L2's default, the PHEW repo's rule: keep score > np.percentile(scores, 100 (1 - d)), with
    # the PHEW score |dR2/d(θ²)|·|θ| = (path sums of θ²) / |θ|
    paths2 = brute_force_path_sums(model, 2)
    phew = {k: paths2[k] / p.detach().abs().double() for k, p in M.prunable_parameters(model).items()}
    tau = np.percentile(torch.cat([v.reshape(-1) for v in phew.values()]).numpy(), 60.0)
    mask = prune(model, "synflow-l2", 0.4, iterations=1, dtype="float64")
    assert M.masks_equal(mask, {k: v > tau for k, v in phew.items()})
    assert M.num_kept(mask) == 30 - int(0.6 * 29) - 1  # 12: rank 17.4 of 0..29 -> ranks 18..29 kept


def tied_net():
    """2 -> 3 -> 1, no biases, weights chosen so that SynFlow scores tie.  On the ones input the score
    of a weight is the sum of the path products through it:
        W1 = [[3, 3], [1, 1], [1, 1]], W2 = [[1, 1, 1]]
        scores W1 = [[3, 3], [1, 1], [1, 1]]  (|w1| * |w2| of its hidden unit)
        scores W2 = [[6, 2, 2]]               (|w2| * sum of |w1| into its hidden unit)"""
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.0, -3.0], [1.0, 1.0], [-1.0, 1.0]]))  # signs do not matter
        model[2].weight.copy_(torch.tensor([[1.0, 1.0, -1.0]]))
    model.input_shape = (2,)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_synflow_threshold_rule_prunes_every_tie_at_the_threshold(dtype):
    # SynFlow Alg. 1 / official _global_mask at density 0.4 of N = 9: k = int(0.6 * 9) = 5, the 5th
    # smallest of [1, 1, 1, 1, 2, 2, 3, 3, 6] is 2, keep score > 2: both 3s and the 6 -- the tied 2s
    # go, so 3 weights are kept, not round(3.6) = 4
    model = tied_net()
    mask = prune(model, "synflow", 0.4, iterations=1, dtype=dtype, degenerate="ignore")
    assert mask["0.weight"].tolist() == [[True, True], [False, False], [False, False]]
    assert mask["2.weight"].tolist() == [[True, False, False]]
    # the exact-count option keeps 4: the fourth is the first of the tied 2s by position (W2[0, 1])
    exact = prune(model, "synflow", 0.4, iterations=1, dtype=dtype, rule="exact")
    assert exact["0.weight"].tolist() == [[True, True], [False, False], [False, False]]
    assert exact["2.weight"].tolist() == [[True, True, False]]
    # at density 0.5: k = 4, threshold 1, keep > 1: the four tied 1s go and the 2s stay (5 kept)
    half = prune(model, "synflow", 0.5, iterations=1, dtype=dtype)
    assert half["0.weight"].tolist() == [[True, True], [False, False], [False, False]]
    assert half["2.weight"].tolist() == [[True, True, True]]
    with pytest.raises(ValueError, match="rule"):
        prune(model, "synflow", 0.4, rule="stable")


def test_float32_synflow_collapse_is_never_silent():
    # 62 linear layers whose |w| row sums are ~8: the float32 path product overflows (~1e56), every
    # score becomes inf or nan and ties; the official code would abort on the count.  pai.prune names
    # the fix, float64 is exact.
    torch.manual_seed(0)
    layers = [nn.Linear(4, 8, bias=False), nn.ReLU()]
    for _ in range(60):
        layers += [nn.Linear(8, 8, bias=False), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(8, 2, bias=False))
    model.input_shape = (4,)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(6.0)
    with pytest.raises(ValueError, match="degenerate.*dtype=float64"):
        prune(model, "synflow", 0.3, iterations=4)
    mask = prune(model, "synflow", 0.3, iterations=4, dtype="float64", degenerate="raise")
    assert M.num_kept(mask) == 3888 - int(0.7 * 3888)


def reference_loop(model, density, kind, iterations, rule, dtype):
    """SynFlow the slow, obvious way: full scores every step, official rule / plain top-k."""
    total, mask = n_weights(model), None
    for d in synflow.density_schedule(density, iterations):
        s = synflow.flow_scores(model, mask, kind=kind, dtype=dtype)
        if rule == "threshold":
            mask = threshold_mask_official(s, d)
        elif rule == "percentile":  # the PHEW repo's SynFlow-L2 selection, with numpy itself
            flat = torch.cat([v.reshape(-1) for v in s.values()]).double().numpy()
            tau = np.percentile(flat, (1 - d) * 100)
            mask = {k: v.double() > float(tau) for k, v in s.items()}
        else:
            if mask is not None:  # a pruned weight never comes back
                s = {k: v.masked_fill(~mask[k], -float("inf")) for k, v in s.items()}
            mask = topk_global(s, round(d * total))
    return mask


@pytest.mark.parametrize("kind", ["synflow", "phew", "gebhart"])
@pytest.mark.parametrize("rule,dtype", [("exact", "float64"), ("threshold", "float32"), ("threshold", "float64"),
                                        ("percentile", "float32"), ("percentile", "float64")])
def test_fast_loop_equals_the_reference_loop(kind, rule, dtype):
    model = convnet(seed=5)
    fast = synflow.iterative_flow(model, 0.05, kind=kind, iterations=6, rule=rule, dtype=dtype)
    assert M.masks_equal(fast, reference_loop(model, 0.05, kind, 6, rule, dtype))


def test_synflow_masks_are_nested_along_the_schedule_and_linear_schedule_works():
    model = convnet(seed=6)
    assert synflow.density_schedule(0.01, 4) == pytest.approx([0.01 ** 0.25, 0.1, 0.01 ** 0.75, 0.01])
    assert synflow.density_schedule(0.2, 4, "linear") == pytest.approx([0.8, 0.6, 0.4, 0.2])
    coarse = prune(model, "synflow", 0.3, iterations=5, rule="exact")
    fine = prune(model, "synflow", 0.3, iterations=5, schedule="linear", rule="exact")
    assert M.num_kept(coarse) == M.num_kept(fine) == round(0.3 * n_weights(model))
    steps = [prune(model, "synflow", 0.3 ** (k / 4), iterations=k, schedule="exponential") for k in (1, 2, 3)]
    for bigger, smaller in zip(steps, steps[1:]):  # the schedule's masks after 1, 2, 3 of 4 steps nest
        assert all(bool((smaller[k] <= bigger[k]).all()) for k in bigger)
    with pytest.raises(ValueError, match="schedule"):
        prune(model, "synflow", 0.3, schedule="cosine")
    with pytest.raises(ValueError, match="variant"):
        prune(model, "synflow-l2", 0.3, variant="l3")
    with pytest.raises(ValueError, match="dtype"):
        prune(model, "synflow", 0.3, dtype="int8")


def test_synflow_needs_an_input_shape():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="input_shape"):
        prune(model, "synflow", 0.5)
    assert M.num_kept(prune(model, "synflow", 0.5, input_shape=(4,))) == 9


def test_synflow_on_a_resnet():
    from pai.models import create_model

    from pai.metrics.paths import effective_paths

    model = create_model("resnet20", 10, 3, 8)
    n = n_weights(model)
    mask = prune(model, "synflow", 0.02, iterations=20, degenerate="raise")  # official: float32, threshold
    assert M.num_kept(mask) == n - int(0.98 * n)
    # float64 gives the same mask on ResNet-20 (measured: identical at 0.01 and 0.1, 32 px, 100 steps)
    double = prune(model, "synflow", 0.02, iterations=20, dtype=torch.float64)
    iou = M.num_kept({k: mask[k] & double[k] for k in mask}) / M.num_kept({k: mask[k] | double[k] for k in mask})
    assert iou >= 0.99
    # iterative SynFlow avoids layer collapse: both projection shortcuts and every other layer keep
    # weights (single-shot SynFlow empties shortcuts, ganguli-lab/Synaptic-Flow#7), and paths survive
    shortcut = [k for k in mask if "shortcut" in k]
    assert len(shortcut) == 2 and all(int(mask[k].sum()) > 0 for k in mask)
    assert effective_paths(model, mask) > 0


# ---- the fast exact top-k ----------------------------------------------------------------------

def test_topk_flat_and_select_top_equal_a_stable_sort():
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        n = int(torch.randint(1, 3000, (1,), generator=g))
        x = torch.randint(0, 7 if trial % 2 else 10**6, (n,), generator=g).double()
        if trial % 5 == 0:
            x[torch.rand(n, generator=g) < 0.1] = float("nan")
        keep = int(torch.randint(0, n + 1, (1,), generator=g))
        ref = torch.zeros(n, dtype=torch.bool)
        ref[torch.sort(-x, stable=True).indices[:keep]] = True
        assert torch.equal(topk_flat(x, keep), ref)
        if trial % 5:  # select_top takes NaN-free scores split in parts
            cuts = sorted(torch.randint(0, n + 1, (3,), generator=g).tolist())
            parts = dict(zip("abcd", torch.tensor_split(x, cuts)))
            got = torch.cat(list(synflow.select_top(parts, keep).values()))
            assert torch.equal(got, ref)


@pytest.mark.parametrize("sampled", [0.0, 1e9])
def test_kth_largest_is_exact_when_the_sample_misleads(sampled):
    # the strided sample (every 4th entry here) sees one value only; the answer lies among the others,
    # inside the bracket (0) or outside it, which takes the full fallback (1e9)
    x = torch.arange(300_000, dtype=torch.float64)
    x[::4] = sampled
    ref = torch.sort(x, descending=True).values
    for k in (1, 7, 74_999, 75_001, 150_000, 300_000):
        assert synflow.kth_largest([x[:100_000], x[100_000:]], k) == ref[k - 1]


# ---- shuffle -------------------------------------------------------------------------------------

def test_shuffle_keeps_layer_counts_and_moves_positions(tmp_path):
    model = convnet()
    base = prune(model, "random-erk", 0.3, seed=0)
    shuffled = prune(model, "shuffle", 0.3, seed=0)  # base="random-erk" with the same seed
    partial = [k for k in base if 0 < int(base[k].sum()) < base[k].numel()]  # ERK made a layer dense
    assert len(partial) >= 2
    for k in base:
        assert int(base[k].sum()) == int(shuffled[k].sum())
        assert torch.equal(base[k], shuffled[k]) == (k not in partial)
    mag = prune(model, "magnitude", 0.3)
    path = M.save_mask(mag, tmp_path / "mag.pt")
    for explicit in (mag, str(path)):
        out = prune(model, "shuffle", 0.9, seed=1, mask=explicit)  # density ignored: the mask's counts
        assert {k: int(v.sum()) for k, v in out.items()} == {k: int(v.sum()) for k, v in mag.items()}
        assert not M.masks_equal(out, mag)
    out = prune(model, "shuffle", 0.3, seed=1, base="snip", data=fake_data(), base_options={"samples_per_class": 2})
    assert M.num_kept(out) == round(0.3 * n_weights(model))
    with pytest.raises(ValueError, match="data"):
        prune(model, "shuffle", 0.3, base="snip")
    assert M.masks_equal(shuffle_layerwise(mag, 5), shuffle_layerwise(mag, 5))


# ---- the command line ----------------------------------------------------------------------------

def test_cli_writes_a_loadable_mask(tmp_path, capsys):
    out = tmp_path / "m.pt"
    rc = cli.main(["--model", "lenet-300-100", "--method", "synflow", "--density", "0.05", "--seed", "2",
                   "--out", str(out), "--option", "iterations=3", "--option", "dtype=float32"])
    assert rc == 0
    from pai.models import create_model

    mask = M.load_mask(out, create_model("lenet-300-100", 10, 1, 28))
    assert M.num_kept(mask) == round(0.05 * 266200)
    meta = M.load_mask_meta(out)
    assert meta["method"] == "synflow" and meta["seed"] == 2
    assert meta["options"] == {"iterations": 3, "dtype": "float32"}
    assert "hidden.0.weight" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--method", "random", "--density", "0"], "density"),
    (["--method", "random", "--density", "1.5"], "density"),
    (["--method", "nosuch", "--density", "0.1"], "valid names"),
    (["--method", "snip", "--density", "0.1"], "data-dependent"),
    (["--method", "random", "--density", "0.1", "--option", "bogus=1"], "no option 'bogus'"),
    (["--method", "random", "--density", "0.1", "--option", "novalue"], "key=value"),
])
def test_cli_refuses_bad_input_without_writing(tmp_path, capsys, argv, message):
    out = tmp_path / "m.pt"
    assert cli.main(["--model", "lenet-300-100", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_parses_option_values():
    assert cli.parse_options(["a=1", "b=0.5", "c=true", "d=none", "e=float32", "f={\"x\": 2}"]) == {
        "a": 1, "b": 0.5, "c": True, "d": None, "e": "float32", "f": {"x": 2}}
