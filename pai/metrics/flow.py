"""Positive flows through a traced network, kept in log scale: the engine of the path metrics.

Path counts explode with depth (a dense ResNet-50 has more than 1e139 input-output paths), so
every value is carried as ``(t, e)`` with ``actual = t * 2**e``: after each prunable layer ``t`` is
divided by the power of two just above its largest magnitude (an exact operation) and ``e``
absorbs the exponent; a sum of branches aligns their exponents first.  The scale factors are
constants to autograd, so the identity ``actual(W) = t(W) 2**e`` holds for every ``W`` and
gradients of ``sum(t_out)`` are the true gradients times the single constant ``2**-e_out`` -- no
overflow, no underflow, and integer path counts stay exact as long as float64 holds them.

The model is traced with ``torch.fx`` and run node by node; only the operations below are known,
anything else raises ``ValueError`` naming it.  Modes:

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

from ..threads import torch_threads

MODES = ("paths", "support", "kernel")
_TRACES: "weakref.WeakKeyDictionary[nn.Module, fx.GraphModule]" = weakref.WeakKeyDictionary()

_SAME = {  # value-preserving or positively homogeneous ops: act on t, keep s
    F.relu, torch.relu, F.leaky_relu, torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze,
    torch.permute, torch.transpose, F.dropout, F.dropout2d, operator.getitem,
}
_SAME_METHODS = {"relu", "relu_", "flatten", "view", "reshape", "contiguous", "squeeze", "unsqueeze",
                 "permute", "transpose", "view_as"}
_ADD = {operator.add, operator.iadd, torch.add}


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
            elif node.op == "get_attr":
                raise ValueError(f"flow: unsupported constant {node.target!r} in the traced model")
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

    # ---- one node ---------------------------------------------------------------------------
    def _step(self, node: fx.Node, args, kwargs):
        scaled = [a for a in args if isinstance(a, Scaled)]
        if not _has_scaled((args, kwargs)):
            return self._plain(node, args, kwargs)
        if node.op == "call_module":
            return self._module(node, self.modules[node.target], scaled[0])
        target = node.target
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
                         f"(node {node.name!r}); path metrics know conv/linear, BN, ReLU, pooling, "
                         f"flatten/view, add and cat")

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
        raise ValueError(f"flow: unsupported module {type(module).__name__} at {node.target!r}")

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


def run_flow(model: nn.Module, mode: str, weights: Mapping[str, torch.Tensor],
             input_shape: Tuple[int, ...], dtype: torch.dtype,
             params: Optional[Mapping[str, torch.Tensor]] = None) -> Scaled:
    """Feed ``ones(1, *input_shape)`` through ``model`` in ``mode``; returns the scaled output."""
    x = torch.ones((1, *input_shape), dtype=dtype)
    return Flow(model, mode, weights, params).run(x)
