"""The layer graph: prunable layers in forward order and who feeds whom.

Path-based pruners (PHEW, NPB) and metrics walk a network as a DAG of prunable layers.  The
official PHEW code infers that DAG from the order of ``model.parameters()`` and NPB from the order
of forward hooks; both silently break on other model definitions (PHEW's forward walk even
skips a conv at every downsampling block).  We instead trace the model with ``torch.fx`` and
record every edge explicitly:

- a layer's *predecessors* are the prunable layers whose output reaches its input through
  non-prunable operations only (BatchNorm, activations, pooling, additions, flatten);
  ``INPUT`` (-1) stands for the network input, ``OUTPUT`` (-1 in ``succs``) for the logits;
- an edge through an identity shortcut (the summand of a residual ``+`` that skips other
  prunable layers) is flagged ``skip=True``;
- an edge through ``flatten`` records ``flatten``: how many input features of the consumer
  belong to one channel of the producer (H*W of the flattened map; 1 after global pooling), so
  channel ``c`` feeds features ``c*flatten ... (c+1)*flatten - 1``;
- a 1x1 convolution whose output is summed with another branch that starts from the same
  sources is a projection ``shortcut``;
- a grouped convolution (MobileNet's depthwise convs) records ``groups``: input channel ``c`` then
  feeds only the outputs of its group.  Listed only with ``build_graph(..., allow_grouped=True)``: the
  path pruners and metrics built on this graph assume every input channel can reach every output.
"""
from __future__ import annotations

import contextlib
import io
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .masks import PRUNABLE_TYPES

INPUT = -1
OUTPUT = -1


@dataclass(frozen=True)
class Edge:
    src: int  # producer layer index, or INPUT
    dst: int  # consumer layer index, or OUTPUT
    skip: bool = False  # passes through an identity shortcut
    flatten: int = 1  # consumer features per producer channel (1: no flatten or pooled to 1x1)


@dataclass
class LayerNode:
    index: int
    name: str  # parameter name of the weight, the key of a Mask
    module_name: str
    kind: str  # "conv" or "linear"
    in_units: int  # input channels / features
    out_units: int  # output channels / features
    kernel: Tuple[int, int]  # (1, 1) for linear layers
    stride: Tuple[int, int] = (1, 1)
    in_spatial: Tuple[int, int] = (1, 1)  # H, W of the input map (1, 1 for linear)
    out_spatial: Tuple[int, int] = (1, 1)
    preds: List[Edge] = field(default_factory=list)
    succs: List[Edge] = field(default_factory=list)
    is_shortcut: bool = False
    groups: int = 1  # conv groups: in_units / groups input channels per output channel

    @property
    def shape(self) -> Tuple[int, ...]:
        if self.kind == "linear":
            return (self.out_units, self.in_units)
        return (self.out_units, self.in_units // self.groups, *self.kernel)


@dataclass
class LayerGraph:
    layers: List[LayerNode]
    input_shape: Tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.layers[self.index[key]]
        return self.layers[key]

    @property
    def index(self) -> Dict[str, int]:
        return {layer.name: layer.index for layer in self.layers}

    @property
    def names(self) -> List[str]:
        return [layer.name for layer in self.layers]

    def first_layers(self) -> List[int]:
        return [l.index for l in self.layers if any(e.src == INPUT for e in l.preds)]

    def last_layers(self) -> List[int]:
        return [l.index for l in self.layers if any(e.dst == OUTPUT for e in l.succs)]

    def describe(self) -> str:
        rows = []
        for l in self.layers:
            preds = ",".join(("in" if e.src == INPUT else str(e.src)) + ("~" if e.skip else "")
                             + (f"/f{e.flatten}" if e.flatten > 1 else "") for e in l.preds)
            rows.append(f"{l.index:3d} {l.name:40s} {l.kind:6s} {l.in_units:5d}->{l.out_units:<5d} "
                        f"k{l.kernel[0]}x{l.kernel[1]} {'shortcut ' if l.is_shortcut else ''}<- [{preds}]")
        return "\n".join(rows)


def build_graph(model: nn.Module, input_shape: Tuple[int, int, int] | None = None, *,
                allow_grouped: bool = False) -> LayerGraph:
    """Trace ``model`` and return its :class:`LayerGraph`.

    ``input_shape`` (C, H, W) defaults to ``model.input_shape`` (set by ``pai.models.create_model``).
    A grouped convolution is a ``ValueError`` unless ``allow_grouped`` (see the module docstring).
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ValueError("build_graph needs input_shape=(C, H, W) for a model without .input_shape")
    input_shape = check_input_shape(input_shape)
    layers = _layers_of(_shaped_trace(model, input_shape), allow_grouped)
    for layer in layers:  # successor lists: consumers in forward order, then the output
        for e in layer.preds:
            if e.src != INPUT:
                layers[e.src].succs.append(e)
    for layer in layers:
        layer.succs.sort(key=lambda e: (e.dst == OUTPUT, e.dst))
    _mark_shortcuts(layers)
    return LayerGraph(layers, input_shape)


def check_input_shape(input_shape) -> Tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints (``(C, H, W)``), else a ``ValueError`` naming it."""
    try:
        shape = tuple(int(s) for s in input_shape)
        if not shape or any(s < 1 or s != float(v) for s, v in zip(shape, input_shape)):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (C, H, W) as positive ints, got {input_shape!r}") from None
    return shape


def _shaped_trace(model: nn.Module, input_shape: Tuple[int, int, int]) -> fx.GraphModule:
    """``torch.fx`` trace of ``model`` with every node's output shape (one eval-mode batch-1 pass)."""
    gm = fx.symbolic_trace(model)
    was_training = model.training
    gm.eval()
    said = io.StringIO()  # ShapeProp prints a traceback before it raises; the error below says it in a line
    try:
        with torch.no_grad(), contextlib.redirect_stderr(said):
            p = next(model.parameters())
            ShapeProp(gm).propagate(torch.zeros((1, *input_shape), dtype=p.dtype, device=p.device))
        sys.stderr.write(said.getvalue())  # anything else the forward said (warnings)
    except RuntimeError as e:  # an input of the wrong shape: the first layer that cannot take it
        node = re.search(r"target=([\w.]+)", str(e))
        raise ValueError(f"input_shape {tuple(input_shape)} does not fit {type(model).__name__}"
                         + (f" (layer {node.group(1)} cannot take it)" if node else "")
                         + "; give the (C, H, W) of the model's input") from None
    finally:
        model.train(was_training)
    return gm


def _layers_of(gm: fx.GraphModule, allow_grouped: bool = False) -> List[LayerNode]:
    """Walk the traced nodes in order, tracking per node the set of (source layer, skip, flatten factor)
    its value derives from; a prunable module becomes a layer fed by its argument's sources."""
    modules = dict(gm.named_modules())
    layers: List[LayerNode] = []
    sources: Dict[fx.Node, frozenset] = {}
    ancestors: Dict[int, set] = {}

    def node_sources(arg) -> frozenset:
        found = set()
        for a in _node_args(arg):
            found |= sources.get(a, frozenset())
        return frozenset(found)

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            sources[node] = frozenset({(INPUT, False, 1)})
        elif node.op == "call_module" and isinstance(modules[node.target], PRUNABLE_TYPES):
            idx = len(layers)
            layer = _make_layer(idx, node, modules[node.target], allow_grouped)
            for src, skip, flat in sorted(node_sources(node.args[0])):
                layer.preds.append(Edge(src, idx, skip, flat))
            ancestors[idx] = set().union(*[{e.src} | ancestors.get(e.src, set()) for e in layer.preds])
            layers.append(layer)
            sources[node] = frozenset({(idx, False, 1)})
        elif _is_flatten(node, modules):
            in_meta = node.args[0].meta.get("tensor_meta") if isinstance(node.args[0], fx.Node) else None
            spatial = in_meta is not None and len(in_meta.shape) == 4
            factor = int(in_meta.shape[2] * in_meta.shape[3]) if spatial else 1
            sources[node] = frozenset((s, k, f * factor) for s, k, f in node_sources(node.args))
        elif _is_add(node):
            sources[node] = _merged_sources(node, sources, ancestors)
        elif node.op == "output":
            for src, skip, flat in sorted(node_sources(node.args)):
                if src != INPUT:
                    layers[src].succs.append(Edge(src, OUTPUT, skip, flat))
        else:
            sources[node] = node_sources((node.args, node.kwargs))
    return layers


def _merged_sources(node: fx.Node, sources: Dict[fx.Node, frozenset], ancestors: Dict[int, set]) -> frozenset:
    """The sources of a sum: each operand's, marked ``skip`` where it bypasses the other branch's layers."""
    operands = [a for a in node.args if isinstance(a, fx.Node)]
    merged = set()
    for a in operands:
        others = [b for b in operands if b is not a]
        other_layers = {s for b in others for s, _, _ in sources.get(b, ())}
        for s, skip, flat in sources.get(a, ()):
            # ``a`` skips over the other branch's layers if its source feeds into them.
            bypass = any(s == INPUT or s in ancestors.get(o, ()) for o in other_layers if o != INPUT)
            merged.add((s, skip or bypass, flat))
    return frozenset(merged)


def _node_args(arg):
    if isinstance(arg, fx.Node):
        yield arg
    elif isinstance(arg, (list, tuple)):
        for a in arg:
            yield from _node_args(a)
    elif isinstance(arg, dict):
        for a in arg.values():
            yield from _node_args(a)


def _make_layer(idx: int, node: fx.Node, module: nn.Module, allow_grouped: bool) -> LayerNode:
    in_meta = node.args[0].meta.get("tensor_meta")
    out_meta = node.meta.get("tensor_meta")
    name = f"{node.target}.weight"
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 and not allow_grouped:
            raise ValueError(f"layer {name!r} is a grouped convolution (groups={module.groups}): this consumer of "
                             f"the layer graph assumes dense channel connections; build_graph(..., "
                             f"allow_grouped=True) lists such layers with their groups")
        return LayerNode(idx, name, str(node.target), "conv", module.in_channels, module.out_channels,
                         tuple(module.kernel_size), tuple(module.stride),
                         tuple(in_meta.shape[2:4]) if in_meta is not None else (1, 1),
                         tuple(out_meta.shape[2:4]) if out_meta is not None else (1, 1), groups=module.groups)
    return LayerNode(idx, name, str(node.target), "linear", module.in_features, module.out_features, (1, 1))


def _is_flatten(node: fx.Node, modules) -> bool:
    if node.op == "call_function" and node.target in (torch.flatten,):
        return True
    if node.op == "call_method" and node.target in ("flatten", "view", "reshape"):
        return True
    return node.op == "call_module" and isinstance(modules[node.target], nn.Flatten)


def _is_add(node: fx.Node) -> bool:
    import operator

    if node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add):
        return sum(isinstance(a, fx.Node) for a in node.args) >= 2
    return node.op == "call_method" and node.target in ("add", "add_") and isinstance(node.args[1], fx.Node)


def _mark_shortcuts(layers: List[LayerNode]) -> None:
    """A 1x1 conv is a projection shortcut if another layer reads exactly the same sources and that
    layer's branch rejoins the shortcut's consumers (both feed a common successor)."""
    for layer in layers:
        if layer.kind != "conv" or layer.kernel != (1, 1):
            continue
        srcs = {e.src for e in layer.preds}
        my_succ = {e.dst for e in layer.succs}
        for other in layers:
            if other is layer or {e.src for e in other.preds} != srcs:
                continue
            # follow the other branch forward: its descendants must meet our successors
            frontier, seen = [other.index], set()
            while frontier:
                i = frontier.pop()
                if i in seen or i == OUTPUT:
                    continue
                seen.add(i)
                frontier.extend(e.dst for e in layers[i].succs)
            if my_succ & {d for i in seen for d in (e.dst for e in layers[i].succs)}:
                layer.is_shortcut = True
                break
