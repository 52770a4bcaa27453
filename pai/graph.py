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
- a grouped convolution (MobileNet's depthwise convs, RegNet's group convs) records ``groups``: input
  channel ``c`` feeds only the ``out_units / groups`` outputs of its group, so the layer's channel graph
  is block-diagonal (``groups`` blocks of ``in_units / groups`` x ``out_units / groups``; a depthwise
  conv is a matching);
- an edge whose channels do not map one to one records ``units``: for every input unit of the consumer,
  the producer unit feeding it (``-1``: another producer).  Concatenation (DenseNet, SqueezeNet's fire
  modules, ShuffleNet) is a union of channels, so each operand feeds a contiguous range of the
  consumer; ``chunk``/``split``/slicing (ShuffleNet) selects a range of the producer; a channel shuffle
  (``view``/``transpose``/``view``) is a permutation.  The map is computed, not pattern-matched: the
  data-movement operations of the trace are applied to tensors holding each producer's unit index, so
  any composition of views, permutes, concatenations and slices is exact.  ``units`` is ``None`` where
  the map is the plain one (consumer unit ``v`` from producer unit ``v // flatten``);
- a *gate* edge (``gate=True``) comes from a squeeze-and-excitation branch (Hu et al., CVPR 2018;
  MobileNet-V3, EfficientNet, RegNet-Y): ``x * sigmoid(f(pool(x)))``.  The product scales each channel
  of ``x`` by a positive factor: it neither creates nor removes a path of ``x`` (path metrics pass it as
  an activation), while the branch's own layers (``f``) read ``x`` and end in the gate, a side branch
  whose output multiplies, rather than adds to, the flow.  Any other product of two flows has no path
  interpretation and is refused by the path metrics.
"""
from __future__ import annotations

import contextlib
import io
import re
import sys
from dataclasses import dataclass, field
import operator
from typing import Dict, List, Optional, Tuple

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from pai.masks import PRUNABLE_TYPES

INPUT = -1
OUTPUT = -1


@dataclass(frozen=True)
class Edge:
    src: int  # producer layer index, or INPUT
    dst: int  # consumer layer index, or OUTPUT
    skip: bool = False  # passes through an identity shortcut
    flatten: int = 1  # consumer features per producer channel (1: no flatten or pooled to 1x1)
    gate: bool = False  # src is a gating side branch (squeeze-and-excitation) that scales dst's input
    # per consumer input unit, the src unit feeding it (-1: none); None: the plain map v -> v // flatten
    units: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)

    def unit_map(self, n_in: int) -> torch.Tensor:
        """The consumer-unit -> producer-unit map of this edge over the consumer's ``n_in`` input units."""
        if self.units is not None:
            return self.units
        return torch.div(torch.arange(n_in), self.flatten, rounding_mode="floor")


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
                             + (f"/f{e.flatten}" if e.flatten > 1 else "") + ("^" if e.gate else "")
                             + ("*" if e.units is not None else "") for e in l.preds)
            rows.append(f"{l.index:3d} {l.name:40s} {l.kind:6s} {l.in_units:5d}->{l.out_units:<5d} "
                        f"k{l.kernel[0]}x{l.kernel[1]}{f' g{l.groups}' if l.groups > 1 else ''} "
                        f"{'shortcut ' if l.is_shortcut else ''}<- [{preds}]")
        return "\n".join(rows)


def build_graph(model: nn.Module, input_shape: Tuple[int, int, int] | None = None, *,
                allow_grouped: bool = False) -> LayerGraph:
    """Trace ``model`` and return its :class:`LayerGraph`.

    ``input_shape`` (C, H, W) defaults to ``model.input_shape`` (set by ``pai.models.create_model``).
    Grouped convolutions are listed with their ``groups`` (block-diagonal channel graph, module
    docstring); ``allow_grouped`` is accepted for compatibility and no longer needed.
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ValueError("build_graph needs input_shape=(C, H, W) for a model without .input_shape")
    input_shape = check_input_shape(input_shape)
    layers = _layers_of(_shaped_trace(model, input_shape))
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


def _layers_of(gm: fx.GraphModule) -> List[LayerNode]:
    """Walk the traced nodes in order, tracking per node the set of (source layer, skip, flatten factor,
    gate) its value derives from; a prunable module becomes a layer fed by its argument's sources.
    Alongside, :class:`_UnitIds` tracks which producer unit each element comes from (the ``units`` maps)."""
    modules = dict(gm.named_modules())
    layers: List[LayerNode] = []
    sources: Dict[fx.Node, frozenset] = {}
    ancestors: Dict[int, set] = {}
    ids = _UnitIds(gm, modules)

    def node_sources(arg) -> frozenset:
        found = set()
        for a in _node_args(arg):
            found |= sources.get(a, frozenset())
        return frozenset(found)

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            sources[node] = frozenset({(INPUT, False, 1, False)})
        elif node.op == "call_module" and isinstance(modules[node.target], PRUNABLE_TYPES):
            idx = len(layers)
            layer = _make_layer(idx, node, modules[node.target])
            for src, skip, flat, gate in sorted(node_sources(node.args[0])):
                units = ids.edge_map(node.args[0], src, layer, None if src == INPUT else layers[src], flat)
                layer.preds.append(Edge(src, idx, skip, flat, gate, units))
            ancestors[idx] = set().union(*[{e.src} | ancestors.get(e.src, set()) for e in layer.preds])
            layers.append(layer)
            sources[node] = frozenset({(idx, False, 1, False)})
        elif _is_flatten(node, modules):
            in_meta = node.args[0].meta.get("tensor_meta") if isinstance(node.args[0], fx.Node) else None
            spatial = in_meta is not None and len(in_meta.shape) == 4
            factor = int(in_meta.shape[2] * in_meta.shape[3]) if spatial else 1
            sources[node] = frozenset((s, k, f * factor, g) for s, k, f, g in node_sources(node.args))
        elif _is_add(node):
            sources[node] = _merged_sources(node, sources, ancestors)
        elif node.op == "output":
            for src, skip, flat, gate in sorted(node_sources(node.args)):
                if src != INPUT:
                    layers[src].succs.append(Edge(src, OUTPUT, skip, flat, gate))
        elif gate_operand(node, modules) is not None:
            g = gate_operand(node, modules)
            main, gated = node_sources(node.args[1 - g]), node_sources(node.args[g])
            sources[node] = main | frozenset((s, k, f, True) for s, k, f, _ in gated)
        else:
            sources[node] = node_sources((node.args, node.kwargs))
        ids.step(node, layers)
        held = ids.env.get(node)
        if node in sources and _is_ids(held):  # a slice (chunk, getitem) may drop a source's every unit
            sources[node] = frozenset(t for t in sources[node] if t[0] not in held or bool((held[t[0]] >= 0).any()))
    return layers


class _UnitIds:
    """Per traced node and source, a tensor of the node's shape holding the source unit each element
    derives from (-1: another source).  Data-movement operations (views, permutes, cat, chunk, slicing)
    are applied to these tensors as they are to the values; every other operation keeps units in
    place (elementwise and pooling ops: same channel; broadcasting: expanded), read off the node's
    shape.  Values are dropped once their last user is done, so memory stays at the live frontier."""

    _MOVE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.permute, torch.transpose,
                       torch.cat, torch.concat, torch.chunk, torch.split, torch.narrow, torch.movedim,
                       operator.getitem}
    _MOVE_METHODS = {"flatten", "view", "reshape", "contiguous", "squeeze", "unsqueeze", "permute", "transpose",
                     "chunk", "split", "narrow", "movedim", "view_as", "reshape_as", "__getitem__"}

    def __init__(self, gm: fx.GraphModule, modules):
        self.modules = modules
        self.env: Dict[fx.Node, object] = {}
        self.left = {n: len(n.users) for n in gm.graph.nodes}

    @staticmethod
    def _fresh(shape, dim: int) -> torch.Tensor:
        n = shape[dim]
        view = [1] * len(shape)
        view[dim] = n
        return torch.arange(n, dtype=torch.int32).view(view).expand(tuple(shape)).contiguous()

    def step(self, node: fx.Node, layers: List[LayerNode]) -> None:
        self.env[node] = self._value(node, layers)
        for a in node.all_input_nodes:  # free what no later node reads
            self.left[a] -= 1
            if self.left[a] == 0:
                self.env.pop(a, None)

    def _value(self, node: fx.Node, layers):
        meta = node.meta.get("tensor_meta")
        shape = tuple(meta.shape) if hasattr(meta, "shape") else None
        if node.op == "placeholder":
            return {INPUT: self._fresh(shape, 1 if len(shape) > 2 else len(shape) - 1)} if shape else None
        if node.op == "call_module" and isinstance(self.modules[node.target], PRUNABLE_TYPES):
            layer = layers[-1]
            dim = 1 if layer.kind == "conv" else len(shape) - 1
            return {layer.index: self._fresh(shape, dim)} if shape else None
        if node.op in ("get_attr", "output"):
            return None
        args = fx.node.map_arg((node.args, node.kwargs), lambda n: self.env.get(n))
        flows = [a for a in _flat(args) if _is_ids(a)]
        if not flows:  # a plain value (a size, an index): evaluate it as the model does
            return self._plain(node, args)
        srcs = set().union(*flows)
        if node.op == "call_method" and node.target in ("size", "dim", "numel"):  # shape queries: plain values
            return getattr(next(iter(flows[0].values())), node.target)(*args[0][1:], **args[1])
        if self._moves(node):
            out = {}
            for src in srcs:
                try:
                    out[src] = self._apply(node, _select(args, src))
                except Exception:  # noqa: BLE001 - an op we cannot replay: the map stays unknown
                    return None
            if isinstance(next(iter(out.values()), None), (tuple, list)):  # chunk/split: a tuple of flows
                n = len(next(iter(out.values())))
                return tuple({src: v[i] for src, v in out.items()} for i in range(n))
            return out
        if shape is None:
            return None
        out = {}
        for src in srcs:
            held = [_broadcast(f[src], shape) for f in flows if src in f]
            if any(h is None for h in held):
                return None
            out[src] = held[0] if len(held) == 1 else torch.stack(held).amax(0)
        return out

    def _moves(self, node) -> bool:
        if node.op == "call_function":
            return node.target in self._MOVE_FUNCTIONS
        if node.op == "call_method":
            return node.target in self._MOVE_METHODS
        return node.op == "call_module" and isinstance(self.modules[node.target], nn.Flatten)

    def _apply(self, node, args):
        a, kw = args
        if node.op == "call_function":
            return node.target(*a, **kw)
        if node.op == "call_method":
            return getattr(a[0], node.target)(*a[1:], **kw)
        return self.modules[node.target](*a, **kw)

    def _plain(self, node, args):
        a, kw = args
        if any(x is None for x in _flat(args)) or node.op not in ("call_function", "call_method"):
            return None
        try:
            return node.target(*a, **kw) if node.op == "call_function" else getattr(a[0], node.target)(*a[1:], **kw)
        except Exception:  # noqa: BLE001 - not needed for the maps
            return None

    def edge_map(self, arg, src: int, layer: LayerNode, producer: Optional[LayerNode],
                 flat: int) -> Optional[torch.Tensor]:
        """The ``units`` map of edge ``src -> layer`` (None where it is the plain one or unknown)."""
        held = self.env.get(arg) if isinstance(arg, fx.Node) else None
        if not _is_ids(held) or src not in held:
            return None
        t = held[src]
        if layer.kind == "conv":
            if t.dim() != 4:
                return None
            m = t[0, :, 0, 0]
            rest = t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])
        else:
            rest = t.reshape(-1, t.shape[-1])
            m = rest[0]
        if not bool((rest == m).all()):
            raise ValueError(f"layer {layer.name!r} reads units that come from different units of one producer at "
                             f"different positions (a space-to-depth view): no channel-level layer graph")
        m = m.to(torch.int64).clone()
        if m.numel() != layer.in_units:
            return None
        n_src = producer.out_units if producer is not None else None
        plain = torch.div(torch.arange(layer.in_units), flat, rounding_mode="floor")
        if torch.equal(m, plain) and (n_src is None or n_src * flat == layer.in_units):
            return None
        return m


def _is_ids(x) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(k, int) for k in x)


def _flat(x):
    if isinstance(x, (list, tuple)):
        for a in x:
            yield from _flat(a)
    elif isinstance(x, dict) and not _is_ids(x):  # kwargs, not a unit-id flow
        for a in x.values():
            yield from _flat(a)
    else:
        yield x


def _select(x, src):
    """``x`` with every unit-id flow replaced by its tensor for ``src`` (-1 where it does not hold ``src``)."""
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], dict) and isinstance(x[0], tuple):
        return _select(x[0], src), {k: _select(v, src) for k, v in x[1].items()}
    if _is_ids(x):
        if src in x:
            return x[src]
        return torch.full_like(next(iter(x.values())), -1)
    if isinstance(x, (list, tuple)):
        return type(x)(_select(a, src) for a in x)
    return x


def _broadcast(t: torch.Tensor, shape) -> Optional[torch.Tensor]:
    """Units of ``t`` carried to a same-channel result of ``shape`` (elementwise, pooled or gated)."""
    if tuple(t.shape) == tuple(shape):
        return t
    try:
        return t.expand(shape).contiguous()
    except RuntimeError:
        pass
    if t.dim() == 4 and len(shape) == 4 and tuple(t.shape[:2]) == tuple(shape[:2]):
        return t[:, :, :1, :1].expand(shape).contiguous()  # a pool: same channels, new spatial size
    if t.dim() == 4 and len(shape) == 2 and tuple(t.shape[:2]) == tuple(shape):
        return t[:, :, 0, 0]  # a global mean over H, W
    return None


GATE_MODULES = (nn.Sigmoid, nn.Hardsigmoid)
GATE_FUNCTIONS = {torch.sigmoid, torch.nn.functional.sigmoid, torch.nn.functional.hardsigmoid}


def _is_gate_activation(node: fx.Node, modules) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), GATE_MODULES)
    if node.op == "call_function":
        return node.target in GATE_FUNCTIONS
    return node.op == "call_method" and node.target in ("sigmoid", "sigmoid_")


def gate_operand(node: fx.Node, modules) -> Optional[int]:
    """The argument position of the gate in a gating product ``x * sigmoid(f(x))`` (squeeze-and-
    excitation: the gate is a sigmoid-type activation of a branch computed from the other operand), or
    None when ``node`` is no such product."""
    is_mul = (node.op == "call_function" and node.target in (operator.mul, torch.mul)) or \
        (node.op == "call_method" and node.target in ("mul", "mul_"))
    if not is_mul or len(node.args) != 2 or not all(isinstance(a, fx.Node) for a in node.args):
        return None
    for i, g in enumerate(node.args):
        if _is_gate_activation(g, modules) and _depends_on(g, node.args[1 - i]):
            return i
    return None


def _depends_on(node: fx.Node, other: fx.Node) -> bool:
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n is other:
            return True
        if n in seen:
            continue
        seen.add(n)
        stack.extend(n.all_input_nodes)
    return False


def _merged_sources(node: fx.Node, sources: Dict[fx.Node, frozenset], ancestors: Dict[int, set]) -> frozenset:
    """The sources of a sum: each operand's, marked ``skip`` where it bypasses the other branch's layers."""
    operands = [a for a in node.args if isinstance(a, fx.Node)]
    merged = set()
    for a in operands:
        others = [b for b in operands if b is not a]
        other_layers = {s for b in others for s, _, _, _ in sources.get(b, ())}
        for s, skip, flat, gate in sources.get(a, ()):
            # ``a`` skips over the other branch's layers if its source feeds into them.
            bypass = any(s == INPUT or s in ancestors.get(o, ()) for o in other_layers if o != INPUT)
            merged.add((s, skip or bypass, flat, gate))
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


def _make_layer(idx: int, node: fx.Node, module: nn.Module) -> LayerNode:
    in_meta = node.args[0].meta.get("tensor_meta")
    out_meta = node.meta.get("tensor_meta")
    name = f"{node.target}.weight"
    if isinstance(module, nn.Conv2d):
        return LayerNode(idx, name, str(node.target), "conv", module.in_channels, module.out_channels,
                         tuple(module.kernel_size), tuple(module.stride),
                         tuple(in_meta.shape[2:4]) if in_meta is not None else (1, 1),
                         tuple(out_meta.shape[2:4]) if out_meta is not None else (1, 1), groups=module.groups)
    return LayerNode(idx, name, str(node.target), "linear", module.in_features, module.out_features, (1, 1))


def _is_flatten(node: fx.Node, modules) -> bool:
    if node.op == "call_function" and node.target in (torch.flatten,):
        return True
    if node.op == "call_method" and node.target == "flatten":
        return True
    if node.op == "call_method" and node.target in ("view", "reshape"):
        # only a view to (N, features) flattens; other views (a channel shuffle's) move units, tracked by _UnitIds
        meta = node.meta.get("tensor_meta")
        return not hasattr(meta, "shape") or len(meta.shape) == 2
    return node.op == "call_module" and isinstance(modules[node.target], nn.Flatten)


def _is_add(node: fx.Node) -> bool:
    if node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add):
        return sum(isinstance(a, fx.Node) for a in node.args) >= 2
    return node.op == "call_method" and node.target in ("add", "add_") and isinstance(node.args[1], fx.Node)


def _mark_shortcuts(layers: List[LayerNode]) -> None:
    """A 1x1 conv is a projection shortcut if another layer reads exactly the same sources and that
    layer's branch rejoins the shortcut's consumers (both feed a common successor)."""
    for layer in layers:
        if layer.kind != "conv" or layer.kernel != (1, 1):
            continue
        srcs = {e.src for e in layer.preds if not e.gate}
        my_succ = {e.dst for e in layer.succs}
        for other in layers:
            if other is layer or {e.src for e in other.preds if not e.gate} != srcs:
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
