"""A prunable layer as a bipartite graph: its biadjacency matrix in the two encodings of the literature.

Left nodes are the layer's inputs, right nodes its outputs; ``B[i, j] != 0`` is an edge.

* ``"unrolled"`` (Hoang et al., ICLR 2023 "Revisiting pruning at initialization through the lens
  of Ramanujan graph", and the NeurIPS 2023 "Don't just prune by magnitude" dev code): a conv
  weight ``(c_out, c_in, kh, kw)`` becomes ``(c_in*kh*kw) x c_out``; every kernel tap is its own
  left node, channel-major (row ``c*kh*kw + u*kw + v``), so one kept weight is one edge.
* ``"channel"`` (X-Net, Prabhu et al., ECCV 2018; RReg, Stewart et al., CVPRW 2023): ``c_in x c_out``,
  an edge is a kernel with at least one kept weight; weighted, its value is the kernel's L1 norm
  ``sum |w * m|``.

A Linear weight ``(out, in)`` is ``in x out`` in both encodings.

A grouped convolution (``groups=G``; depthwise: ``G = c_in``) has weight ``(c_out, c_in/G, kh, kw)``:
output ``j`` of group ``g = j // (c_out/G)`` reads only the input channels ``g*c_in/G ... (g+1)*c_in/G - 1``.
Given ``groups``, its graph is the true one: ``c_in`` (``c_in*kh*kw`` unrolled) left nodes, and a
block-diagonal biadjacency with ``G`` blocks, each the graph of one group (a depthwise conv is ``c_in``
disjoint stars of ``kh*kw`` taps, a matching in the channel encoding).  The weight alone cannot tell
``groups`` (a ``(C, 1, 3, 3)`` weight is also a dense conv on one input channel): pass it, or use
:func:`layer_groups` of the model.  Binary biadjacencies are ``bool``
tensors (a 25088x4096 classifier is 100 MB, not 800 MB); weighted ones are float64 ``|w * m|``.
Isolated nodes (zero rows/columns) carry no edge: the ICLR code drops them before averaging degrees
(``scores.filter_zero_degree``) and the NeurIPS code before its eigen-solve; :func:`drop_isolated`
does the same.  :func:`unrolled_csr` is the sparse form every spectral metric is computed from.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

ENCODINGS = ("channel", "unrolled")


def _layer_tensors(weight: Optional[torch.Tensor], mask: Optional[torch.Tensor]):
    if weight is None and mask is None:
        raise ValueError("biadjacency needs a weight or a mask")
    ref = mask if mask is not None else weight
    if ref.dim() not in (2, 4):
        raise ValueError(f"expected a Linear (2-D) or Conv2d (4-D) weight, got shape {tuple(ref.shape)}")
    if weight is not None and mask is not None and tuple(weight.shape) != tuple(mask.shape):
        raise ValueError(f"weight shape {tuple(weight.shape)} != mask shape {tuple(mask.shape)}")
    m = (weight.detach() != 0) if mask is None else mask.detach().to(torch.bool)
    return (None if weight is None else weight.detach()), m


def layer_groups(model) -> Dict[str, int]:
    """``{weight name: groups}`` of every prunable layer of ``model`` (1 for Linear and plain convs)."""
    from pai.masks import prunable_modules

    return {k: int(getattr(m, "groups", 1)) for k, m in prunable_modules(model).items()}


def _check_groups(ref: torch.Tensor, groups: int) -> int:
    groups = int(groups)
    if groups < 1 or (groups > 1 and (ref.dim() != 4 or ref.shape[0] % groups)):
        raise ValueError(f"groups={groups} does not fit a weight of shape {tuple(ref.shape)} (a Conv2d weight whose "
                         f"output channels the groups divide)")
    return groups


def _block_diagonal(local: torch.Tensor, groups: int) -> torch.Tensor:
    """Full ``(G*r) x c_out`` biadjacency from the local ``r x c_out`` one of a grouped conv (rows of
    output ``j`` belong to block ``j // (c_out/G)``)."""
    r, c_out = local.shape
    full = torch.zeros((groups, r, groups, c_out // groups), dtype=local.dtype, device=local.device)
    g = torch.arange(groups, device=local.device)
    full[g, :, g, :] = local.reshape(r, groups, c_out // groups).permute(1, 0, 2)
    return full.reshape(groups * r, c_out)


def biadjacency(weight: Optional[torch.Tensor], mask: Optional[torch.Tensor] = None,
                encoding: str = "channel", weighted: bool = False, groups: int = 1) -> torch.Tensor:
    """Biadjacency (inputs x outputs) of one layer.

    ``mask`` defaults to ``weight != 0``; ``weight`` may be ``None`` when ``weighted`` is False.
    Binary: ``bool``; weighted: float64 ``|w * m|`` (unrolled) or kernel L1 norms (channel).
    ``groups``: the conv's groups; > 1 gives the block-diagonal graph (module docstring).
    """
    if groups != 1:
        groups = _check_groups(mask if mask is not None else weight, groups)
        return _block_diagonal(biadjacency(weight, mask, encoding, weighted), groups)
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODINGS)}")
    w, m = _layer_tensors(weight, mask)
    if weighted and w is None:
        raise ValueError("a weighted biadjacency needs the weight")
    c_out = m.shape[0]
    if not weighted:
        if encoding == "unrolled" or m.dim() == 2:
            return m.reshape(c_out, -1).T
        # numpy: torch's bool any() is ~10x slower on CPU
        return torch.from_numpy(m.cpu().numpy().reshape(c_out, m.shape[1], -1).any(-1).T.copy())
    a = (w.to(torch.float64) * m).abs()
    if encoding == "unrolled" or a.dim() == 2:
        return a.reshape(c_out, -1).T
    return a.reshape(c_out, a.shape[1], -1).sum(-1).T


def degrees(B) -> Tuple[torch.Tensor, torch.Tensor]:
    """(left degrees, right degrees) of the nonzero pattern of ``B`` (dense tensor or scipy sparse)."""
    if sp.issparse(B):
        nz = sp.csr_matrix(B, copy=True)
        nz.data = np.ones_like(nz.data)
        return (torch.from_numpy(np.asarray(nz.sum(1)).ravel().astype(np.int64)),
                torch.from_numpy(np.asarray(nz.sum(0)).ravel().astype(np.int64)))
    nz = torch.as_tensor(B) != 0
    return nz.sum(1), nz.sum(0)


def drop_isolated(B) -> Tuple[object, torch.Tensor, torch.Tensor]:
    """``(B without zero rows/columns, kept row indices, kept column indices)``."""
    left, right = degrees(B)
    rows = torch.nonzero(left > 0).flatten()
    cols = torch.nonzero(right > 0).flatten()
    if sp.issparse(B):
        return sp.csr_matrix(B)[rows.numpy()][:, cols.numpy()], rows, cols
    B = torch.as_tensor(B)
    return B[rows][:, cols], rows, cols


def unrolled_csr(weight: Optional[torch.Tensor], mask: Optional[torch.Tensor] = None,
                 encoding: str = "unrolled", groups: int = 1) -> sp.csr_matrix:
    """Sparse float64 biadjacency (inputs x outputs) with one stored entry per kept weight.

    Values are ``|w * m|`` (ones when ``weight`` is None).  A kept weight that is exactly zero is
    still stored (an explicit zero), so the sparsity pattern is the mask -- the NeurIPS dev code's
    edge rule ``mask != 0`` -- while the values carry the weighted graph.  ``groups`` > 1: the
    block-diagonal graph of a grouped conv (module docstring), built from indices (never dense).
    """
    if groups != 1:
        groups = _check_groups(mask if mask is not None else weight, groups)
    if encoding == "channel" and (mask if mask is not None else weight).dim() == 4:
        w, m = _layer_tensors(weight, mask)
        pattern = biadjacency(None, m, "channel", groups=groups)
        vals = biadjacency(w, m, "channel", weighted=True, groups=groups) if w is not None else None
        rows, cols = torch.nonzero(pattern, as_tuple=True)
        data = (vals[rows, cols].numpy() if vals is not None else np.ones(len(rows)))
        return sp.csr_matrix((data, (rows.numpy(), cols.numpy())), shape=tuple(pattern.shape))
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODINGS)}")
    w, m = _layer_tensors(weight, mask)
    c_out = m.shape[0]
    m2 = m.reshape(c_out, -1).cpu().numpy()
    n_in = m2.shape[1]
    # numpy, not torch: nonzero/sum of a bool tensor are ~20x slower in torch on CPU
    flat = np.flatnonzero(m2)  # out-major: exactly the CSR of the transpose
    indptr = np.zeros(c_out + 1, dtype=np.int64)
    np.cumsum(np.bincount(flat // n_in, minlength=c_out), out=indptr[1:])
    cols = flat % n_in
    if groups > 1:  # local row of output j's group -> global row (block j // (c_out / G))
        cols = cols + (flat // n_in) // (c_out // groups) * n_in
    if w is None:
        data = np.ones(len(cols))
    else:
        data = np.abs(w.reshape(-1).cpu().numpy()[flat].astype(np.float64))
    return sp.csr_matrix((data, cols, indptr), shape=(c_out, n_in * groups)).T.tocsr()
