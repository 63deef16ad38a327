"""What every system of the zoo is: a frozen dataclass of its documented parameters, each
with a range that ``__post_init__`` checks, and the knowledge to build its solver.

A system's fields are its physical parameters followed by three numerical ones shared by
all: ``dx`` (lattice spacing: the domain is ``size * dx`` long on every axis, periodic),
``dt`` (time between two steps of a simulation) and ``substeps`` (solver steps of
``dt / substeps`` per step, for accuracy and stability).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

from jaxtyping import Array, Float, PRNGKeyArray

DIMENSIONS = (1, 2, 3)
"""The spatial dimensions every system is simulated in."""


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of a parameter: ``low`` to ``high`` (``None``: unbounded), each end
    open or closed; ``integer`` parameters must be whole numbers."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    integer: bool = False

    def check(self, value: Any, name: str) -> float | int:
        """``value`` as a float (an int for ``integer``), or ``ValueError`` naming ``name``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if self.integer and value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        low_bad = self.low is not None and (
            value <= self.low if self.open_low else value < self.low
        )
        high_bad = self.high is not None and (
            value >= self.high if self.open_high else value > self.high
        )
        if low_bad or high_bad:
            raise ValueError(f"{name} must be {self}, got {value!r}")
        return int(value) if self.integer else float(value)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.open_high else '<='} {self.high:g}"
        return "finite"


POSITIVE = Range(0.0, open_low=True)
NON_NEGATIVE = Range(0.0)
FINITE = Range()
SUBSTEPS = Range(1, 1000, integer=True)


def parameter(default: float, doc: str, allowed: Range = FINITE) -> Any:
    """A dataclass field for a system parameter: its default, one-line meaning and range."""
    return dataclasses.field(default=default, metadata={"doc": doc, "range": allowed})


def spacing_field(default: float) -> Any:
    """The field ``dx``: lattice spacing, the domain being ``size * dx`` long per axis."""
    return parameter(default, "lattice spacing (the domain is size * dx long per axis)", POSITIVE)


def time_step_field(default: float) -> Any:
    """The field ``dt``: time between two steps of a simulation."""
    return parameter(default, "time between two steps of a simulation", POSITIVE)


def substeps_field(default: int) -> Any:
    """The field ``substeps``: solver steps of ``dt / substeps`` per step."""
    return parameter(default, "solver steps of dt / substeps per step", SUBSTEPS)


@dataclasses.dataclass(frozen=True)
class System:
    """Base of the zoo's systems; subclasses are frozen dataclasses of their parameters."""

    name: ClassVar[str]
    """Registry name (``gray_scott``)."""
    title: ClassVar[str]
    """Name for people (``Gray-Scott``)."""
    channels: ClassVar[tuple[str, ...]]
    """The state's channels, in order (channel-last)."""
    equations: ClassVar[str]
    """The equations, in plain text."""
    pattern: ClassVar[str]
    """What the defaults form."""
    source: ClassVar[str]
    """Where the default parameters come from."""
    steps: ClassVar[int]
    """Default number of steps of a simulation."""
    every: ClassVar[int]
    """Default number of steps between saved frames."""
    initial_condition: ClassVar[str]
    """Default family of initial conditions (``stnca.data.systems.initial``)."""
    noise_amplitude: ClassVar[float] = 0.01
    """Half-width of the uniform noise of the ``noise`` family about the homogeneous state."""
    blob_direction: ClassVar[tuple[float, ...]] = (1.0,)
    """What a ``blobs`` (or ``seeds``) field ``b`` in [0, 1] adds to the homogeneous state,
    per channel (one value per channel of the system)."""
    if TYPE_CHECKING:  # every subclass declares them, last (``spacing_field`` etc.)
        dx: float
        dt: float
        substeps: int

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = field.metadata["range"].check(getattr(self, field.name), field.name)
            object.__setattr__(self, field.name, value)

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The parameters' names, in order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def with_parameters(cls, values: dict[str, Any] | None = None) -> System:
        """The system with ``values`` (name -> value) replacing defaults; ``ValueError`` for a
        name it does not have or a value out of range, naming the parameter."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.parameter_names()))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: unknown parameter of {cls.name}; its parameters are "
                f"{', '.join(cls.parameter_names())}"
            )
        return cls(**values)

    def homogeneous(self) -> tuple[float, ...]:
        """The homogeneous steady state, one value per channel."""
        return (0.0,) * len(self.channels)

    def reaction(self, u: Float[Array, "channels ..."]) -> Float[Array, "channels ..."]:
        """The local (reaction) terms, channel-first: what the state would do without space."""
        raise NotImplementedError

    def _exponax_stepper(self, dims: int, size: int, dt: float):
        """The exponax stepper advancing ``dt`` on a periodic ``size ** dims`` lattice."""
        raise NotImplementedError

    def stepper(self, dims: int, size: int):
        """One step of ``dt``: ``substeps`` exponax ETDRK steps, channel-first states."""
        import exponax

        inner = self._exponax_stepper(dims, size, self.dt / self.substeps)
        return inner if self.substeps == 1 else exponax.RepeatedStepper(inner, self.substeps)

    def initial_state(
        self, family: str, dims: int, size: int, *, key: PRNGKeyArray
    ) -> Float[Array, "*space channels"]:
        """An initial condition of ``family`` (``stnca.data.systems.initial``)."""
        from .initial import draw

        return draw(self, family, dims, size, key=key)
