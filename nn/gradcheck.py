"""Gradient check: back-propagated gradients against central finite differences in float64."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nn.container import Sequential


@dataclass
class GradientError:
    """How far the analytic gradient of one array is from its finite-difference estimate.

    ``max_abs_error`` is max |a − n| over the entries; ``rel_error`` is ‖a − n‖ / max(‖a‖, ‖n‖)
    (0 when both vanish).
    """

    name: str
    max_abs_error: float
    rel_error: float
    passed: bool


@dataclass
class GradcheckReport:
    """Result of :func:`gradcheck`: one row per parameter and one for the input."""

    rows: list[GradientError] = field(default_factory=list)
    rtol: float = 1e-5
    atol: float = 1e-8

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all rows (0 when nothing was checked)."""
        return max((row.rel_error for row in self.rows), default=0.0)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        width = max((len(row.name) for row in self.rows), default=0)
        lines = [
            f"gradcheck {'PASSED' if self.passed else 'FAILED'} "
            f"(rtol={self.rtol:g}, atol={self.atol:g})"
        ]
        for row in self.rows:
            mark = "ok" if row.passed else "FAIL"
            lines.append(
                f"  {row.name:<{width}}  max abs {row.max_abs_error:.2e}  "
                f"rel {row.rel_error:.2e}  {mark}"
            )
        return "\n".join(lines)


def gradcheck(
    model: Sequential,
    loss,
    X: np.ndarray,
    y: np.ndarray,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    check_input: bool = True,
) -> GradcheckReport:
    """Compare back-propagation with central finite differences, in float64.

    The model is copied to float64; every entry of θ (and of the input X) is perturbed by ±eps
    and ∂L/∂θᵢ ≈ (L(θ + eps·eᵢ) − L(θ − eps·eᵢ)) / (2·eps) is compared with the analytic
    gradient. An entry passes when |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|).

    Parameters
    ----------
    model : Sequential
    loss : Loss
        A loss with ``forward(pred, target) -> float`` and ``backward() -> ∂L/∂pred``.
    X : ndarray, shape (batch, n_features)
    y : ndarray
        Targets in the form the loss expects.
    eps : float
        Finite-difference step.
    rtol, atol : float
        Tolerances of the pass criterion.
    check_input : bool
        Also check ∂L/∂X.

    Returns
    -------
    GradcheckReport
        Per-parameter (``"0.W"``: layer index and name) and input errors; ``report.passed``.
    """
    model64 = model.copy(np.float64)
    X64 = np.array(X, dtype=np.float64)
    y64 = np.array(y, dtype=np.float64) if np.asarray(y).dtype.kind == "f" else np.asarray(y)

    rng_state = model64.rng.bit_generator.state

    def loss_at(x: np.ndarray) -> float:
        model64.rng.bit_generator.state = rng_state  # the same dropout masks every time
        return float(loss.forward(model64.forward(x), y64))

    model64.zero_grad()
    loss_at(X64)
    grad_input = model64.backward(loss.backward()).copy()
    analytic = model64.theta_grad.copy()

    numeric = np.empty_like(model64.theta)
    theta = model64.theta
    for i in range(theta.size):
        original = theta[i]
        theta[i] = original + eps
        plus = loss_at(X64)
        theta[i] = original - eps
        minus = loss_at(X64)
        theta[i] = original
        numeric[i] = (plus - minus) / (2 * eps)

    report = GradcheckReport(rtol=rtol, atol=atol)
    offset = 0
    for index, layer in enumerate(model64.layers):
        for p in layer.parameters():
            part = slice(offset, offset + p.size)
            report.rows.append(
                _compare(f"{index}.{p.name}", analytic[part], numeric[part], rtol, atol)
            )
            offset += p.size

    if check_input:
        numeric_input = np.empty_like(X64)
        flat = numeric_input.reshape(-1)
        x_flat = X64.reshape(-1)
        for i in range(x_flat.size):
            original = x_flat[i]
            x_flat[i] = original + eps
            plus = loss_at(X64)
            x_flat[i] = original - eps
            minus = loss_at(X64)
            x_flat[i] = original
            flat[i] = (plus - minus) / (2 * eps)
        report.rows.append(_compare("input", grad_input, numeric_input, rtol, atol))
    return report


def _compare(
    name: str, analytic: np.ndarray, numeric: np.ndarray, rtol: float, atol: float
) -> GradientError:
    diff = np.abs(analytic - numeric)
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    return GradientError(
        name=name,
        max_abs_error=float(diff.max(initial=0.0)),
        rel_error=float(np.linalg.norm(diff) / scale) if scale > 0 else 0.0,
        passed=bool(np.all(diff <= atol + rtol * np.maximum(np.abs(analytic), np.abs(numeric)))),
    )
