"""The Layer base class: one piece of the chain rule."""

from __future__ import annotations

import numpy as np

from nn.parameter import Parameter


class Layer:
    """Base class of every layer.

    A layer maps a batch ``x`` of shape ``(batch, n_in)`` to ``(batch, n_out)``.

    * ``forward(x)`` computes the output and caches what ``backward`` needs.
    * ``backward(grad_out)`` receives ∂L/∂out, *adds* ∂L/∂p into each ``p.grad`` and returns
      ∂L/∂x. It never recomputes what ``forward`` cached.

    A container (``Sequential``) sets two attributes before it calls ``backward``, and
    restores their defaults after. Both only allow a layer to skip work; a layer that ignores
    them is still correct:

    * ``needs_input_grad`` (default True): False when nothing uses ∂L/∂x (the first layer
      with parameters during training); ``backward`` may then return None.
    * ``grad_is_zero`` (default False): True when every ``p.grad`` holds zeros (the first
      backward after ``zero_grad()``); ``backward`` may then write ∂L/∂p instead of adding.

    Arrays returned by ``forward`` and ``backward`` are buffers owned by the layer and reused
    when the batch shape repeats: they stay valid until the next call. Copy them to keep them.
    """

    training: bool = True
    #: The number of input features the layer requires, or None when any number works.
    n_features_in: int | None = None
    #: Attributes holding what forward cached for backward: not copied by pickle/deepcopy.
    _forward_cache: tuple[str, ...] = ()
    #: Whether forward couples the rows of a batch (Dropout's mask, BatchNorm1d's statistics):
    #: a data-parallel fit then hands the layer its ``shard`` of the global batch.
    couples_rows: bool = False
    #: Whether forward in training mode may change ``buffers()`` (running statistics): fit
    #: then backs them up and checks them every step. Standardize's stay as adapt() set them.
    buffers_change_in_training: bool = True
    #: The fewest samples a training batch may hold (BatchNorm1d needs 2 to normalise).
    min_batch_size: int = 1
    #: Set by the container: False when nothing uses ∂L/∂x, so backward may return None.
    needs_input_grad: bool = True
    #: Set by the container: True when every ``p.grad`` is zero, so backward may write ∂L/∂p.
    grad_is_zero: bool = False

    def __init__(self) -> None:
        self.training = True
        self._buffers: dict[str, np.ndarray] = {}

    # -- the contract ---------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output for a batch ``x`` of shape ``(batch, n_in)``."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``layer(x)``: ``forward(x)`` in a new array, as PyTorch and Keras return.

        ``forward`` returns the layer's own buffer, overwritten by the next call (training
        loops reuse it); ``layer(x)`` copies it, so the results of two calls stay apart.
        """
        return self.forward(x).copy()

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Add ∂L/∂p into each ``p.grad`` and return ∂L/∂x.

        Parameters
        ----------
        grad_out : ndarray, shape (batch, n_out)
            ∂L/∂out for the output of the last ``forward``.

        Returns
        -------
        ndarray, shape (batch, n_in), or None when ``needs_input_grad`` is False
        """
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        """The trainable parameters, in a fixed order (``W`` before ``b``)."""
        return []

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw fresh initial values in place (a no-op for layers without parameters)."""

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state saved with the model, keyed by attribute name.

        For example a standardizer's mean and scale or batch-norm running statistics. The
        arrays have fixed shapes from the constructor; model files restore them in place.
        """
        return {}

    @classmethod
    def state_shapes(
        cls, config: dict
    ) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]] | None:
        """The shapes of the parameters and of the buffers a layer built from ``config`` has.

        Model files use this to check every array against the description *before* building
        anything, so a file cannot make the loader allocate more than it holds. The default,
        None, means the class does not declare them: model files then build a layer from the
        config and take the shapes of its parameters and buffers.
        """
        return None

    def output_features(self, n_in: int) -> int:
        """The number of output features for ``n_in`` input features."""
        return n_in

    def config(self) -> dict:
        """The constructor arguments, as JSON-compatible values (used by model files).

        ``type(self)(**layer.config())`` must build a layer of the same shapes: model files
        record the class name and this config, and loading calls the constructor with it.
        """
        return {}

    def fit_warning(self) -> str | None:
        """Why the layer would not train as expected (``fit`` warns with it), or None."""
        return None

    # -- modes ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        """Switch to training mode (or evaluation mode with ``mode=False``)."""
        self.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Switch to evaluation mode."""
        return self.train(False)

    # -- copies ---------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """The state that pickle and ``copy.deepcopy`` copy: no scratch arrays.

        Scratch buffers and what the last forward cached (the attributes ``_forward_cache``
        names) are left out; the next forward makes new ones. A copy loaded read-only
        (joblib's ``mmap_mode="r"``) would otherwise write its output into read-only arrays.
        The container's hints are reset to their defaults.
        """
        state = dict(self.__dict__, _buffers={})
        for name in self._forward_cache:
            if name in state:
                state[name] = None
        for name in ("needs_input_grad", "grad_is_zero"):
            state.pop(name, None)
        return state

    # -- buffers --------------------------------------------------------------------------
    def _buffer(
        self, key: str, shape: tuple[int, ...], dtype: np.dtype, fill: float | None = None
    ) -> np.ndarray:
        """A scratch array owned by the layer, reused while shape and dtype stay the same.

        With ``fill``, a new array starts filled with that value: a constant such as the
        ones of a bias gradient, which callers only read.
        """
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
            self._buffers[key] = buf
        return buf

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


#: The layer types model files can hold, by class name: the built-in layers, and classes
#: registered in code with :func:`register_layer`. Loading builds no other class.
LAYER_TYPES: dict[str, type[Layer]] = {}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Class decorator: let model files hold layers of type ``cls`` (by its class name)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer takes a Layer subclass. Received: {cls!r}")
    known = LAYER_TYPES.get(cls.__name__)
    if known is not None and known is not cls:
        raise ValueError(
            f"A layer type named {cls.__name__!r} is registered already ({known!r}); "
            "give the class another name"
        )
    LAYER_TYPES[cls.__name__] = cls
    return cls
