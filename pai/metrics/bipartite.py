"""A prunable layer as a bipartite graph: its biadjacency matrix in the two encodings of the literature.

Left nodes are the layer's inputs, right nodes its outputs; ``B[i, j] != 0`` is an edge.

* ``"unrolled"`` (Hoang et al., ICLR 2023 "Revisiting pruning at initialization through the lens
  of Ramanujan graph", and the NeurIPS 2023 "Don't just prune by magnitude" dev code): a conv
  weight ``(c_out, c_in, kh, kw)`` becomes ``(c_in*kh*kw) x c_out``; every kernel tap is its own
  left node, channel-major (row ``c*kh*kw + u*kw + v``), so one kept weight is one edge.
* ``"channel"`` (X-Net, Prabhu et al., ECCV 2018; RReg, Stewart et al., CVPRW 2023): ``c_in x c_out``,
  an edge is a kernel with at least one kept weight; weighted, its value is the kernel's L1 norm
  ``sum |w * m|``.

A Linear weight ``(out, in)`` is ``in x out`` in both encodings.  Binary biadjacencies are ``bool``
tensors (a 25088x4096 classifier is 100 MB, not 800 MB); weighted ones are float64 ``|w * m|``.
Isolated nodes (zero rows/columns) carry no edge: the ICLR code drops them before averaging degrees
(``scores.filter_zero_degree``) and the NeurIPS code before its eigen-solve; :func:`drop_isolated`
does the same.  :func:`unrolled_csr` is the sparse form every spectral metric is computed from.
"""
from __future__ import annotations

from typing import Optional, Tuple

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


def biadjacency(weight: Optional[torch.Tensor], mask: Optional[torch.Tensor] = None,
                encoding: str = "channel", weighted: bool = False) -> torch.Tensor:
    """Biadjacency (inputs x outputs) of one layer.

    ``mask`` defaults to ``weight != 0``; ``weight`` may be ``None`` when ``weighted`` is False.
    Binary: ``bool``; weighted: float64 ``|w * m|`` (unrolled) or kernel L1 norms (channel).
    """
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
                 encoding: str = "unrolled") -> sp.csr_matrix:
    """Sparse float64 biadjacency (inputs x outputs) with one stored entry per kept weight.

    Values are ``|w * m|`` (ones when ``weight`` is None).  A kept weight that is exactly zero is
    still stored (an explicit zero), so the sparsity pattern is the mask -- the NeurIPS dev code's
    edge rule ``mask != 0`` -- while the values carry the weighted graph.
    """
    if encoding == "channel" and (mask if mask is not None else weight).dim() == 4:
        w, m = _layer_tensors(weight, mask)
        pattern = biadjacency(None, m, "channel")
        vals = biadjacency(w, m, "channel", weighted=True) if w is not None else None
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
    if w is None:
        data = np.ones(len(cols))
    else:
        data = np.abs(w.reshape(-1).cpu().numpy()[flat].astype(np.float64))
    return sp.csr_matrix((data, cols, indptr), shape=(c_out, n_in)).T.tocsr()
