"""Full-batch L-BFGS through ``scipy.optimize.minimize(method="L-BFGS-B")`` on the θ vector."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from nn import checks
from nn.parameter import Parameter
from optim.optimizer import Optimizer


class LBFGS(Optimizer):
    r"""Limited-memory BFGS on the full-batch loss: one :meth:`step` runs a whole minimisation.

    ``step(closure)`` hands θ to SciPy's L-BFGS-B as one float64 vector ``x``. For every point
    SciPy asks about, the optimizer copies ``x`` into θ (cast to the parameters' dtype), calls
    ``closure()`` — which zeroes the gradients, runs forward, loss and backward, and returns the
    loss — and gives SciPy back the loss and ∇θ. The approximate inverse Hessian is built from
    the last ``history_size`` pairs ``(s_k, y_k) = (x_{k+1} − x_k, ∇f_{k+1} − ∇f_k)``, and each
    step length comes from a line search satisfying the strong Wolfe conditions, so there is
    no learning rate: ``lr`` is kept at 1 and unused, and schedules refuse this optimizer.

    It stops after ``max_iter`` iterations or when
    ``(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ tol`` or ``max_i |∇f_i| ≤ tol``. The
    training loop calls it once per epoch (``full_batch = True``); each call starts a fresh
    curvature history from the current θ.

    Parameters
    ----------
    params : iterable of Parameter
        E.g. ``model.parameters()``; ideally views into one θ vector.
    max_iter : int, default 100
        Maximum number of L-BFGS iterations per :meth:`step`.
    tol : float, default 1e-6
        Tolerance on the relative reduction of the loss and on the largest gradient component
        (SciPy's ``ftol`` and ``gtol``). For float32 parameters tolerances much below 1e-6
        reach the float32 noise of the loss and end in a line-search failure.
    history_size : int, default 10
        Number of curvature pairs kept (SciPy's ``maxcor``).

    Attributes
    ----------
    result : scipy.optimize.OptimizeResult or None
        The last run's result: ``success``, ``message``, ``nit``, ``nfev``, ``fun``, ``x``.
    """

    full_batch = True
    _config = ("max_iter", "tol", "history_size")

    def __init__(
        self,
        params: Iterable[Parameter],
        max_iter: int = 100,
        tol: float = 1e-6,
        history_size: int = 10,
    ) -> None:
        max_iter = checks.check_positive_int("max_iter", max_iter)
        tol = checks.check_non_negative("tol", tol)
        history_size = checks.check_positive_int("history_size", history_size)
        super().__init__(params, lr=1.0)
        self.max_iter = max_iter
        self.tol = tol
        self.history_size = history_size
        self.result = None  # scipy.optimize.OptimizeResult after the first step
        self._offsets = np.cumsum([0] + [slot.theta.size for slot in self.slots])

    def _set_theta(self, x: np.ndarray) -> None:
        """θ ← x, cast to the parameters' dtype."""
        for slot, start, stop in zip(
            self.slots, self._offsets[:-1], self._offsets[1:], strict=True
        ):
            slot.theta[...] = x[start:stop].reshape(slot.theta.shape)

    def _gather(self, which: str) -> np.ndarray:
        """A new float64 vector of θ (``which="theta"``) or ∇θ (``which="grad"``)."""
        out = np.empty(self._size, dtype=np.float64)
        for slot, start, stop in zip(
            self.slots, self._offsets[:-1], self._offsets[1:], strict=True
        ):
            out[start:stop] = getattr(slot, which).reshape(-1)
        return out

    def step(self, closure: Callable[[], float]) -> float:
        """Minimise the loss computed by ``closure`` from the current θ; return the final loss.

        Parameters
        ----------
        closure : callable
            ``closure() -> float``: zero the gradients, run forward, the loss and backward
            (which fills ∇θ), and return the loss.

        Returns
        -------
        float
            The loss at the final θ (``result.fun``). θ holds ``result.x`` afterwards; the
            gradients are those of the last evaluation, not necessarily of that point.
        """
        if not callable(closure):
            raise TypeError(
                "Received an invalid value for `closure`, expected a callable that zeroes the "
                "gradients, runs forward, loss and backward and returns the loss. "
                f"Received: closure={closure!r}"
            )

        from scipy.optimize import minimize  # slow to import: loaded at the first L-BFGS step

        def loss_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            self._set_theta(x)
            loss = float(closure())
            return loss, self._gather("grad")

        result = minimize(
            loss_and_grad,
            self._gather("theta"),
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": self.max_iter,
                "maxcor": self.history_size,
                "ftol": self.tol,
                "gtol": self.tol,
            },
        )
        self._set_theta(result.x)
        self.result = result
        self.steps += 1
        return float(result.fun)

    @property
    def stop_reason(self) -> str:
        """Why the last :meth:`step` stopped, with its iteration and evaluation counts."""
        if self.result is None:
            return "not run yet"
        r = self.result
        status = "converged" if r.success else "stopped"
        return f"L-BFGS-B {status} after {r.nit} iterations ({r.nfev} evaluations): {r.message}"

    def __repr__(self) -> str:
        return (
            f"LBFGS(max_iter={self.max_iter!r}, tol={self.tol!r}, "
            f"history_size={self.history_size!r})"
        )
