"""The Neural Cellular Automaton of the paper's section 2.1 (equations 1-5, Algorithm 1).

One update maps a state ``x`` (channel-last, ``(*batch, height, width, channels)``; a 1-D or
3-D NCA has one or three lattice axes, ``(*batch, X, C)`` or ``(*batch, D, H, W, C)``) to::

    z = g * x                                  perception: 3x3 kernels, depthwise (eq 1-2)
    F(z) = W1 u(W2 z) + v                      one hidden layer, applied per cell (eq 3)
    x' = x + sigma * F(z)                      stochastic residual update (eq 4-5)

``sigma`` is a Bernoulli mask, one draw per cell and channel, equal to 1 with the
``update_probability`` ``1 - p``. ``W2`` (the input layer, ``w_in`` here) starts random,
``W1`` and ``v`` (``w_out``, ``b_out``) start at zero, so an untrained NCA leaves every
state unchanged. The kernels ``g`` are the paper's fixed stencils by name, optionally followed
by learnable ones (``stnca.learnable_kernels``) trained with the rest.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import _trajectory
from ._validate import choice, count, real
from .boundaries import check_boundary
from .cell_mlp import cell_mlp
from .conditions import Conditions
from .learnable_kernels import (
    check_learnable,
    init_parameters,
    kernel_arrays,
    parameter_shape,
    perceive_learnable,
)
from .scaling import Scaling
from .stencils import DIMENSIONS, check_kernels, perceive

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "linear": lambda z: z,
    "tanh": jnp.tanh,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "gelu": jax.nn.gelu,
    "sigmoid": jax.nn.sigmoid,
}
"""Activation name -> function ``u`` of the hidden layer."""

State = Float[Array, "*batch height width channels"]


def parameter_count(
    observable_channels: int,
    hidden_channels: int,
    kernels: int,
    hidden_width: int | None = None,
    hidden_bias: bool = False,
    conditions: int = 0,
    learnable_kernels: int = 0,
    learnable_kernel_symmetry: str = "none",
) -> int:
    """The number of weights of an ``NCA`` of this structure (``kernels``: how many fixed
    ones), without building it: ``W2`` (H x C x K), ``W1`` (U x H), ``v`` (U), the optional
    hidden bias and the learnable kernels' free parameters, where ``U`` counts the updated
    channels, ``C`` adds the ``conditions`` to them and ``K`` counts fixed and learnable
    kernels."""
    updated = observable_channels + hidden_channels
    channels = updated + conditions
    width = hidden_width or 4 * updated
    perceptions = kernels + learnable_kernels
    learned = int(np.prod(parameter_shape(learnable_kernels, learnable_kernel_symmetry)))
    return (
        width * channels * perceptions
        + updated * width
        + updated
        + (width if hidden_bias else 0)
        + learned
    )


class NCA(eqx.Module):
    """A Neural Cellular Automaton: perceive -> one-hidden-layer MLP -> stochastic residual update.

    Args:
        observable_channels: channels compared with data (e.g. 2 for Gray-Scott's A and B,
            4 for RGBA images). They come first in the state.
        hidden_channels: extra channels the rule may use as it likes; they start at zero.
        kernels: perception kernels by name, any subset of ``stnca.stencils.PERCEPTIONS``
            (the paper's 3x3 ``KERNELS`` and the rotation-invariant ``gradient_magnitude``)
            in any order (default identity and Laplacian, the paper's PDE model); empty
            when there are learnable kernels.
        learnable_kernels: how many learnable 3x3 kernels follow the named ones (default 0;
            2-D lattices only): their free parameters are ``kernel_weights``, trained with
            the rest, starting small and random (``stnca.learnable_kernels``).
        learnable_kernel_symmetry: ``none`` (default: nine free weights per kernel) or
            ``d4`` (three: centre, edge and corner weights, so that each kernel is unchanged
            by the square's rotations and reflections, isotropic like the Laplacian).
        activation: hidden-layer activation ``u``, one of ``ACTIVATIONS`` (default ``relu``).
        hidden_width: width ``H`` of the hidden layer (default ``4 C`` as in the paper).
        update_probability: probability ``1 - p`` that a cell-channel is updated in a step
            (default 1: deterministic, ``p = 0``).
        boundary: ``periodic`` (default), ``fixed`` (zero outside) or ``reflect``.
        dimensions: the lattice's dimension: 2 (default, the paper's images and PDEs), 1
            (lines, kymographs) or 3 (volumes); the kernels are
            ``stnca.stencils.kernels_for(dimensions)``.
        hidden_bias: add a bias to the hidden layer (default ``False``: equation 3 has none).
        init_scale: standard deviation of the random input-layer weights ``W2`` (default 0.1,
            as in the authors' code).
        scaling: the map from physical units to the units the model works in (a
            ``stnca.scaling.Scaling`` or its JSON dict); ``None`` (default) when the model
            works in physical units. ``rollout``, ``initial_state`` and ``__call__`` work in
            model units; ``encode`` / ``decode`` convert, and ``stnca.analysis.predict`` and
            ``evaluate`` take and return physical units.
        conditions: named parameters the rule reads but never updates (a
            ``stnca.conditions.Conditions`` or its JSON dict; ``None``, the default, for
            none): one input channel each, after the observable ones. The state is laid out
            ``[observable | conditions | hidden]``; the *data channels* (observable and
            conditions) are what ``initial_state`` and ``encode`` take (see
            ``with_conditions``).
        key: PRNG key for the random ``W2`` (and, folded with 1, the learnable kernels).
    """

    w_in: Float[Array, "hidden_width channels kernels"]
    w_out: Float[Array, "updated hidden_width"]
    b_out: Float[Array, " updated"]
    b_in: Float[Array, " hidden_width"] | None
    kernel_weights: Float[Array, "learnable ..."] | None
    observable_channels: int = eqx.field(static=True)
    hidden_channels: int = eqx.field(static=True)
    kernels: tuple[str, ...] = eqx.field(static=True)
    learnable_kernel_symmetry: str = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    update_probability: float = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    dimensions: int = eqx.field(static=True)
    scaling: Scaling | None = eqx.field(static=True)
    conditions: Conditions | None = eqx.field(static=True)

    def __init__(
        self,
        observable_channels: int,
        hidden_channels: int,
        *,
        kernels: Sequence[str] = ("identity", "laplacian"),
        learnable_kernels: int = 0,
        learnable_kernel_symmetry: str = "none",
        activation: str = "relu",
        hidden_width: int | None = None,
        update_probability: float = 1.0,
        boundary: str = "periodic",
        dimensions: int = 2,
        hidden_bias: bool = False,
        init_scale: float = 0.1,
        scaling: Scaling | dict | None = None,
        conditions: Conditions | dict | None = None,
        key: PRNGKeyArray,
    ):
        self.observable_channels = count(observable_channels, "observable_channels", 1)
        self.hidden_channels = count(hidden_channels, "hidden_channels", 0)
        if isinstance(dimensions, bool) or dimensions not in DIMENSIONS:
            raise ValueError(f"dimensions must be 1, 2 or 3, got {dimensions!r}")
        self.dimensions = int(dimensions)
        learnable, self.learnable_kernel_symmetry = check_learnable(
            learnable_kernels, learnable_kernel_symmetry, self.dimensions
        )
        # with learnable kernels the named ones may be none at all
        no_names = learnable and not isinstance(kernels, str) and not tuple(kernels)
        self.kernels = () if no_names else check_kernels(kernels, self.dimensions)
        self.activation = choice(activation, "activation", ACTIVATIONS)
        self.update_probability = real(update_probability, "update_probability", 0.0, 1.0)
        if self.update_probability == 0.0:
            raise ValueError("update_probability must be > 0, or no cell would ever update")
        self.boundary = check_boundary(boundary)
        if isinstance(conditions, dict):
            conditions = Conditions.from_json(conditions)
        if conditions is not None and not isinstance(conditions, Conditions):
            raise ValueError(f"conditions must be a Conditions, got {conditions!r}")
        self.conditions = conditions
        updated = self.observable_channels + self.hidden_channels
        width = 4 * updated if hidden_width is None else count(hidden_width, "hidden_width", 1)
        init_scale = real(init_scale, "init_scale", 0.0)
        perceptions = len(self.kernels) + learnable
        self.w_in = init_scale * jax.random.normal(key, (width, self.channels, perceptions))
        self.kernel_weights = (
            init_parameters(
                learnable, self.learnable_kernel_symmetry, key=jax.random.fold_in(key, 1)
            )
            if learnable
            else None
        )
        self.w_out = jnp.zeros((updated, width))
        self.b_out = jnp.zeros((updated,))
        self.b_in = jnp.zeros((width,)) if hidden_bias else None
        if isinstance(scaling, dict):
            scaling = Scaling.from_json(scaling)
        if scaling is not None and (
            not isinstance(scaling, Scaling) or scaling.channels != self.observable_channels
        ):
            raise ValueError(
                f"scaling must be a Scaling with {self.observable_channels} channels, "
                f"got {scaling!r}"
            )
        self.scaling = scaling

    @property
    def condition_names(self) -> tuple[str, ...]:
        """The names of the conditions (empty for an unconditioned model)."""
        return () if self.conditions is None else self.conditions.names

    @property
    def data_channels(self) -> int:
        """Channels read from data: the observable ones, then one per condition."""
        return self.observable_channels + len(self.condition_names)

    @property
    def channels(self) -> int:
        """Total number of channels ``C`` of a state: data channels plus hidden."""
        return self.data_channels + self.hidden_channels

    @property
    def hidden_width(self) -> int:
        """Width ``H`` of the hidden layer."""
        return self.w_in.shape[0]

    @property
    def learnable_kernels(self) -> int:
        """How many learnable kernels follow the named ones (0 without)."""
        return 0 if self.kernel_weights is None else self.kernel_weights.shape[0]

    @property
    def perception_names(self) -> tuple[str, ...]:
        """A name for each kernel of the perception, in ``w_in``'s order: the named kernels,
        then ``learned_1``, ``learned_2``, ... for the learnable ones."""
        learned = tuple(f"learned_{k + 1}" for k in range(self.learnable_kernels))
        return (*self.kernels, *learned)

    def learned_kernels(self) -> Float[Array, "learnable 3 3"]:
        """The learnable kernels as 3x3 arrays (``(0, 3, 3)`` without any)."""
        if self.kernel_weights is None:
            return jnp.zeros((0, 3, 3))
        return kernel_arrays(self.kernel_weights, self.learnable_kernel_symmetry)

    @property
    def stochastic(self) -> bool:
        """Whether updates are masked at random (``update_probability < 1``)."""
        return self.update_probability < 1.0

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments that fix this model's structure (JSON-serialisable).
        ``dimensions`` appears only when it is not 2 and the learnable kernels only when
        there are some, so the files of other models are as before."""
        lattice = {} if self.dimensions == 2 else {"dimensions": self.dimensions}
        learnable = (
            {
                "learnable_kernels": self.learnable_kernels,
                "learnable_kernel_symmetry": self.learnable_kernel_symmetry,
            }
            if self.learnable_kernels
            else {}
        )
        return {
            "observable_channels": self.observable_channels,
            "hidden_channels": self.hidden_channels,
            "kernels": list(self.kernels),
            **learnable,
            "activation": self.activation,
            "hidden_width": self.hidden_width,
            "update_probability": self.update_probability,
            "boundary": self.boundary,
            **lattice,
            "hidden_bias": self.b_in is not None,
            "scaling": None if self.scaling is None else self.scaling.to_json(),
            "conditions": None if self.conditions is None else self.conditions.to_json(),
        }

    def encode(self, physical: Float[Array | np.ndarray, "... data"]) -> Float[Array, "... data"]:
        """Data in physical units -> the model's units (identity without scaling): the
        observable channels, or all the data channels (conditions normalised)."""
        return self._convert(physical, encode=True)

    def decode(self, scaled: Float[Array | np.ndarray, "... data"]) -> Float[Array, "... data"]:
        """Observable (or data) channels in the model's units -> physical units."""
        return self._convert(scaled, encode=False)

    def _convert(self, values, *, encode: bool) -> Array:
        channels = np.shape(values)[-1] if np.ndim(values) else None
        if channels not in (self.observable_channels, self.data_channels):
            raise ValueError(
                f"data must have {self.observable_channels} observable channels"
                + (f" (or {self.data_channels} with the conditions)" if self.conditions else "")
                + f", got shape {tuple(np.shape(values))}"
            )
        # the arrays are converted as given (NumPy stays NumPy): an XLA division may round
        # differently from NumPy's, and the units of the data must not depend on the path
        observable = values[..., : self.observable_channels]
        if self.scaling is not None:
            scaling = self.scaling
            observable = scaling.encode(observable) if encode else scaling.decode(observable)
        if self.conditions is None or channels == self.observable_channels:
            return jnp.asarray(observable) if self.scaling is None else observable
        named = values[..., self.observable_channels :]
        named = self.conditions.encode(named) if encode else self.conditions.decode(named)
        return jnp.concatenate([jnp.asarray(observable), jnp.asarray(named)], axis=-1)

    def with_conditions(
        self,
        observable: Float[Array | np.ndarray, "*batch height width observable"],
        values: dict[str, float | np.ndarray] | None = None,
    ) -> np.ndarray:
        """Observable data (physical units) with the condition channels appended: the data
        channels this model reads. ``values`` maps each condition's name to a number or an
        ``(H, W)`` field; an unconditioned model takes none and returns the data unchanged.

        Raises:
            ValueError: an unknown or missing condition, or a field of the wrong shape.
        """
        from .conditions import condition_fields

        observable = np.asarray(observable, np.float32)
        if (
            observable.ndim < self.dimensions + 1
            or observable.shape[-1] != self.observable_channels
        ):
            raise ValueError(
                f"observable data must have shape (..., {self._lattice_axes}, "
                f"{self.observable_channels}), got {observable.shape}"
            )
        if self.conditions is None:
            if values:
                raise ValueError(
                    f"this model has no conditions, got a value for {sorted(values)[0]!r}"
                )
            return observable
        fields = condition_fields(self.condition_names, values or {}, observable.shape[:-1])
        return np.concatenate([observable, fields], axis=-1)

    def with_scaling(self, scaling: Scaling | None) -> NCA:
        """The same rule with another physical-unit map (e.g. the one fitted to its data)."""
        copy = _copy.copy(self)
        object.__setattr__(copy, "scaling", scaling)  # a static field: not reachable by tree_at
        return copy

    def perception(self, x: State) -> Float[Array, "*batch height width channels kernels"]:
        """The perception ``z = g * x`` (equations 1-2): every kernel of
        ``perception_names`` applied to every channel."""
        self._check_state(x)
        if self.kernel_weights is None:
            return perceive(x, self.kernels, self.boundary, self.dimensions)
        learned = perceive_learnable(
            x, self.kernel_weights, self.learnable_kernel_symmetry, self.boundary
        )
        if not self.kernels:
            return learned
        named = perceive(x, self.kernels, self.boundary, self.dimensions)
        return jnp.concatenate([named, learned], axis=-1)

    def increment(self, x: State) -> State:
        """The deterministic increment ``F(g * x)`` of equation (3), for every cell.

        Differentiable in reverse mode (``jax.grad``, ``jax.vjp``: training, adversarial
        search); its perception and, for a small rule on the CPU, its MLP have hand-written
        backward passes (``stnca.stencils``, ``stnca.cell_mlp``), so forward mode
        (``jax.jvp``) is not supported: take a Jacobian's columns with ``jax.vjp``, as
        ``stnca.analysis.inspect.step_symbol`` does."""
        z = self.perception(x)
        cells = z.shape[:-2]
        flat = cell_mlp(
            z.reshape(-1, z.shape[-2] * z.shape[-1]),
            self.w_in.reshape(self.w_in.shape[0], -1),
            self.b_in,
            self.w_out,
            self.b_out,
            ACTIVATIONS[self.activation],
        )
        out = flat.reshape(cells + flat.shape[-1:])
        if self.conditions is None:
            return out
        # conditions are never updated: their increment is zero
        observable, rest = (
            out[..., : self.observable_channels],
            out[..., self.observable_channels :],
        )
        fixed = jnp.zeros(out.shape[:-1] + (self.conditions.count,), out.dtype)
        return jnp.concatenate([observable, fixed, rest], axis=-1)

    def __call__(self, x: State, *, key: PRNGKeyArray | None = None) -> State:
        """One update ``x -> x + sigma * F(g * x)`` (equation 4).

        Args:
            x: state of shape ``(*batch, height, width, channels)``.
            key: PRNG key for the stochastic mask; required when ``update_probability < 1``,
                ignored otherwise.
        """
        dx = self.increment(x)
        if self.stochastic:
            mask = jax.random.bernoulli(self._check_key(key), self.update_probability, dx.shape)
            dx = jnp.where(mask, dx, 0.0)
        return x + dx

    def _step(self, x: State, key: PRNGKeyArray | None) -> State:
        return self(x, key=key)

    def advance(
        self,
        x: State,
        steps: int,
        *,
        key: PRNGKeyArray | None = None,
        checkpoint: bool = False,
    ) -> State:
        """Apply ``steps`` updates (``Phi^steps``) under ``jax.lax.scan``; return the final state.

        Args:
            x: initial state ``(*batch, height, width, channels)``.
            steps: number of updates.
            key: PRNG key (split per step); required for a stochastic NCA.
            checkpoint: rematerialise each step in the backward pass to save memory.
        """
        self._check_key(key)
        return _trajectory.advance(self._step, x, steps, key=key, checkpoint=checkpoint)

    def rollout(
        self,
        x: State,
        steps: int,
        *,
        every: int = 1,
        key: PRNGKeyArray | None = None,
        checkpoint: bool = False,
    ) -> Float[Array, "*batch frames height width channels"]:
        """Run ``steps`` updates and return every ``every``-th state, frame 0 included.

        Returns:
            Array of shape ``(*batch, steps // every + 1, height, width, channels)``.
        """
        self._check_key(key)
        return _trajectory.trajectory(
            self._step, x, steps, every=every, key=key, checkpoint=checkpoint, dims=self.dimensions
        )

    def initial_state(self, data: Float[Array | np.ndarray, "*batch height width data"]) -> State:
        """Append zero hidden channels to data (model units), giving a full NCA state. The
        data are the observable channels, followed by the conditions for a conditioned model
        (``encode(with_conditions(...))``)."""
        if data.ndim < self.dimensions + 1 or data.shape[-1] != self.data_channels:
            named = f" and {len(self.condition_names)} condition" if self.conditions else ""
            raise ValueError(
                f"data must have shape (..., {self._lattice_axes}, {self.data_channels}) "
                f"({self.observable_channels} observable{named} channels), "
                f"got {tuple(data.shape)}"
            )
        zeros = jnp.zeros(data.shape[:-1] + (self.hidden_channels,), data.dtype)
        return jnp.concatenate([data, zeros], axis=-1)

    def observable(self, x: State) -> Float[Array, "*batch height width observable"]:
        """The observable channels of a state (or of data with condition channels)."""
        return x[..., : self.observable_channels]

    @property
    def _lattice_axes(self) -> str:
        return {1: "X", 2: "height, width", 3: "D, H, W"}[self.dimensions]

    def _check_state(self, x: State) -> None:
        if x.ndim < self.dimensions + 1 or x.shape[-1] != self.channels:
            raise ValueError(
                f"state must have shape (..., {self._lattice_axes}, {self.channels}), "
                f"got {tuple(x.shape)}"
            )

    def _check_key(self, key: PRNGKeyArray | None) -> PRNGKeyArray:
        """The key, refused when a stochastic NCA has none (a deterministic one ignores it)."""
        if self.stochastic and key is None:
            raise ValueError(
                "a stochastic NCA (update_probability < 1) needs a PRNG key: pass key=..."
            )
        return key  # type: ignore[return-value]  # None only where it is never used


def require_plane(model: NCA, what: str) -> NCA:
    """``model`` if its lattice is 2-D, else ``ValueError`` saying that ``what`` takes only
    2-D models (lines and volumes train, roll out and evaluate)."""
    if model.dimensions != 2:
        raise ValueError(
            f"{what} works on 2-D models; this one is {model.dimensions}-D (a model on a line "
            f"or in a volume trains, rolls out and evaluates)"
        )
    return model


@eqx.filter_jit
def observable_rollout(
    model: NCA,
    initial: Float[Array, "*batch height width data"],
    steps: int,
    every: int,
    key: PRNGKeyArray,
) -> Float[Array, "*batch frames height width observable"]:
    """Physical units in and out: the observable frames of a rollout of ``steps`` steps
    (every ``every``-th, frame 0 included) from ``initial`` data (the observable channels,
    then a conditioned model's conditions) whose hidden channels start at zero; ``key`` is
    ignored by a deterministic model."""
    state = model.initial_state(model.encode(initial))
    frames = model.rollout(state, steps, every=every, key=key if model.stochastic else None)
    return model.decode(model.observable(frames))
