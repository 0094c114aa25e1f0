"""Matrix products that accumulate in place, so a gradient is written in one pass."""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}


def add_xT_dz(x: np.ndarray, dz: np.ndarray, grad_W: np.ndarray) -> None:
    """grad_W += xᵀ · dz in place, as one BLAS call (no temporary of the size of grad_W).

    Parameters
    ----------
    x : ndarray, shape (batch, n_in), C-contiguous
    dz : ndarray, shape (batch, n_out), C-contiguous
    grad_W : ndarray, shape (n_in, n_out), C-contiguous, same dtype as ``x`` and ``dz``
    """
    gemm = _GEMM.get(grad_W.dtype)
    if gemm is None or not (x.flags.c_contiguous and dz.flags.c_contiguous):
        grad_W += x.T @ dz
        return
    # In Fortran order grad_Wᵀ (n_out, n_in) += dzᵀ (n_out, batch) · x (batch, n_in).
    out = gemm(1.0, dz.T, x.T, beta=1.0, c=grad_W.T, trans_b=True, overwrite_c=True)
    if not np.may_share_memory(out, grad_W):  # BLAS had to work on a copy
        grad_W[...] = out.T
