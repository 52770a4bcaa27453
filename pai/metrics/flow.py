"""Positive flows through a traced network, kept in log scale: the engine of the path metrics.

Path counts explode with depth (a dense ResNet-50 has more than 1e139 input-output paths), so
every value is carried as ``(t, e)`` with ``actual = t * 2**e``: after each prunable layer ``t`` is
divided by the power of two just above its largest magnitude (an exact operation) and ``e``
absorbs the exponent; a sum of branches aligns their exponents first.  The scale factors are
constants to autograd, so the identity ``actual(W) = t(W) 2**e`` holds for every ``W`` and
gradients of ``sum(t_out)`` are the true gradients times the single constant ``2**-e_out`` -- no
overflow, no underflow, and integer path counts stay exact as long as float64 holds them.

The model is traced with ``torch.fx`` and run node by node; only the operations below are known,
anything else raises ``ValueError`` naming it.  What each non-prunable piece means for paths:

* elementwise activations (ReLU6, SiLU, GELU, Hardswish, Sigmoid, Tanh, ELU, Mish, ...) pass as ReLU
  does.  A path is a chain of kept weights from an input to an output unit; an elementwise activation
  maps each unit to the same unit, so it neither adds nor removes an edge.  The flows here are
  nonnegative (ones in, nonnegative weights), where ReLU is the identity; evaluating ReLU6 or
  Hardswish literally would clamp or bend the counts (ReLU6 caps every count at 6), so every
  elementwise activation is evaluated as ReLU (LeakyReLU keeps its own, identical on nonnegative flows);
* squeeze-and-excitation gating ``x * sigmoid(f(pool(x)))`` (see :mod:`pai.graph`) scales each channel of
  ``x`` by a positive factor: the paths of the product are those of ``x`` (``"paths"``, ``"kernel"``: the
  gate counts 1, as an activation would).  The branch ``f`` is a side branch: in ``"support"`` mode the
  product is ``x`` in value but passes gradient to the gate, so a kept weight of ``f`` that the input
  reaches and whose gate scales a channel carrying paths is effective (NPB's criterion: the gradient of
  the all-ones output is nonzero there); in ``"kernel"`` mode the gate carries no gradient, so ``f``
  adds nothing to the path-kernel trace.  Any other product of two flows is refused;
* a constant factor (ConvNeXt's layer scale, a scalar) is a per-unit rescaling, bypassed like
  BatchNorm except in ``"kernel"`` mode, where a parameter enters squared (as every parameter there)
  and a plain number squared too;
* normalisation (BatchNorm, LayerNorm, GroupNorm) is bypassed except in ``"kernel"`` mode (BN in eval
  mode; LayerNorm/GroupNorm as their affine part with squared parameters: their statistics are those of
  the input, and an all-ones map normalised across channels would be all zeros);
* concatenation is a union of channels, ``chunk``/``split``/slicing a selection, a channel shuffle
  (``view``/``transpose``/``view``) a permutation: all move values without changing them;
* grouped and depthwise convolutions run as they are defined, so only the block-diagonal connections
  of each group carry paths;
* average pools (also the global ``mean`` over H, W) sum, max pools stay max (see the modes);
  dropout and stochastic depth are the identity (eval mode).

Modes:

* ``"paths"`` (NPB's ``copynet``, Pham et al., NeurIPS 2023): prunable weights replaced by the
  given tensors, no biases, BatchNorm bypassed, average pools *summed*, max pools kept as max.
  NPB patches only pooling *modules* and sets biases to 1; we sum functional pools too and zero
  biases, so the count is exactly the number of paths of the unrolled graph.
* ``"support"``: the same graph in Boolean form -- every prunable layer, sum and pool output is
  replaced by its indicator ``x > 0`` (backward: ``grad > 0``), max pools become "any in window".
  Values stay 0/1, so float32 is exact at any depth; gradients reach exactly the weights that lie
  on an input-output path (graph reachability: at a max-pool tie NPB's float gradient picks one
  winner, we keep every window element).
* ``"kernel"`` (PHEW's path-kernel trace, Patil & Dovrolis, ICML 2021): the real network in eval
  mode with the given (squared) weights, biases and BatchNorm affine parameters; pools as defined.
"""
from __future__ import annotations

import functools
import math
import operator
import weakref
from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import fx, nn

from pai.graph import gate_operand
from pai.utils.threads import torch_threads

MODES = ("paths", "support", "kernel")
_TRACES: "weakref.WeakKeyDictionary[nn.Module, fx.GraphModule]" = weakref.WeakKeyDictionary()

_SAME = {  # value-preserving or positively homogeneous ops: act on t, keep s
    F.relu, torch.relu, F.leaky_relu, torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze,
    torch.permute, torch.transpose, F.dropout, F.dropout2d, operator.getitem,
}
_SAME_METHODS = {"relu", "relu_", "flatten", "view", "reshape", "contiguous", "squeeze", "unsqueeze",
                 "permute", "transpose", "view_as"}
_ADD = {operator.add, operator.iadd, torch.add}
_MUL = {operator.mul, operator.imul, torch.mul}
# elementwise activations: evaluated as ReLU (module docstring)
ACTIVATION_MODULES = (nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Hardtanh,
                       nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.PReLU, nn.RReLU)
ACTIVATION_FUNCTIONS = {F.relu6, F.silu, F.gelu, F.hardswish, F.hardsigmoid, F.sigmoid, torch.sigmoid, torch.tanh,
                         F.tanh, F.hardtanh, F.elu, F.selu, F.celu, F.mish, F.softplus}
ACTIVATION_METHODS = {"sigmoid", "sigmoid_", "tanh", "tanh_"}
_NORM_MODULES = (nn.LayerNorm, nn.GroupNorm)
_SPLIT = {torch.chunk, torch.split}


class _Indicator(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        return (g > 0).to(g.dtype)


class Scaled:
    """``actual = t * 2**s`` with an integer exponent ``s``."""
    __slots__ = ("t", "s")

    def __init__(self, t: torch.Tensor, s: int):
        self.t, self.s = t, s


def pow2(k: int) -> float:
    """``2.0**k`` without OverflowError (clamped; below 2**-1074 it is 0.0, as it should be)."""
    return math.ldexp(1.0, max(min(int(k), 1023), -1100))


def one_thread(fn):
    """Run ``fn`` with one torch intra-op thread, restoring the caller's setting afterwards.

    Flows are batch-1 passes over small maps: intra-op threads only add synchronisation, and on
    a shared 2-core machine two threads made the path metrics of ResNet-18 6x more expensive in
    CPU time (11.3 s instead of 1.9 s) and 3.5x slower in wall time.
    """
    return functools.wraps(fn)(torch_threads(1)(fn))


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` trace of ``model``, cached per model object."""
    gm = _TRACES.get(model)
    if gm is None:
        gm = fx.symbolic_trace(model)
        _TRACES[model] = gm
    return gm


def _has_scaled(x) -> bool:
    if isinstance(x, Scaled):
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_scaled(a) for a in x)
    if isinstance(x, dict):
        return any(_has_scaled(a) for a in x.values())
    return False


def _align(values):
    """Common scale of several branches: ``(s, [t_i * 2**(s_i - s)])`` with ``s = max s_i``."""
    s = max(v.s for v in values)
    return s, [v.t * pow2(v.s - s) if v.s != s else v.t for v in values]


def _sum_pool(t, kernel, stride, padding, ceil_mode):
    return F.avg_pool2d(t, kernel, stride if stride is not None else kernel, padding, ceil_mode,
                        count_include_pad=True, divisor_override=1)


def _adaptive_sum(t, out_size):
    h, w = t.shape[-2:]
    oh, ow = (out_size, out_size) if isinstance(out_size, int) else out_size
    oh, ow = oh or h, ow or w

    def counts(n, o):  # bin i spans [floor(i n / o), ceil((i + 1) n / o))
        return torch.tensor([-(-(i + 1) * n // o) - (i * n // o) for i in range(o)], dtype=t.dtype)

    area = counts(h, oh)[:, None] * counts(w, ow)[None, :]
    return F.adaptive_avg_pool2d(t, (oh, ow)) * area.to(t.device)


class Flow:
    """One run of ``model`` in a mode; ``weights`` maps every prunable weight name to its tensor."""

    def __init__(self, model: nn.Module, mode: str, weights: Mapping[str, torch.Tensor],
                 params: Optional[Mapping[str, torch.Tensor]] = None):
        if mode not in MODES:
            raise ValueError(f"unknown flow mode {mode!r}; valid: {', '.join(MODES)}")
        self.gm, self.mode, self.weights = trace(model), mode, weights
        self.params = params or {}  # kernel mode: squared biases / BN affine, by parameter name
        self.buffers = dict(model.named_buffers())
        self.modules = dict(self.gm.named_modules())

    def run(self, x: torch.Tensor) -> Scaled:
        env: Dict[fx.Node, object] = {}
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = Scaled(x, 0)
            elif node.op == "get_attr":  # a parameter or buffer used directly (ConvNeXt's layer scale, LayerNorm2d)
                env[node] = self._constant(node.target)
            elif node.op == "output":
                out = fx.node.map_arg(node.args[0], lambda n: env[n])
                if not isinstance(out, Scaled):
                    raise ValueError("flow: the model must return a single tensor")
                return out
            else:
                args = fx.node.map_arg(node.args, lambda n: env[n])
                kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
                env[node] = self._step(node, args, kwargs)
        raise ValueError("flow: traced graph has no output")

    def _constant(self, target: str) -> torch.Tensor:
        if self.mode == "kernel" and target in self.params:
            return self.params[target]
        value = self.gm.get_parameter(target) if target in dict(self.gm.named_parameters()) else \
            self.gm.get_buffer(target)
        return value.detach().to("cpu")

    # ---- one node ---------------------------------------------------------------------------
    def _step(self, node: fx.Node, args, kwargs):
        scaled = [a for a in args if isinstance(a, Scaled)]
        if not _has_scaled((args, kwargs)):
            return self._plain(node, args, kwargs)
        target = node.target
        if node.op == "call_function" and target is operator.getitem and isinstance(args[0], (tuple, list)):
            return args[0][args[1]]  # one part of a chunk/split
        if node.op == "call_module":
            return self._module(node, self.modules[node.target], scaled[0])
        done = self._beyond_relu(node, args, kwargs, scaled)
        if done is not None:
            return done
        if node.op == "call_function" and target in _ADD or node.op == "call_method" and target in ("add", "add_"):
            if len(scaled) != len(args) or kwargs:
                raise ValueError(f"flow: node {node.name!r} adds a constant to a flow; only sums of branches "
                                 "keep path counts meaningful")
            s, ts = _align(scaled)
            return self._support(Scaled(ts[0] + ts[1], s))
        if node.op == "call_function" and target is torch.cat:
            s, ts = _align(args[0])
            return Scaled(torch.cat(ts, *args[1:], **kwargs), s)
        if node.op == "call_function" and target in (F.avg_pool2d, F.max_pool2d):
            v = scaled[0]
            kernel = args[1] if len(args) > 1 else kwargs["kernel_size"]
            stride = args[2] if len(args) > 2 else kwargs.get("stride")
            padding = args[3] if len(args) > 3 else kwargs.get("padding", 0)
            pos = 5 if target is F.max_pool2d else 4  # ceil_mode's position in each signature
            ceil_mode = kwargs.get("ceil_mode", args[pos] if len(args) > pos else False)
            return self._pool(v, target is F.max_pool2d, kernel, stride, padding, ceil_mode,
                              lambda t: target(t, *args[1:], **kwargs))
        if node.op == "call_function" and target is F.adaptive_avg_pool2d:
            v = scaled[0]
            size = args[1] if len(args) > 1 else kwargs["output_size"]
            return Scaled(_adaptive_sum(v.t, size) if self.mode != "kernel" else target(v.t, size), v.s)
        if node.op == "call_method" and target in ("size", "dim", "numel"):  # shape queries: plain values
            return getattr(args[0].t, target)(*args[1:], **kwargs)
        if (node.op == "call_function" and target in _SAME) or (node.op == "call_method" and target in _SAME_METHODS):
            if node.op == "call_function" and target in (F.dropout, F.dropout2d):
                return scaled[0]
            fn = target if node.op == "call_function" else (lambda t, *a, **k: getattr(t, target.rstrip("_"))(*a, **k))
            unwrapped = [a.t if isinstance(a, Scaled) else a for a in args]
            kwargs = {k: v for k, v in kwargs.items() if k != "inplace"}  # never write into a shared flow
            return Scaled(fn(*unwrapped, **kwargs), scaled[0].s)
        raise ValueError(f"flow: unsupported operation {node.op} {getattr(target, '__name__', target)!r} "
                         f"(node {node.name!r}): no path interpretation; path metrics know conv/linear, norms, "
                         f"elementwise activations, gating, pooling, views, add, cat and chunk")

    def _mul(self, node, args, kwargs):
        """A gating product (squeeze-and-excitation) or a constant factor; see the module docstring."""
        flows = [a for a in args if isinstance(a, Scaled)]
        if len(flows) == 2:
            g = gate_operand(node, self.modules)
            if g is None:
                raise ValueError(f"flow: node {node.name!r} multiplies two flows that are not x and a sigmoid-type "
                                 "gate of x: a product of path sums is no path count")
            x, gate = args[1 - g], args[g]
            if self.mode == "support":  # value x, gradient also to the gate branch (a side branch)
                return Scaled(x.t * (1 + gate.t - gate.t.detach()), x.s)
            return x
        v = flows[0]
        c = next(a for a in args if not isinstance(a, Scaled))
        if self.mode != "kernel":
            return v
        c = torch.as_tensor(c, dtype=v.t.dtype)
        if not any(isinstance(a, fx.Node) and a.op == "get_attr" for a in node.args):
            c = c * c  # a plain number: squared, as every factor of the kernel flow
        return Scaled(v.t * c.to(v.t.device, v.t.dtype), v.s)

    def _mean(self, node, args, kwargs):
        """``mean`` over spatial dims: a global average pool, summed like one outside ``"kernel"`` mode."""
        v = args[0]
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        keep = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
        dims = tuple(d % v.t.dim() for d in ((dims,) if isinstance(dims, int) else dims)) if dims is not None else None
        if dims is None or 0 in dims or 1 in dims:
            raise ValueError(f"flow: node {node.name!r} averages over the batch or channel dim: no path interpretation")
        if self.mode == "kernel":
            return Scaled(v.t.mean(dims, keepdim=keep), v.s)
        return self._support(Scaled(v.t.sum(dims, keepdim=keep), v.s))

    def _affine(self, v: Scaled, w, b, dim: int) -> Scaled:
        """LayerNorm/GroupNorm: bypassed; in ``"kernel"`` mode their affine part (squared parameters)."""
        if self.mode != "kernel":
            return v
        shape = [1] * v.t.dim()
        out = v.t
        if w is not None:
            shape_w = list(shape)
            shape_w[dim:] = list(w.shape) if dim < -1 else [w.numel()]
            out = out * w.to(out.dtype).reshape(shape_w if dim < 0 else [-1])
        if b is not None:
            shape_b = list(shape)
            shape_b[dim:] = list(b.shape) if dim < -1 else [b.numel()]
            out = out + b.to(out.dtype).reshape(shape_b) * pow2(-v.s)
        return Scaled(out, v.s)

    def _beyond_relu(self, node, args, kwargs, scaled):
        """Products, chunk/split, elementwise activations, functional LayerNorm, stochastic depth and the
        spatial mean (module docstring); None for any other operation."""
        target = node.target
        if (node.op == "call_function" and target in _MUL) or (node.op == "call_method" and target in ("mul", "mul_")):
            return self._mul(node, args, kwargs)
        if (node.op == "call_function" and target in _SPLIT) or \
                (node.op == "call_method" and target in ("chunk", "split")):
            parts = (target if node.op == "call_function" else getattr(torch, target))(args[0].t, *args[1:], **kwargs)
            return tuple(Scaled(p, args[0].s) for p in parts)
        if (node.op == "call_function" and target in ACTIVATION_FUNCTIONS) or \
                (node.op == "call_method" and target in ACTIVATION_METHODS):
            return Scaled(F.relu(scaled[0].t), scaled[0].s)
        if node.op == "call_function" and target is F.layer_norm:
            shape = args[1] if len(args) > 1 else kwargs["normalized_shape"]
            w = args[2] if len(args) > 2 else kwargs.get("weight")
            b = args[3] if len(args) > 3 else kwargs.get("bias")
            return self._affine(scaled[0], w, b, -len(tuple(shape)) if not isinstance(shape, int) else -1)
        if is_stochastic_depth(node):
            return scaled[0]
        if (node.op == "call_method" and target == "mean") or (node.op == "call_function" and target is torch.mean):
            return self._mean(node, args, kwargs)
        return None

    def _plain(self, node, args, kwargs):
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        raise ValueError(f"flow: node {node.name!r} has no tensor input")

    def _support(self, v: Scaled) -> Scaled:
        return Scaled(_Indicator.apply(v.t), 0) if self.mode == "support" else v

    def _rescale(self, v: Scaled) -> Scaled:
        if self.mode == "support":
            return Scaled(_Indicator.apply(v.t), 0)
        m = float(v.t.detach().abs().max()) if v.t.numel() else 0.0
        if m > 0 and math.isfinite(m):
            k = math.frexp(m)[1]  # m = f * 2**k, f in [0.5, 1): dividing by 2**k is exact
            return Scaled(v.t * pow2(-k), v.s + k)
        return v

    def _pool(self, v, is_max, kernel, stride, padding, ceil_mode, native):
        if self.mode == "kernel" or (is_max and self.mode == "paths"):
            return Scaled(native(v.t), v.s)
        return self._support(Scaled(_sum_pool(v.t, kernel, stride, padding, ceil_mode), v.s))

    def _module(self, node, module, v: Scaled) -> Scaled:
        name = f"{node.target}.weight"
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if name not in self.weights:
                raise KeyError(f"flow: no weight given for prunable layer {name!r}")
            w = self.weights[name]
            b = None
            if self.mode == "kernel" and module.bias is not None:
                b = self.params.get(f"{node.target}.bias", module.bias.detach().to(w.device, w.dtype) ** 2) * pow2(-v.s)
            if isinstance(module, nn.Linear):
                out = F.linear(v.t, w, b)
            else:
                if module.padding_mode != "zeros":
                    raise ValueError(f"flow: layer {name!r} uses padding_mode={module.padding_mode!r}")
                out = F.conv2d(v.t, w, b, module.stride, module.padding, module.dilation, module.groups)
            return self._rescale(Scaled(out, v.s))
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if self.mode != "kernel":
                return v
            return self._batchnorm(node, module, v)
        if isinstance(module, (nn.Dropout, nn.Dropout2d, nn.Identity)):
            return v
        if isinstance(module, nn.ReLU):  # out of place even for ReLU(inplace=True)
            return Scaled(F.relu(v.t), v.s)
        if isinstance(module, nn.LeakyReLU):
            return Scaled(F.leaky_relu(v.t, module.negative_slope), v.s)
        if isinstance(module, ACTIVATION_MODULES):  # passes as ReLU (module docstring)
            return Scaled(F.relu(v.t), v.s)
        if isinstance(module, nn.LayerNorm):
            return self._affine(v, self._param(node, "weight"), self._param(node, "bias"),
                                -len(module.normalized_shape))
        if isinstance(module, nn.GroupNorm):
            w, b = self._param(node, "weight"), self._param(node, "bias")
            if self.mode != "kernel":
                return v
            shape = (1, -1) + (1,) * (v.t.dim() - 2)
            out = v.t * w.reshape(shape) if w is not None else v.t
            return Scaled(out + b.reshape(shape) * pow2(-v.s) if b is not None else out, v.s)
        if isinstance(module, nn.Flatten):
            return Scaled(module(v.t), v.s)
        if isinstance(module, nn.MaxPool2d):
            if module.dilation not in (1, (1, 1)) and self.mode == "support":
                raise ValueError(f"flow: dilated max pool {node.target!r} is not supported")
            return self._pool(v, True, module.kernel_size, module.stride, module.padding, module.ceil_mode, module)
        if isinstance(module, nn.AvgPool2d):
            return self._pool(v, False, module.kernel_size, module.stride, module.padding, module.ceil_mode, module)
        if isinstance(module, nn.AdaptiveAvgPool2d):
            return Scaled(module(v.t) if self.mode == "kernel" else _adaptive_sum(v.t, module.output_size), v.s)
        if isinstance(module, nn.AdaptiveMaxPool2d) and self.mode != "support":
            return Scaled(module(v.t), v.s)
        raise ValueError(f"flow: unsupported module {type(module).__name__} at {node.target!r}: no path interpretation "
                         f"known (path metrics know conv/linear, norms, elementwise activations, pooling, dropout)")

    def _param(self, node, leaf: str) -> Optional[torch.Tensor]:
        """A norm's affine parameter: squared from ``params`` in ``"kernel"`` mode; None if it has none."""
        name = f"{node.target}.{leaf}"
        module = self.modules[node.target]
        if getattr(module, leaf, None) is None:
            return None
        if self.mode == "kernel":
            return self.params.get(name, getattr(module, leaf).detach().to("cpu", torch.float64) ** 2)
        return getattr(module, leaf).detach().to("cpu")

    def _batchnorm(self, node, module, v: Scaled) -> Scaled:
        """Eval-mode BN with squared affine parameters: ``a x + b``, ``b`` scaled into ``t`` units."""
        dt = v.t.dtype
        mean = self.buffers.get(f"{node.target}.running_mean")
        var = self.buffers.get(f"{node.target}.running_var")
        c = v.t.shape[1]
        mean = torch.zeros(c, dtype=dt) if mean is None else mean.detach().to("cpu", dt)
        var = torch.ones(c, dtype=dt) if var is None else var.detach().to("cpu", dt)
        gamma = self.params.get(f"{node.target}.weight", torch.ones(c, dtype=dt))
        beta = self.params.get(f"{node.target}.bias", torch.zeros(c, dtype=dt))
        a = gamma / torch.sqrt(var + module.eps)
        b = beta - a * mean
        shape = (1, c) + (1,) * (v.t.dim() - 2)
        return Scaled(v.t * a.view(shape) + b.view(shape) * pow2(-v.s), v.s)


def is_stochastic_depth(node: fx.Node) -> bool:
    """torchvision's ``stochastic_depth`` (a traced leaf): the identity in eval mode."""
    t = node.target
    return node.op == "call_function" and getattr(t, "__name__", "") == "stochastic_depth" and \
        getattr(t, "__module__", "").startswith("torchvision")


def run_flow(model: nn.Module, mode: str, weights: Mapping[str, torch.Tensor],
             input_shape: Tuple[int, ...], dtype: torch.dtype,
             params: Optional[Mapping[str, torch.Tensor]] = None) -> Scaled:
    """Feed ``ones(1, *input_shape)`` through ``model`` in ``mode``; returns the scaled output."""
    x = torch.ones((1, *input_shape), dtype=dtype)
    return Flow(model, mode, weights, params).run(x)
