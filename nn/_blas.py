"""Products that accumulate in place, so a gradient is added in one BLAS pass, no temporary."""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}
_GEMV = {np.dtype(np.float32): blas.sgemv, np.dtype(np.float64): blas.dgemv}
_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}


def add_xT_dz(x: np.ndarray, dz: np.ndarray, grad_W: np.ndarray) -> None:
    """grad_W += xᵀ · dz in place, as one BLAS call (no temporary of the size of grad_W).

    Parameters
    ----------
    x : ndarray, shape (batch, n_in), C-contiguous
    dz : ndarray, shape (batch, n_out), C-contiguous
    grad_W : ndarray, shape (n_in, n_out), C-contiguous, same dtype as ``x`` and ``dz``
    """
    gemm = _GEMM.get(grad_W.dtype)
    if gemm is None or not _blas_ready(grad_W.dtype, x, dz):
        grad_W += x.T @ dz
        return
    # In Fortran order grad_Wᵀ (n_out, n_in) += dzᵀ (n_out, batch) · x (batch, n_in).
    out = gemm(1.0, dz.T, x.T, beta=1.0, c=grad_W.T, trans_b=True, overwrite_c=True)
    if not np.may_share_memory(out, grad_W):  # BLAS had to work on a copy
        grad_W[...] = out.T


def add_column_sums(dz: np.ndarray, grad_b: np.ndarray) -> None:
    """grad_b += Σ_batch dz in place, as one BLAS matrix-vector product with a ones vector.

    Parameters
    ----------
    dz : ndarray, shape (batch, n_out), C-contiguous
    grad_b : ndarray, shape (n_out,), same dtype as ``dz``
    """
    gemv = _GEMV.get(grad_b.dtype)
    if gemv is None or not _blas_ready(grad_b.dtype, dz):
        grad_b += dz.sum(axis=0)
        return
    key = (dz.shape[0], dz.dtype)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES[key] = np.ones(dz.shape[0], dtype=dz.dtype)
    # dzᵀ (n_out, batch) is Fortran-ordered: grad_b += dzᵀ · 1
    out = gemv(1.0, dz.T, ones, beta=1.0, y=grad_b, overwrite_y=True)
    if not np.may_share_memory(out, grad_b):
        grad_b[...] = out


def _blas_ready(dtype: np.dtype, *arrays: np.ndarray) -> bool:
    """Whether every array is C-contiguous with ``dtype`` (so BLAS reads it without a copy)."""
    return all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)
