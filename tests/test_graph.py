"""The layer graph records who feeds whom, including residual, shortcut and flatten edges."""
import pytest
import torch

from pai.graph import INPUT, OUTPUT, build_graph
from pai.masks import prunable_parameters
from pai.models import create_model


def graph_of(name, shape=(3, 32, 32)):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=shape[0], image_size=shape[1])
    return model, build_graph(model)


def test_mlp_is_a_chain_with_a_flatten_from_the_image():
    model, g = graph_of("lenet-300-100", (1, 28, 28))
    assert g.names == list(prunable_parameters(model))
    assert [(e.src, e.flatten) for e in g[0].preds] == [(INPUT, 784)]
    assert [e.src for e in g[1].preds] == [0] and [e.src for e in g[2].preds] == [1]
    assert [e.dst for e in g[2].succs] == [OUTPUT]


def test_lenet5_flatten_factor_is_the_spatial_size():
    _, g = graph_of("lenet5", (1, 28, 28))
    conv2, fc1 = g[1], g[2]
    assert conv2.kind == "conv" and fc1.kind == "linear"
    (edge,) = fc1.preds
    assert edge.src == conv2.index and edge.flatten * conv2.out_units == fc1.in_units


def test_resnet20_edges():
    model, g = graph_of("resnet20")
    assert g.names == list(prunable_parameters(model))
    shortcuts = [l.name for l in g if l.is_shortcut]
    assert len(shortcuts) == 2 and all("shortcut" in n for n in shortcuts)
    idx = g.index
    # first block of stage 1: identity shortcut, so its conv2 output and the stem both reach block 2
    b2c1 = g[idx["layer1.1.conv1.weight"]]
    srcs = {(g[e.src].name, e.skip) for e in b2c1.preds}
    assert ("layer1.0.conv2.weight", False) in srcs and ("conv1.weight", True) in srcs
    # a projection block: the shortcut reads the same sources as the block's first conv
    sc = g[idx["layer2.0.shortcut.0.weight"]]
    c1 = g[idx["layer2.0.conv1.weight"]]
    assert {e.src for e in sc.preds} == {e.src for e in c1.preds}
    # global pooling: the classifier gets one feature per channel
    fc = g[idx["fc.weight"]]
    assert all(e.flatten == 1 for e in fc.preds) and [e.dst for e in fc.succs] == [OUTPUT]
    assert g.first_layers() == [0] and g.last_layers() == [len(g) - 1]


def reachable(g, start: int, forward: bool) -> bool:
    """Whether layer ``start`` reaches the output (forward) or is reached from the input (backward)."""
    seen, stack = set(), [start]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        for e in (g[i].succs if forward else g[i].preds):
            nxt = e.dst if forward else e.src
            if nxt == (OUTPUT if forward else INPUT):
                return True
            stack.append(nxt)
    return False


def residual_reference(model):
    """``{layer: {(source layer or "in", skip)}}`` written from the block definitions (not traced): a
    block's branch and projection read the residual stream; the block's output stream is its last conv
    plus either its projection or, through the identity, everything the input stream carried (skip)."""
    expected = {"conv1.weight": {("in", False)}}
    stream = {"conv1.weight": False}
    blocks = [(n, m) for n, m in model.named_modules() if hasattr(m, "shortcut") and hasattr(m, "conv2")]
    for name, block in blocks:
        convs = [c for c in ("conv1", "conv2", "conv3") if hasattr(block, c)]
        expected[f"{name}.conv1.weight"] = set(stream.items())
        for prev, c in zip(convs, convs[1:]):
            expected[f"{name}.{c}.weight"] = {(f"{name}.{prev}.weight", False)}
        out = {f"{name}.{convs[-1]}.weight": False}
        if isinstance(block.shortcut, torch.nn.Identity):
            out.update({src: True for src in stream})
        else:
            expected[f"{name}.shortcut.0.weight"] = set(stream.items())
            out[f"{name}.shortcut.0.weight"] = False
        stream = out
    expected["fc.weight"] = set(stream.items())
    return expected


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "resnet50", "wrn-28-2"])
def test_every_layer_has_inputs_and_reaches_the_output(name):
    model, g = graph_of(name)
    for layer in g:
        assert reachable(g, layer.index, True) and reachable(g, layer.index, False), layer.name
        for e in layer.preds:
            if e.src != INPUT:
                assert g[e.src].out_units * e.flatten == layer.in_units, layer.name
    assert sum(l.is_shortcut for l in g) == {"vgg16": 0, "resnet18": 3, "resnet50": 4, "wrn-28-2": 3}[name]
    assert all(("shortcut" in l.name) == l.is_shortcut for l in g)


def test_reachability_checker_sees_a_cut():
    _, g = graph_of("resnet20")
    fc = g.index["fc.weight"]
    saved = g[fc].succs
    g[fc].succs = []  # the classifier no longer feeds the output: nothing reaches it
    assert not reachable(g, 0, True) and reachable(g, 0, False)
    g[fc].succs = saved


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "wrn-28-2", "resnet20"])
def test_residual_edges_and_skip_flags_match_the_block_definitions(name):
    model, g = graph_of(name)
    expected = residual_reference(model)
    assert set(expected) == set(g.names)
    for layer in g:
        got = {("in" if e.src == INPUT else g[e.src].name, e.skip) for e in layer.preds}
        assert got == expected[layer.name], layer.name
