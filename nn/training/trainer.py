"""The per-step work of ``fit``: forward, loss, backward, checks, the optimizer step."""

from __future__ import annotations

import math

import numpy as np

from nn.container import layers_within
from nn.training.batches import SetLoss
from nn.training.callbacks import Callback
from nn.training.history import TrainingDivergedError
from optim._vectors import vector_norm

#: How far below the dtype's largest value ‖θ‖ + (a bound on the step) must stay for a step
#: to run without θ's backup. Computed norms fall short of the exact ones by a factor √n at
#: most (a computed sum of squares is at least its largest term) and a step's rounding adds a
#: relative 2⁻²³ at most per operation; 2⁻³² leaves room for both at any size that fits in
#: memory, while real weights stay some 20 orders of magnitude below it.
SAFE_MARGIN = 2.0**-32


def _bounds_its_steps(optimizer) -> bool:
    """Whether ``optimizer.step_bound`` is defined with the ``step`` it describes."""
    if "step" in vars(optimizer):  # a step replaced on the instance: the bound may not hold
        return False
    step_owner = next(c for c in type(optimizer).__mro__ if "step" in vars(c))
    return "step_bound" in vars(step_owner)


class Trainer:
    """The per-step work of ``fit``, with the buffers it reuses across steps.

    Every step: a backup of the layer buffers (running statistics, if any), forward, loss,
    metrics, backward writing ∇θ, a finite check of ‖∇θ‖² (one dot product), optional
    clipping, then the optimizer step. A non-finite loss or gradient raises before θ is
    touched. Whether a finite step can overflow θ is decided from norms: when the
    optimizer bounds its step (:meth:`~optim.Optimizer.step_bound`) and ``‖θ‖ + bound``
    stays far below the dtype's largest value, the step runs unchecked; otherwise θ is
    copied into a backup first and checked after (one dot product), so that a step leaving
    NaN or ±inf in θ is undone. Models with layer buffers always take the checked path. The
    loop neither loops over parameters in Python nor allocates arrays of θ's or a batch's
    size; metrics (optional) and the loss's label indexing make batch-row-sized temporaries
    (a numpy fancy-index update is faster than take/put into a buffer).
    """

    def __init__(
        self, model, loss, optimizer, batches, metrics, clip, clip_value, callbacks, sync=None
    ) -> None:
        self.model, self.loss, self.optimizer = model, loss, optimizer
        # -- data-parallel hooks (a DataParallel, or None on one process): `loss` is
        # then its GlobalLoss, `batches` yield this rank's rows, backward sums ∇θ over ranks
        self.sync = sync
        self.backward = model.backward if sync is None else sync.backward
        # --
        self.batches, self.metrics = batches, metrics
        self.clip, self.clip_value = clip, clip_value
        self.batch_callbacks = [
            cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end
        ]
        self.backup = model.theta.copy()
        # Layer buffers such as batch-norm running statistics change in forward, outside θ:
        # each step backs them up too, so that a refused step leaves them as they were.
        self.layer_buffers = [  # (layer index, layer, name, array, its backup)
            (i, part, name, array, array.copy())
            for i, layer in enumerate(model.layers)
            for part in layers_within(layer)
            if part.buffers_change_in_training
            for name, array in part.buffers().items()
        ]
        self.step = 0  # optimizer steps taken in this fit call
        # Steps are certified not to overflow θ only for an optimizer whose step_bound
        # describes its own step() (not a subclass's override) and without layer buffers,
        # whose refusal would need θ's backup.
        self.bounded = _bounds_its_steps(optimizer) and not self.layer_buffers
        self.safe_norm = float(np.finfo(model.dtype).max) * SAFE_MARGIN
        self.theta_norm: float | None = None  # an upper bound on ‖θ‖; None: compute it

    def epoch(self, epoch: int, order: np.ndarray | None, bar) -> float:
        """One pass over the data; returns the loss of its batches taken as one set."""
        model, loss, optimizer, metrics = self.model, self.loss, self.optimizer, self.metrics
        theta, theta_grad, backup = model.theta, model.theta_grad, self.backup
        clip, clip_value = self.clip, self.clip_value
        epoch_loss = SetLoss(loss)
        self.theta_norm = None  # callbacks may have changed θ since the last step
        for batch, (xb, yb, wb) in enumerate(self.batches(order), start=1):
            self._back_up_buffers()
            pred = model.forward(xb)
            value = loss.forward(pred, yb) if wb is None else loss.forward(pred, yb, wb)
            for m in metrics:
                m.update(pred, yb)
            if not math.isfinite(value):
                if loss.denominator() != 0:
                    raise self._diverged(epoch, batch, "loss", value)
                # every target weighs 0 (NaN mean): no step, but forward ran (running stats)
                bad = self._bad_buffer()
                if bad is not None:
                    raise self._diverged(epoch, batch, "buffers", *bad)
                if bar is not None:
                    bar.update(1)
                continue
            model.zero_grad()  # one fill; backward then writes each layer's ∂L/∂p into ∇θ
            self._backward(loss.backward())
            norm_sq = float(np.dot(theta_grad, theta_grad))  # ‖∇θ‖²: one BLAS pass
            if math.isfinite(norm_sq):
                norm = math.sqrt(norm_sq)
            else:  # NaN or ±inf in ∇θ (raises), or finite entries whose squares overflowed
                norm = self._check_gradient(epoch, batch)
            if clip is not None and norm > clip:  # optim.clip_grad_norm's rule
                theta_grad *= clip / (norm + 1e-6)
            if clip_value is not None:  # optim.clip_grad_value's rule
                np.clip(theta_grad, -clip_value, clip_value, out=theta_grad)
            after = self._norm_after_step(norm)
            if after is None:
                np.copyto(backup, theta)
            optimizer.step()
            self.step += 1
            if after is None:
                self.check_weights(epoch, batch)
            else:
                self.theta_norm = after
            size = len(xb) if self.sync is None else self.sync.shard.total  # the global batch
            epoch_loss.add(value, size)
            if bar is not None:
                bar.update(1)
                if batch % 16 == 1:
                    bar.set_postfix_str(f"loss={epoch_loss.result():.4f}", refresh=False)
            if self.batch_callbacks:
                logs = {"loss": value, "size": size}
                for cb in self.batch_callbacks:
                    cb.on_batch_end(batch - 1, logs)
                self.theta_norm = None  # a callback may have changed θ
                if model.stop_training:
                    break
        return epoch_loss.result()

    def full_batch_epoch(self, epoch: int) -> float:
        """One call of a full-batch optimizer (L-BFGS) on the whole training set."""
        model, loss, batches = self.model, self.loss, self.batches
        rng_state = model.rng.bit_generator.state
        np.copyto(self.backup, model.theta)  # θ and the layer buffers before this epoch
        self._back_up_buffers()

        empty = False

        def closure() -> float:
            nonlocal empty
            model.rng.bit_generator.state = rng_state  # one objective: the same dropout masks
            model.zero_grad()
            objective = SetLoss(loss)  # the loss of the whole set, whatever the batch size
            for xb, yb, wb in batches(None):
                pred = model.forward(xb)
                value = loss.forward(pred, yb) if wb is None else loss.forward(pred, yb, wb)
                factor = objective.add(value, len(xb))
                if factor == 0:  # a batch whose targets all weigh 0 adds no loss, no gradient
                    continue
                grad = loss.backward()
                grad *= factor  # ∂(L_b·d_b)/∂pred
                self._backward(grad, model.backward)  # ranks' ∇θ are summed once, below
            if self.sync is not None:  # ∇θ of every rank's rows
                self.sync.sum_gradient()
            if objective.empty:  # every target weighs 0: a flat objective, ∇θ = 0, no step
                empty = True
                return 0.0
            model.theta_grad *= objective.scale()
            total = objective.result()
            if not math.isfinite(total):
                model.theta[...] = self.backup
                self._restore_buffers()
                raise TrainingDivergedError(
                    f"Training diverged at epoch {epoch + 1}: the full-batch loss is {total}. "
                    "θ and the layer buffers are restored to their values before this epoch.",
                    epoch=epoch + 1,
                    step=self.step + 1,
                    quantity="loss",
                    value=total,
                )
            return total

        value = float(self.optimizer.step(closure))
        if empty:
            value = math.nan  # the loss of a set of no weight, as evaluate reports it
        self.step += 1
        if self.metrics:  # the metrics at the final θ, with the objective's dropout masks
            model.rng.bit_generator.state = rng_state
            for xb, yb, _ in batches(None):
                pred = model.forward(xb)
                for m in self.metrics:
                    m.update(pred, yb)
        self.check_weights(epoch, None)
        return value

    def _norm_after_step(self, grad_norm: float) -> float | None:
        """An upper bound on ‖θ‖ after the coming step if it cannot overflow θ, else None."""
        if not self.bounded:
            return None
        if self.theta_norm is None:
            self.theta_norm = vector_norm(self.model.theta)
        bound = self.optimizer.step_bound(grad_norm, self.theta_norm)
        if bound is None or not self.theta_norm + bound <= self.safe_norm:
            return None
        return self.theta_norm + bound

    def _backward(self, grad: np.ndarray, backward=None) -> None:
        """``(backward or self.backward)(grad)`` without ∂L/∂X, which training never needs.

        The model's ``needs_input_grad`` hint is False for this call only, so code outside
        the step (callbacks, copies of the model) sees the default.
        """
        self.model.needs_input_grad = False
        try:
            (backward or self.backward)(grad)
        finally:
            self.model.needs_input_grad = True

    # -- divergence (off the hot path) --------------------------------------------------------
    def _diverged(self, epoch, batch, quantity, value, detail=""):
        """Undo the refused step's changes to the layer buffers; return the error to raise."""
        self._restore_buffers()
        what = {
            "loss": f"the loss is {value}",
            "gradient": f"the gradient is not finite{detail}",
            "weights": f"the step made the weights non-finite{detail}",
            "buffers": f"a layer's buffer became non-finite{detail}",
        }[quantity]
        if batch is None:  # a full-batch optimizer's epoch: no batches, no clipping
            where, hint = "", "lower the learning rate or check the data"
        else:
            where = f", batch {batch}"
            hint = "lower the learning rate, clip gradients (clip_grad_norm=) or check the data"
        return TrainingDivergedError(
            f"Training diverged at epoch {epoch + 1}{where} (step {self.step + 1}): {what}. "
            f"The model keeps its weights from before this step; {hint}.",
            epoch=epoch + 1,
            batch=batch,
            step=self.step + 1,
            quantity=quantity,
            value=float(value),
        )

    def _first_bad(self, which: str) -> tuple[float, str]:
        """The first non-finite entry of θ or ∇θ and the parameter holding it."""
        for i, layer in enumerate(self.model.layers):
            for p in layer.parameters():
                array = p.data if which == "data" else p.grad
                bad = ~np.isfinite(array)
                if bad.any():
                    value = float(array[np.unravel_index(np.argmax(bad), array.shape)])
                    return value, f" (first {value} in {p.name} of layer {i}, {layer!r})"
        return math.nan, ""

    def _check_gradient(self, epoch: int, batch: int) -> float:
        """‖∇θ‖ computed without overflow (as optim.clip_grad_norm does), or raise on NaN/inf."""
        grad = self.model.theta_grad
        if not np.isfinite(grad).all():
            value, detail = self._first_bad("grad")
            raise self._diverged(epoch, batch, "gradient", value, detail)
        return vector_norm(grad)

    def check_weights(self, epoch: int, batch: int | None) -> None:
        """Undo the last step and raise if it left NaN or ±inf in θ or in a layer buffer.

        One read-only dot product per step. A non-finite weight does not always show in the
        next loss (a ReLU maps a −inf bias to 0), so θ itself is checked after every step,
        which makes the backup exactly the last finite θ.
        """
        theta = self.model.theta
        norm_sq = float(np.dot(theta, theta))
        self.theta_norm = math.sqrt(norm_sq) if math.isfinite(norm_sq) else None
        if not (math.isfinite(norm_sq) or np.isfinite(theta).all()):
            quantity, (value, detail) = "weights", self._first_bad("data")
        else:
            bad = self._bad_buffer()
            if bad is None:
                return
            quantity, (value, detail) = "buffers", bad
        theta[...] = self.backup
        self.step -= 1
        raise self._diverged(epoch, batch, quantity, value, detail)

    def _back_up_buffers(self) -> None:
        for *_, array, array_backup in self.layer_buffers:
            np.copyto(array_backup, array)

    def _restore_buffers(self) -> None:
        for *_, array, array_backup in self.layer_buffers:
            np.copyto(array, array_backup)

    def _bad_buffer(self) -> tuple[float, str] | None:
        """The first non-finite entry of a layer buffer (e.g. running statistics) and where."""
        for i, layer, name, array, _ in self.layer_buffers:
            if math.isfinite(float(np.add.reduce(array, axis=None))) or np.isfinite(array).all():
                continue
            value = float(array.flat[np.argmin(np.isfinite(array))])
            return value, f" (first {value} in {name} of layer {i}, {layer!r})"
        return None


# -- evaluation ------------------------------------------------------------------------------
