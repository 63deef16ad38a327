"""The Gray-Scott reaction-diffusion equations of the paper's section 3.1.

    dA/dt = D_A lap(A) - A B^2 + alpha (1 - A)
    dB/dt = D_B lap(B) + A B^2 - (gamma + alpha) B

solved by forward Euler with time step ``dt`` on a periodic lattice, with the paper's
9-point Laplacian (``stnca.stencils.KERNELS["laplacian"]``). A state is channel-last,
``(*batch, height, width, 2)`` with channel 0 = A and channel 1 = B.

The same scheme runs on 1-D and 3-D lattices (``dims=1`` or ``3``: states ``(*batch, X, 2)``
or ``(*batch, D, H, W, 2)``) with the Laplacian of ``stnca.stencils.kernels_for(dims)``
(``[1, -2, 1]`` and the 27-point one). The paper's parameters grow labyrinthine sheets
in 3-D; in 1-D they settle into stationary pulses (from enough B: noise or Fourier fields;
sparse small seeds die out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _trajectory
from .._validate import real
from ..stencils import apply_kernel


@dataclasses.dataclass(frozen=True)
class GrayScottParams:
    """Parameters of the Gray-Scott equations; defaults give the paper's maze-like patterns.

    Args:
        diffusion_a: diffusion constant ``D_A`` of species A (default 0.1).
        diffusion_b: diffusion constant ``D_B`` of species B (default 0.05).
        alpha: feed rate of A towards 1 (default 0.06230).
        gamma: extra decay rate of B, which dies at ``gamma + alpha`` (default 0.06268).
        dt: forward-Euler time step (default 1).
    """

    diffusion_a: float = 0.1
    diffusion_b: float = 0.05
    alpha: float = 0.06230
    gamma: float = 0.06268
    dt: float = 1.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = real(getattr(self, field.name), field.name)
            object.__setattr__(self, field.name, value)
        if self.dt <= 0:
            raise ValueError(f"dt must be > 0, got {self.dt}")
        for name in ("diffusion_a", "diffusion_b"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


State = Float[Array, "*batch height width 2"]
Initial = Float[Array | np.ndarray, "*batch height width 2"]


FIELD_PARAMETERS = ("diffusion_a", "diffusion_b", "alpha", "gamma")
"""The parameters that may vary in space (``fields=`` of ``step`` and ``simulate``)."""


def step(
    state: State,
    params: GrayScottParams = GrayScottParams(),
    fields: dict[str, Float[Array, "height width"]] | None = None,
    dims: int = 2,
) -> State:
    """One forward-Euler step of the Gray-Scott equations on a periodic lattice.

    ``fields`` replaces parameters by ``(height, width)`` arrays that vary in space (any of
    ``FIELD_PARAMETERS``), e.g. a gradient of the feed rate ``alpha`` across the lattice.
    ``dims``: the lattice's dimension (1, 2 or 3; default 2).
    """
    value = {name: getattr(params, name) for name in FIELD_PARAMETERS} | (fields or {})
    laplacian = apply_kernel(state, "laplacian", "periodic", dims)
    a, b = state[..., 0], state[..., 1]
    reaction = a * b * b
    alpha = value["alpha"]
    da = value["diffusion_a"] * laplacian[..., 0] - reaction + alpha * (1.0 - a)
    db = value["diffusion_b"] * laplacian[..., 1] + reaction - (value["gamma"] + alpha) * b
    return state + params.dt * jnp.stack([da, db], axis=-1)


def check_fields(fields, shape: tuple[int, ...], dims: int = 2) -> dict[str, Array]:
    """Parameter fields by name as float32 ``(height, width)`` arrays of the lattice's shape."""
    checked = {}
    lattice = tuple(shape[-1 - dims : -1])
    for name, field in (fields or {}).items():
        if name not in FIELD_PARAMETERS:
            raise ValueError(
                f"unknown Gray-Scott parameter {name!r}; fields may replace "
                f"{', '.join(FIELD_PARAMETERS)}"
            )
        field = jnp.asarray(field, jnp.float32)
        if field.shape != lattice:
            raise ValueError(
                f"the {name} field must have the lattice's shape {lattice}, got {field.shape}"
            )
        checked[name] = field
    return checked


def check_state(initial, dims: int = 2) -> None:
    """Raise ``ValueError`` unless ``initial`` is a ``(..., height, width, 2)`` array (``dims``
    lattice axes before the two channels)."""
    from ..stencils import kernels_for

    kernels_for(dims)  # refuses a dimension other than 1, 2 or 3
    shape = getattr(initial, "shape", None)
    axes = {1: "X", 2: "height, width", 3: "D, H, W"}[dims]
    if shape is None or len(shape) < dims + 1 or shape[-1] != 2:
        raise ValueError(
            f"a Gray-Scott state must have shape ({axes}, 2) or (batch, {axes}, 2)"
            f" holding (A, B), got shape {shape}"
        )
    lattice = tuple(shape[-1 - dims : -1])
    if min(lattice) < 3:
        sizes = "x".join(str(n) for n in lattice)
        raise ValueError(f"the lattice must be at least {'x'.join(['3'] * dims)}, got {sizes}")


@partial(jax.jit, static_argnames=("steps", "every", "params", "dims"))
def _simulate(initial, steps, every, params, fields, dims=2):
    return _trajectory.trajectory(
        lambda x, _: step(x, params, fields, dims), initial, steps, every=every, dims=dims
    )


def simulate(
    initial: Initial,
    steps: int,
    *,
    every: int = 1,
    params: GrayScottParams = GrayScottParams(),
    fields: dict[str, Float[Array | np.ndarray, "height width"]] | None = None,
    dims: int = 2,
) -> Float[Array, "*batch frames height width 2"]:
    """Integrate the Gray-Scott equations and return every ``every``-th frame, frame 0 included.

    Args:
        initial: initial (A, B), shape ``(height, width, 2)`` or ``(batch, height, width, 2)``.
        steps: number of Euler steps ``N``, a multiple of ``every``.
        every: keep one frame every ``every`` steps (default 1).
        params: equation parameters and time step (default: the paper's).
        fields: parameters that vary in space, by name (``FIELD_PARAMETERS``): ``(height,
            width)`` arrays that replace those of ``params``.
        dims: the lattice's dimension: 2 (default), 1 (``(X, 2)`` states) or 3
            (``(D, H, W, 2)``).

    Returns:
        Float32 frames of shape ``(*batch, steps // every + 1, height, width, 2)``.
    """
    check_state(initial, dims)
    _trajectory.check_steps(steps, every)
    initial = jnp.asarray(initial, jnp.float32)
    return _simulate(initial, steps, every, params, check_fields(fields, initial.shape, dims), dims)


@partial(jax.jit, static_argnames=("steps", "params", "dims"))
def _advance(state, steps, params, dims=2):
    return _trajectory.advance(lambda x, _: step(x, params, None, dims), state, steps)


CHUNK_CELL_UPDATES = 2**27
"""``frames`` advances at most this many cell-updates (about a second on a laptop core) per
compiled call, so that long frame intervals on large lattices still report progress."""


def frames(
    initial: Initial,
    steps: int,
    *,
    every: int = 1,
    params: GrayScottParams = GrayScottParams(),
    progress: Callable[[int], None] | None = None,
    dims: int = 2,
) -> Iterator[Float[Array, "*batch height width 2"]]:
    """The frames of ``simulate`` one at a time (frame 0 first), holding only the current
    state: for simulations whose frames do not fit in memory together, or that run long.

    The same Euler steps as ``simulate``, advanced in chunks of at most
    ``CHUNK_CELL_UPDATES`` cell-updates; ``progress(steps_done)`` is called after each chunk.
    """
    check_state(initial, dims)
    _trajectory.check_steps(steps, every)
    state = jnp.asarray(initial, jnp.float32)
    cells = state.size // 2
    chunk = max(1, min(every, CHUNK_CELL_UPDATES // cells))
    yield state
    done = 0
    for _ in range(steps // every):
        left = every
        while left:
            n = min(left, chunk)
            state = _advance(state, n, params, dims)
            left, done = left - n, done + n
            if progress is not None:
                state.block_until_ready()
                progress(done)
        yield state
