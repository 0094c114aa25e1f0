"""Sequential: a stack of layers whose parameters live in one vector θ."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np

from nn.checks import check_array, check_dtype, check_non_negative_int, check_positive_int
from nn.layer import Layer
from nn.parameter import Parameter

if TYPE_CHECKING:
    from nn.training import History


class Sequential(Layer):
    """A stack of layers applied in order, with every parameter in one contiguous vector θ.

    The reference notes write all parameters as one vector θ (5.1), the gradient as one
    vector ∇L(θ) (5.2) and training as θ ← θ − η∇L(θ) (5.3). A Sequential keeps exactly that:
    ``model.theta`` holds every parameter and ``model.theta_grad`` every gradient, and each
    layer's ``W`` and ``b`` are views into them. Zeroing gradients is one call, an optimizer
    step a few vector operations whatever the depth, and ``layer.W.data[...] = values``
    changes the model.

    Parameters
    ----------
    *layers : Layer
        The layers, applied first to last.
    seed : int or None
        Seed of the generator that initialises every layer's parameters (in layer order) and
        that layers such as Dropout draw from. ``None`` takes fresh entropy.
    dtype : np.float32 or np.float64
        The dtype of θ, ∇θ and every computation. Inputs are cast to it batch by batch.
    """

    def __init__(self, *layers: Layer, seed: int | None = None, dtype=np.float32) -> None:
        super().__init__()
        if not layers:
            raise ValueError("Sequential needs at least one layer. Received: no layers")
        owner_of_layer: dict[int, int] = {}  # id of a layer (nested ones too) -> argument
        owner_of_param: dict[int, int] = {}
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential takes Layer instances, but argument {i} is "
                    f"{layer!r} of type {type(layer).__name__}"
                )
            for part in layers_within(layer):
                first = owner_of_layer.setdefault(id(part), i)
                if first != i:
                    raise ValueError(
                        f"The same layer object {part!r} is used twice (arguments {first} and "
                        f"{i}); a layer caches its forward values, so each position needs its "
                        "own"
                    )
            for p in layer.parameters():
                first = owner_of_param.setdefault(id(p), i)
                if first != i:
                    raise ValueError(
                        f"Parameter {p.name!r} of {layer!r} (argument {i}) is also a parameter "
                        f"of argument {first}: tied weights are not supported, since each "
                        "parameter is its own slice of θ. Give each layer its own Parameter"
                    )
            if any(p.data.base is not None for p in layer.parameters()):
                raise ValueError(
                    f"Layer {layer!r} (argument {i}) already belongs to a Sequential: its "
                    "parameters are views into that model's θ, which a second model would "
                    "take over. Pass copy.deepcopy(layer), or use model.copy()"
                )
        if seed is not None:
            check_non_negative_int("seed", seed)
        self.layers: list[Layer] = list(layers)
        self.dtype = check_dtype("dtype", dtype)
        self.seed = seed
        self.n_features = self._check_feature_chain()
        self.rng = np.random.default_rng(seed)
        self.theta, self.theta_grad = self._bind_parameters()
        for layer in self.layers:
            layer.reset_parameters(self.rng)
        # Without ∂L/∂x for the model's input, backward stops at the first layer with parameters.
        self._first_trainable = next(
            (i for i, layer in enumerate(self.layers) if layer.parameters()), len(layers) - 1
        )

    # -- θ ------------------------------------------------------------------------------------
    def _bind_parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """Move every parameter into one vector θ and every gradient into ∇θ (views)."""
        params = self.parameters()
        total = sum(p.size for p in params)
        theta = np.empty(total, dtype=self.dtype)
        theta_grad = np.zeros(total, dtype=self.dtype)
        offset = 0
        for p in params:
            view = theta[offset : offset + p.size].reshape(p.shape)
            view[...] = p.data
            p.data = view
            p.grad = theta_grad[offset : offset + p.size].reshape(p.shape)
            offset += p.size
        for layer in self.layers:
            for name, array in layer.buffers().items():
                setattr(layer, name, array.astype(self.dtype))
        return theta, theta_grad

    def _check_feature_chain(self) -> int | None:
        """The number of input features, after checking that consecutive layers fit."""
        n_features = None
        n = None
        for layer in self.layers:
            declared = layer.n_features_in
            if n is None and declared is not None:
                n_features = n = declared
            if n is not None:
                n = layer.output_features(n)
        return n_features

    def parameters(self) -> list[Parameter]:
        """Every parameter in layer order (W then b), each a view into θ."""
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        """∇θ ← 0, in one call.

        The next ``backward`` tells its layers so (``grad_is_zero``), and layers that can
        write ∂L/∂p straight into ``p.grad`` instead of adding it to the zeros: change ∇θ only
        through ``backward`` between the two calls.
        """
        self.theta_grad.fill(0)
        self.grad_is_zero = True

    def reset_parameters(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            layer.reset_parameters(rng)

    # -- the chain rule -----------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layers in order.

        Parameters
        ----------
        x : ndarray, shape (batch, n_features)
            Cast to the model's dtype if it has another.

        Returns
        -------
        ndarray, shape (batch, n_outputs)
            A buffer of the last layer, valid until the next forward.
        """
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Back-propagate ∂L/∂out through the layers in reverse order (5.9–5.13).

        Each layer adds its parameters' gradients into ∇θ and hands ∂L/∂(its input) to the
        layer before it. With ``needs_input_grad`` False (``fit`` sets it: training needs
        only ∇θ) backward stops at the first layer with parameters and tells it that nothing
        needs its ∂L/∂x.

        Parameters
        ----------
        grad_out : ndarray, shape (batch, n_outputs)

        Returns
        -------
        ndarray, shape (batch, n_features), or None when ``needs_input_grad`` is False
        """
        grad = grad_out if grad_out.dtype == self.dtype else grad_out.astype(self.dtype)
        needs_input_grad, grad_is_zero = self.needs_input_grad, self.grad_is_zero
        last = 0 if needs_input_grad else self._first_trainable
        try:
            for i in range(len(self.layers) - 1, last - 1, -1):
                layer = self.layers[i]
                layer.needs_input_grad = needs_input_grad or i > last
                layer.grad_is_zero = grad_is_zero
                try:
                    grad = layer.backward(grad)
                finally:
                    layer.needs_input_grad, layer.grad_is_zero = True, False
        finally:
            self.grad_is_zero = False  # ∇θ holds (part of) this pass's gradients now
        return grad if needs_input_grad else None

    # -- modes ----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Sequential:
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    # -- inference --------------------------------------------------------------------------
    def predict(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The model's output for every row of ``X``, computed in evaluation mode.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        batch_size : int
            Rows per forward pass; ``X`` may be memory-mapped and larger than memory.

        Returns
        -------
        ndarray, shape (n_samples, n_outputs)
            A new array of the model's dtype.
        """
        X = check_array("X", X, n_features=self.n_features, dtype=self.dtype)
        batch_size = check_positive_int("batch_size", batch_size)
        was_training = self.training
        self.eval()
        try:
            out = None
            for start in range(0, X.shape[0], batch_size):
                batch = self.forward(np.asarray(X[start : start + batch_size], dtype=self.dtype))
                if out is None:
                    out = np.empty((X.shape[0], batch.shape[1]), dtype=self.dtype)
                out[start : start + len(batch)] = batch
        finally:
            self.train(was_training)
        return out

    # -- training ---------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, **kwargs) -> History:
        """Train by mini-batch gradient descent and return the per-epoch :class:`History`.

        ``model.fit(X, y, loss=..., optimizer=..., epochs=...)`` is :func:`nn.training.fit`
        (also ``nn.fit``), whose docstring lists every argument: batching, validation,
        metrics, callbacks and schedules, progress output, gradient clipping, sample weights,
        checkpoints and resuming.
        """
        from nn.training import fit

        return fit(self, X, y, **kwargs)

    def evaluate(self, X: np.ndarray, y: np.ndarray, **kwargs) -> dict[str, float]:
        """Loss and metrics on (X, y) in evaluation mode; see :func:`nn.training.evaluate`."""
        from nn.training import evaluate

        return evaluate(self, X, y, **kwargs)

    def save(self, path) -> None:
        """Write the model to one ``.npz`` file, atomically; ``nn.load(path)`` reads it back."""
        from nn.files import save

        save(self, path)

    # -- copies ---------------------------------------------------------------------------------
    def copy(self, dtype=None) -> Sequential:
        """A deep copy with its own θ, optionally in another dtype (e.g. float64 for checks)."""
        layers = copy.deepcopy(self.layers)
        for layer in layers:
            layer._buffers = {}
        clone = Sequential(*layers, seed=0, dtype=self.dtype if dtype is None else dtype)
        clone.theta[...] = self.theta
        for mine, theirs in zip(self.layers, clone.layers, strict=True):
            for name, array in mine.buffers().items():
                getattr(theirs, name)[...] = array
        clone.seed = self.seed
        clone.rng.bit_generator.state = self.rng.bit_generator.state
        clone.train(self.training)
        return clone

    def __getstate__(self) -> dict:
        """The layers and settings; θ and ∇θ are rebuilt from the parameters on loading."""
        state = super().__getstate__()
        del state["theta"], state["theta_grad"]
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore a pickled or deep-copied model with its own, writable θ and ∇θ.

        Pickle copies each parameter apart from θ, so the views are re-created here: every
        ``W`` and ``b`` becomes a view into a new θ again (copied, so a read-only memmap
        load still trains), and the layers' buffers become writable copies.
        """
        self.__dict__.update(state)
        self.theta, self.theta_grad = self._bind_parameters()

    @property
    def n_parameters(self) -> int:
        """The length of θ."""
        return self.theta.size

    def config(self) -> dict:
        return {"dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self) -> str:
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        head = f"Sequential(dtype={self.dtype.name}, parameters={self.n_parameters}"
        return head + ")\n" + "\n".join(lines) if lines else head + ")"


def layers_within(layer: Layer):
    """``layer`` and, for a Sequential, every layer nested in it."""
    yield layer
    if isinstance(layer, Sequential):
        for inner in layer.layers:
            yield from layers_within(inner)
