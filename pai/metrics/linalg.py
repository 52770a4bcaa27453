"""Top singular values of a (sparse) biadjacency by the Gram route: the engine of every spectral metric.

``sigma_i(B)^2`` are the eigenvalues of the Gram matrix on the smaller side of ``B`` (``B^T B`` is
at most c_out x c_out, e.g. 512 x 512, for a conv layer), built sparse in O(sum of squared
degrees).  Up to ``DENSE_LIMIT`` LAPACK's ``dsyevr`` returns just the top eigenvalues of the dense
Gram (about 9 ms for 512 x 512 on one core): exact, and it sees a repeated top eigenvalue (two
isomorphic components, common in sparse degree classes) that a single-vector Krylov method such
as ARPACK can miss.  Only when even the smaller side exceeds ``DENSE_LIMIT`` (a 25088x4096 head)
does ARPACK ``svds`` run on ``B`` itself, from a fixed seeded start vector so results repeat bit
for bit.  Gram eigenvalues below ``n * eps * lambda_1`` are rounding noise and are reported as
exactly 0 (so ``sigma_2(K_{m,n}) == 0``).  The official codes instead run ``eigsh(k=3)`` on the
full (n_in + n_out)^2 adjacency (ICLR: float32 COO; NeurIPS dev code: a dense torch matrix
converted to COO); the values agree (``tests/test_metrics_ramanujan.py`` re-states them literally).
"""
from __future__ import annotations

import contextlib
from typing import Union

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from scipy.linalg import lapack

try:  # scikit-learn's dependency; created after scipy.linalg so it sees both OpenBLAS copies
    from threadpoolctl import ThreadpoolController

    _POOLS = ThreadpoolController()
except Exception:  # pragma: no cover - threadpoolctl missing or broken: run with BLAS's default
    _POOLS = None

DENSE_LIMIT = 1536  # Gram side up to which LAPACK computes the top eigenvalues exactly
_START_SEED = 0  # ARPACK start vector: fixed, so every call is deterministic

Matrix = Union[torch.Tensor, np.ndarray, sp.spmatrix]


def as_csr(B: Matrix) -> sp.csr_matrix:
    """float64 CSR copy of a dense tensor/array or sparse matrix."""
    if sp.issparse(B):
        return sp.csr_matrix(B, dtype=np.float64)
    if isinstance(B, torch.Tensor):
        B = B.detach().cpu().to(torch.float64).numpy()
    B = np.asarray(B, dtype=np.float64)
    if B.ndim != 2:
        raise ValueError(f"a biadjacency must be 2-D, got shape {B.shape}")
    return sp.csr_matrix(B)


def _start_vector(n: int) -> np.ndarray:
    # not the ones vector: it is the top eigenvector of every biregular Gram, and a Krylov space
    # started there never sees sigma_2
    return np.random.default_rng(_START_SEED).standard_normal(n)


_LIMITED = 0  # depth of nested single_thread_blas contexts: only the outermost one sets the limit


@contextlib.contextmanager
def single_thread_blas():
    """Context running BLAS/LAPACK on one thread.

    The Grams are at most ``DENSE_LIMIT`` wide: threads buy little there, and on a busy machine
    OpenBLAS's spinning threads made ResNet-18's full spectrum 20-30x slower (measured: 36-68 s
    instead of 1.9 s with 2 cores shared by other jobs).  Nested uses cost nothing (setting the limit
    takes ~0.2 ms, and a PAGS candidate makes hundreds of solves inside one outer context).
    """
    global _LIMITED
    if _LIMITED or _POOLS is None:
        yield
        return
    with _POOLS.limit(limits=1, user_api="blas"):
        _LIMITED += 1
        try:
            yield
        finally:
            _LIMITED -= 1


def gram_top_eigenvalues(G, k: int = 2) -> np.ndarray:
    """The ``k`` largest eigenvalues (descending, >= 0) of a symmetric PSD (Gram) matrix (LAPACK)."""
    n = G.shape[0]
    A = G.toarray() if sp.issparse(G) else np.asarray(G, dtype=np.float64)
    lo = max(n - k, 0)
    vals, _, m, _, info = lapack.dsyevr(A, compute_v=0, range="I", il=lo + 1, iu=n)
    vals = vals[:m] if info == 0 else np.linalg.eigvalsh(A)[lo:]  # LAPACK's full solver as fallback
    vals = np.sort(np.asarray(vals, dtype=np.float64))[::-1][:k]
    vals = np.concatenate([vals, np.zeros(max(0, k - len(vals)))])
    if len(vals) and vals[0] > 0:
        vals[vals < max(n, 1) * np.finfo(np.float64).eps * vals[0]] = 0.0
    return np.clip(vals, 0.0, None)


def top_sv_csr(S: sp.csr_matrix, k: int = 2) -> np.ndarray:
    """``k`` largest singular values (descending) of a float64 CSR matrix, by the Gram route."""
    with single_thread_blas():
        return _top_sv_csr(S, k)


def _top_sv_csr(S: sp.csr_matrix, k: int) -> np.ndarray:
    n, m = S.shape
    if S.nnz == 0 or n == 0 or m == 0:
        return np.zeros(k)
    n_rows = int(np.count_nonzero(np.diff(S.indptr)))
    n_cols = int(np.count_nonzero(np.bincount(S.indices, minlength=m)))
    if min(n_rows, n_cols) > DENSE_LIMIT:
        try:
            s = spla.svds(S, k=k, v0=_start_vector(min(n, m)), return_singular_vectors=False)
        except spla.ArpackNoConvergence as err:
            raise RuntimeError(f"ARPACK did not converge on a {n}x{m} biadjacency") from err
        return np.sort(s)[::-1]
    G = ((S @ S.T) if n_rows <= n_cols else (S.T @ S)).toarray()
    keep = G.diagonal() > 0  # isolated nodes only add zero eigenvalues: drop them
    if not keep.all():
        idx = np.nonzero(keep)[0]
        G = G[np.ix_(idx, idx)]  # dense indexing: the same matrix as sparse slicing, without its overhead
    return np.sqrt(gram_top_eigenvalues(G, k))


def top_sv_lower_bounds(S: sp.csr_matrix, k: int = 2, steps: int = 24) -> np.ndarray:
    """Guaranteed lower bounds of the ``k`` largest singular values of ``S`` (descending), cheaply.

    Rayleigh-Ritz on a Krylov space of the smaller-side Gram ``G`` (``steps`` Lanczos vectors with full
    reorthogonalisation, from a fixed seeded start): by Cauchy interlacing the ``i``-th largest Ritz
    value of ``Q^T G Q`` (``Q`` orthonormal) is at most ``lambda_i(G)`` for *any* subspace, converged or
    not, so the bound never needs the iteration to succeed; it only gets tighter with ``steps``.  The
    Ritz values are lowered by ``1e-10 * theta_1`` (orthonormality and rounding errors are ~1e-15
    relative) and clipped at 0, so they stay below what :func:`top_sv_csr` reports, including its zeros
    for rounding-level eigenvalues.
    """
    n_rows, n_cols = S.shape
    if S.nnz == 0 or n_rows == 0 or n_cols == 0:
        return np.zeros(k)
    St = S.T.tocsr()
    if min(n_rows, n_cols) <= DENSE_LIMIT:  # dense Gram: a BLAS matvec per step, not two sparse ones
        G = ((S @ St) if n_rows <= n_cols else (St @ S)).toarray()
        n = G.shape[0]

        def gram(X):
            return G @ X
    elif n_rows <= n_cols:
        n = n_rows

        def gram(X):
            return S @ (St @ X)
    else:
        n = n_cols

        def gram(X):
            return St @ (S @ X)
    m = max(k, min(steps, n))
    V = np.empty((n, m))
    v = _start_vector(n)
    v /= np.linalg.norm(v)
    used = m
    for j in range(m):
        V[:, j] = v
        if j == m - 1:
            break
        w = gram(v)
        scale = np.linalg.norm(w)
        for _ in range(2):  # full reorthogonalisation, twice (Kahan's "twice is enough")
            w -= V[:, :j + 1] @ (V[:, :j + 1].T @ w)
        beta = np.linalg.norm(w)
        if beta <= 1e-10 * max(scale, 1e-300):  # invariant subspace: its Ritz values are eigenvalues
            used = j + 1
            break
        v = w / beta
    Q, _ = np.linalg.qr(V[:, :used])
    T = Q.T @ gram(Q)
    theta = np.sort(np.linalg.eigvalsh((T + T.T) / 2))[::-1][:k]
    theta = np.concatenate([theta, np.zeros(max(0, k - len(theta)))])
    theta = theta - 1e-10 * max(theta[0], 0.0)
    return np.sqrt(np.clip(theta, 0.0, None))


def block_top_sv_lower_bounds(blocks, n_cols: int, k: int = 2, steps: int = 12) -> np.ndarray:
    """:func:`top_sv_lower_bounds` of many CSR matrices with ``n_cols`` columns at once: ``(len(blocks), k)``.

    One Lanczos run on the block-diagonal ``B^T B`` (each block's column Gram, ``n_cols`` wide), with the
    per-block inner products and reorthogonalisation done as batched array operations, so a layer's
    degree classes cost one Python loop of ``steps`` iterations instead of one per class.  The bound is
    Rayleigh-Ritz on each block's own orthonormal basis (batched Householder QR), so it holds for any
    basis; a block whose Krylov space closes early continues with seeded random directions.
    """
    nb = len(blocks)
    if nb == 0:
        return np.zeros((0, k))
    B = sp.block_diag(blocks, format="csr")
    Bt = B.T.tocsr()

    def gram(X):  # X: (nb, n_cols, r) -> the same shape, each block by its own Gram
        r = X.shape[2]
        Y = Bt @ (B @ X.reshape(nb * n_cols, r))
        return np.asarray(Y).reshape(nb, n_cols, r)

    m = max(k, min(steps, n_cols))
    rng = np.random.default_rng(_START_SEED)
    V = np.zeros((nb, n_cols, m))
    v = rng.standard_normal((nb, n_cols))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for j in range(m):
        V[:, :, j] = v
        if j == m - 1:
            break
        w = gram(v[:, :, None])[:, :, 0]
        scale = np.linalg.norm(w, axis=1)
        for _ in range(2):  # full reorthogonalisation, twice, block by block
            w -= np.einsum("bnj,bj->bn", V[:, :, :j + 1], np.einsum("bnj,bn->bj", V[:, :, :j + 1], w))
        beta = np.linalg.norm(w, axis=1)
        dead = beta <= 1e-10 * np.maximum(scale, 1e-300)
        if dead.any():  # invariant subspace reached: any new direction keeps the bound valid
            fresh = rng.standard_normal((int(dead.sum()), n_cols))
            for _ in range(2):
                Vd = V[dead, :, :j + 1]
                fresh -= np.einsum("bnj,bj->bn", Vd, np.einsum("bnj,bn->bj", Vd, fresh))
            w[dead] = fresh
            beta = np.linalg.norm(w, axis=1)
        v = w / np.maximum(beta, 1e-300)[:, None]
    Q, _ = np.linalg.qr(V)  # exactly orthonormal bases (up to rounding): Rayleigh-Ritz applies
    T = np.einsum("bnj,bnl->bjl", Q, gram(Q))
    theta = np.linalg.eigvalsh((T + T.transpose(0, 2, 1)) / 2)[:, ::-1][:, :k]
    theta = theta - 1e-10 * np.maximum(theta[:, :1], 0.0)
    return np.sqrt(np.clip(theta, 0.0, None))


def top_singular_values(B: Matrix, k: int = 2) -> torch.Tensor:
    """The ``k`` largest singular values of ``B`` (float64, descending; zeros past the rank).

    Tiny dense inputs use ``torch.linalg.svdvals``; everything else the Gram route above.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if isinstance(B, torch.Tensor) and B.dim() == 2 and min(B.shape) <= 32:
        if B.numel() == 0:
            return torch.zeros(k, dtype=torch.float64)
        s = torch.linalg.svdvals(B.detach().cpu().to(torch.float64))[:k]
        s = torch.where(s < max(B.shape) * torch.finfo(torch.float64).eps * s[0], torch.zeros_like(s), s)
        return torch.cat([s, torch.zeros(k - len(s), dtype=torch.float64)])
    return torch.from_numpy(top_sv_csr(as_csr(B), k).copy())
