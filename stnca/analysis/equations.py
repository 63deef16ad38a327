"""Equations as values: candidate terms, their names, and forward-Euler simulation.

An equation maps each observable channel to its terms and their coefficients, per unit
time (the ``"channels"`` of ``equation.json``, see ``stnca.analysis.extract``)::

    {"A": {"lap(A)": 0.1, "A*B^2": -1.0, "1": 0.0623, "A": -0.0623}, "B": {...}}

reads ``dA/dt = 0.1 lap(A) - A B^2 + 0.0623 - 0.0623 A``. The channels' order is the
order of the state's channels. A term is the constant ``"1"`` or a product of factors
joined by ``*``, each a channel (``A``), a stencil derivative of one (``lap(A)``,
``dx(A)``, ``dy(A)``), either raised to a power (``B^2``, ``dx(A)^2``). The derivatives
are the paper's 3x3 kernels (``stnca.stencils.KERNELS``), applied with the lattice's
boundary: ``lap`` the 9-point Laplacian (the one the Gray-Scott simulator uses), ``dx``
the kernel ``gradient_x`` and ``dy`` the kernel ``gradient_y`` (Sobel kernels divided by 8;
``gradient_x`` differentiates along the rows with a minus sign, ``-d/di``, and
``gradient_y`` along the columns, ``-d/dj``). Names are canonical: plain channels first,
in channel order, then derivatives (``lap``, ``dx``, ``dy``), so ``B^2*A`` is ``A*B^2``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _trajectory
from ..boundaries import check_boundary
from ..data.gray_scott import GrayScottParams
from ..stencils import apply_kernel

OPERATORS: dict[str, str] = {"lap": "laplacian", "dx": "gradient_x", "dy": "gradient_y"}
"""Derivative name in a term -> the kernel of ``stnca.stencils.KERNELS`` it applies."""

GRAY_SCOTT_CHANNELS = ("A", "B")

Factor = tuple[str | None, int, int]
"""``(operator or None, channel index, power)``."""

_FACTOR = re.compile(
    r"^(?:(?P<op>[a-z]+)\((?P<inner>[^()]+)\)|(?P<name>[^()^*]+))(?:\^(?P<power>\d+))?$"
)


@dataclasses.dataclass(frozen=True)
class Term:
    """A product of factors ``(operator or None, channel, power)`` in canonical order; no
    factors is the constant ``1``. Hashable, so a tuple of terms can be a jit static."""

    factors: tuple[Factor, ...] = ()

    def name(self, channels: Sequence[str]) -> str:
        """The canonical name, e.g. ``A*B^2``, ``lap(A)``, ``1``."""
        if not self.factors:
            return "1"
        parts = []
        for op, channel, power in self.factors:
            base = channels[channel] if op is None else f"{op}({channels[channel]})"
            parts.append(base if power == 1 else f"{base}^{power}")
        return "*".join(parts)


def _canonical(factors: Sequence[Factor]) -> Term:
    powers: dict[tuple[str | None, int], int] = {}
    for op, channel, power in factors:
        powers[(op, channel)] = powers.get((op, channel), 0) + power
    order = [None, *OPERATORS]
    keys = sorted(powers, key=lambda k: (order.index(k[0]), k[1]))
    return Term(tuple((op, channel, powers[(op, channel)]) for op, channel in keys))


def channel_names(count: int, gray_scott: bool = False) -> tuple[str, ...]:
    """Channel names: ``A``, ``B`` for Gray-Scott, else ``c0``, ``c1``, ..."""
    if gray_scott:
        if count != 2:
            raise ValueError(f"Gray-Scott data have 2 channels (A, B), got {count}")
        return GRAY_SCOTT_CHANNELS
    return tuple(f"c{i}" for i in range(count))


def parse_term(name: str, channels: Sequence[str]) -> Term:
    """The term a name stands for (see the module docstring for the grammar).

    Raises:
        ValueError: a factor that is not a channel, a known derivative of one, or a power.
    """
    text = name.replace(" ", "")
    if text == "1":
        return Term()
    factors: list[Factor] = []
    for part in text.split("*"):
        match = _FACTOR.match(part)
        inner = match and (match["inner"] or match["name"])
        op = match["op"] if match else None
        if not match or inner not in channels or (op is not None and op not in OPERATORS):
            raise ValueError(
                f"cannot read the term {name!r}: {part!r} is not a channel ({', '.join(channels)}),"
                f" a derivative {'/'.join(f'{o}(X)' for o in OPERATORS)} of one, or a power X^k"
            )
        power = int(match["power"] or 1)
        if power < 1:
            raise ValueError(f"cannot read the term {name!r}: powers must be >= 1")
        factors.append((op, list(channels).index(str(inner)), power))
    return _canonical(factors)


def library(
    channels: Sequence[str], degree: int = 3, operators: Sequence[str] = tuple(OPERATORS)
) -> list[str]:
    """Candidate term names: every monomial of the channels up to ``degree`` (the constant
    ``1`` included), then each derivative in ``operators`` of each channel."""
    unknown = [op for op in operators if op not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown derivative(s) {unknown}; choose from {list(OPERATORS)}")
    terms = []
    for d in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(len(channels)), d):
            terms.append(_canonical([(None, c, 1) for c in combo]).name(channels))
    terms += [f"{op}({name})" for op in operators for name in channels]
    return terms


def evaluate_terms(
    terms: Sequence[Term], state: Float[Array, "*batch height width channels"], boundary: str
) -> Float[Array, "*batch height width terms"]:
    """The value of every term in every cell of ``state``, stacked on a new last axis."""
    used = {op for term in terms for op, _, _ in term.factors if op is not None}
    derived = {op: apply_kernel(state, OPERATORS[op], boundary) for op in sorted(used)}
    columns = []
    for term in terms:
        value = jnp.ones(state.shape[:-1], state.dtype)
        for op, channel, power in term.factors:
            field = (state if op is None else derived[op])[..., channel]
            value = value * field**power
        columns.append(value)
    if not columns:  # an equation with no terms: nothing changes
        return jnp.zeros(state.shape[:-1] + (0,), state.dtype)
    return jnp.stack(columns, axis=-1)


def read_equation(
    equation: Mapping[str, Any],
) -> tuple[tuple[str, ...], tuple[Term, ...], np.ndarray]:
    """Channel names, the terms used and the coefficient matrix ``(terms, channels)`` of an
    equation (the dict of ``equation.json``, or just its ``"channels"``)."""
    table = equation.get("channels", equation)
    if not isinstance(table, Mapping) or not table:
        raise ValueError("an equation needs a non-empty 'channels' mapping channel -> terms")
    channels = tuple(table)
    terms: dict[Term, int] = {}
    entries = []
    for column, channel in enumerate(channels):
        if not isinstance(table[channel], Mapping):
            raise ValueError(f"the terms of channel {channel!r} must map term -> coefficient")
        for name, value in table[channel].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"the coefficient of {name!r} in {channel!r} must be a number")
            term = parse_term(name, channels)
            entries.append((terms.setdefault(term, len(terms)), column, float(value)))
    coefficients = np.zeros((len(terms), len(channels)))
    for row, column, value in entries:
        coefficients[row, column] += value
    return channels, tuple(terms), coefficients


@functools.partial(jax.jit, static_argnames=("terms", "steps", "every", "boundary"))
def _simulate(terms, coefficients, initial, dt, steps, every, boundary):
    def step(state, _):
        rate = evaluate_terms(terms, state, boundary) @ coefficients
        return state + dt * rate

    return _trajectory.trajectory(step, initial, steps, every=every)


def simulate(
    equation: Mapping[str, Any],
    initial: Float[Array | np.ndarray, "*batch height width channels"],
    steps: int,
    *,
    dt: float,
    every: int = 1,
    boundary: str | None = None,
) -> Float[Array, "*batch frames height width channels"]:
    """Integrate an equation by forward Euler, ``x <- x + dt * rate(x)``, in float32.

    Args:
        equation: the dict of ``equation.json`` (or its ``"channels"``).
        initial: the initial state, channels in the equation's channel order.
        steps: number of Euler steps.
        dt: the Euler time step, in the equation's time unit.
        every: keep one frame every ``every`` steps (default 1).
        boundary: the lattice boundary (default: the equation's ``"boundary"``, else
            ``periodic``).

    Returns:
        Frames ``(*batch, steps // every + 1, height, width, channels)``, frame 0 included.
    """
    channels, terms, coefficients = read_equation(equation)
    boundary = check_boundary(boundary or equation.get("boundary", "periodic"))
    state = jnp.asarray(initial, jnp.float32)
    if state.ndim < 3 or state.shape[-1] != len(channels):
        raise ValueError(
            f"the initial state must have shape (..., height, width, {len(channels)}) for the "
            f"channels {', '.join(channels)}, got {tuple(state.shape)}"
        )
    _trajectory.check_steps(steps, every)
    rates = jnp.asarray(coefficients, jnp.float32)
    return _simulate(terms, rates, state, jnp.float32(dt), steps, every, boundary)


def gray_scott_equation(params: GrayScottParams | None = None) -> dict[str, Any]:
    """The Gray-Scott equations (``stnca.data.gray_scott``) in the form of ``equation.json``:
    ``dA/dt = D_A lap(A) - A B^2 + alpha - alpha A``,
    ``dB/dt = D_B lap(B) + A B^2 - (gamma + alpha) B``, per unit time (default: the
    paper's parameters)."""
    params = GrayScottParams() if params is None else params
    return {
        "channels": {
            "A": {
                "lap(A)": params.diffusion_a,
                "A*B^2": -1.0,
                "1": params.alpha,
                "A": -params.alpha,
            },
            "B": {"lap(B)": params.diffusion_b, "A*B^2": 1.0, "B": -(params.gamma + params.alpha)},
        },
        "dt": params.dt,
        "boundary": "periodic",
    }


def format_equation(equation: Mapping[str, Any], digits: int = 4) -> list[str]:
    """One line per channel, e.g. ``dA/dt = 0.1 lap(A) - 1 A*B^2 + 0.0623 - 0.0623 A``."""
    table = equation.get("channels", equation)
    lines = []
    for channel, terms in table.items():
        parts: list[str] = []
        for name, value in terms.items():
            size = f"{abs(value):.{digits}g}"
            text = size if name == "1" else f"{size} {name}"
            sign = "-" if value < 0 else "+"
            parts.append(("-" + text if sign == "-" else text) if not parts else f"{sign} {text}")
        lines.append(f"d{channel}/dt = {' '.join(parts) if parts else '0'}")
    return lines
