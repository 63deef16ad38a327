"""Conditions: named parameters a model reads but never updates (e.g. Gray-Scott's alpha, gamma).

A conditioned NCA (``NCA(..., conditions=Conditions(...))``) carries one extra input
channel per condition. Its state is laid out ``[observable | conditions | hidden]``; the
*data channels* ``observable + conditions`` are what the model reads from data, so a
trajectory for a conditioned model holds its condition values as trailing channels, a
constant field per trajectory (or a field that varies in space). The rule perceives those
channels like any other (so a condition varying in space is seen with its gradients), but
never updates them and never compares them with data.

Conditions are given in physical units (``alpha = 0.061``) and normalised inside the model
by ``(value - offset) / scale``, fitted on the training data so that the training values
span ``[0, 1]`` (the same convention as the min-max scaling of the data).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from jaxtyping import Array, Float

from .scaling import Scaling


def check_names(names: Sequence[str], what: str = "conditions") -> tuple[str, ...]:
    """Condition names: distinct identifiers (``alpha``, ``feed_rate``, ...)."""
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{what} must be names like 'alpha', got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} must not repeat a name, got {list(names)}")
    return names


@dataclasses.dataclass(frozen=True)
class Conditions:
    """The names of a model's conditions and their normalisation ``(value - offset) / scale``
    (one ``stnca.scaling.Scaling`` channel per name).

    Hashable (tuples), so it can be a static field of an ``eqx.Module``.
    """

    names: tuple[str, ...]
    offset: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self):
        object.__setattr__(self, "names", check_names(self.names))
        for field in ("offset", "scale"):  # tuples, so that it hashes as a static field
            object.__setattr__(self, field, tuple(getattr(self, field)))
        if not self.names or len(self.names) != len(self.offset):
            raise ValueError(
                f"conditions need one offset and one scale per name, got {len(self.names)} "
                f"names and {len(self.offset)} offsets"
            )
        try:  # the same rules as a scaling's: finite offsets, scales > 0
            Scaling(self.offset, self.scale)
        except ValueError as error:
            raise ValueError(f"conditions: {error}") from None

    @property
    def _affine(self) -> Scaling:
        return Scaling(self.offset, self.scale)

    @property
    def count(self) -> int:
        return len(self.names)

    def encode(self, physical: Float[Array | np.ndarray, "... k"]) -> Float[Array, "... k"]:
        """Condition values -> the normalised values the model reads."""
        return self._affine.encode(physical)

    def decode(self, normalised: Float[Array | np.ndarray, "... k"]) -> Float[Array, "... k"]:
        """Normalised values -> condition values."""
        return self._affine.decode(normalised)

    def to_json(self) -> dict[str, list]:
        return {"names": list(self.names), "offset": list(self.offset), "scale": list(self.scale)}

    @classmethod
    def from_json(cls, value: Any) -> Conditions:
        if not isinstance(value, dict) or set(value) != {"names", "offset", "scale"}:
            raise ValueError(
                f"conditions must be {{'names': [...], 'offset': [...], 'scale': [...]}}, "
                f"got {value!r}"
            )
        try:
            return cls(
                tuple(value["names"]),
                tuple(float(v) for v in value["offset"]),
                tuple(float(v) for v in value["scale"]),
            )
        except TypeError:
            raise ValueError(f"condition values must be lists, got {value!r}") from None


def fit_conditions(names: Sequence[str], values: np.ndarray) -> Conditions:
    """The normalisation that maps each condition's training values ``values`` (``..., K``,
    the trailing condition channels of the training data) onto ``[0, 1]``; a condition with
    one value everywhere is mapped to 0 with scale 1 (or ``|value|``)."""
    names = check_names(names)
    values = np.asarray(values, np.float64).reshape(-1, len(names))
    offsets, scales = [], []
    for low, high in zip(values.min(axis=0), values.max(axis=0), strict=True):
        offsets.append(float(low))
        scales.append(float(high - low) if high > low else float(abs(low)) or 1.0)
    return Conditions(names, tuple(offsets), tuple(scales))


def condition_fields(
    names: Sequence[str],
    given: Mapping[str, float | np.ndarray],
    shape: tuple[int, ...],
) -> np.ndarray:
    """The condition channels ``(*shape, K)`` (``shape`` = ``(..., H, W)``) for the values
    ``given`` by name: a number (the same everywhere) or an ``(H, W)`` field.

    Raises:
        ValueError: a name the model does not have, a missing one, or a field of the wrong
            shape.
    """
    unknown = sorted(set(given) - set(names))
    if unknown:
        known = ", ".join(names) if names else "none"
        raise ValueError(f"unknown condition {unknown[0]!r}; this model's conditions: {known}")
    missing = [name for name in names if name not in given]
    if missing:
        raise ValueError(
            f"missing a value for condition {missing[0]!r}: give every one of "
            f"{', '.join(names)} (e.g. {missing[0]}=0.06)"
        )
    channels = []
    for name in names:
        with np.errstate(over="ignore", invalid="ignore"):  # a value beyond float32: inf
            value = np.asarray(given[name], np.float32)
        if value.ndim == 0:
            value = np.full(shape[-2:], value, np.float32)
        if value.shape != tuple(shape[-2:]):
            raise ValueError(
                f"condition {name!r}: a field must have the lattice's shape "
                f"{tuple(shape[-2:])}, got {value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"condition {name!r} has non-finite values")
        channels.append(np.broadcast_to(value, shape))
    return np.stack(channels, axis=-1).astype(np.float32)


def parse_condition(text: str) -> tuple[str, float | np.ndarray]:
    """``NAME=VALUE`` (a number) or ``NAME=FIELD.npy`` (an ``(H, W)`` array) -> name, value."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name.isidentifier() or not value:
        raise ValueError(f"a condition must be NAME=VALUE or NAME=FIELD.npy, got {text!r}")
    if value.lower().endswith(".npy"):
        return name, load_field(value, name)
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"condition {name}={value}: not a number or a .npy field file") from None
    if not math.isfinite(number):
        raise ValueError(f"condition {name}={value}: must be finite")
    return name, number


def load_field(path: str | os.PathLike, name: str) -> np.ndarray:
    """A condition field: a 2-D ``.npy`` array ``(H, W)`` of finite numbers."""
    from .data.io import load_array

    field = load_array(path, f"condition {name!r} field")
    if field.ndim != 2 or not np.issubdtype(field.dtype, np.number):
        raise ValueError(
            f"condition {name!r}: {path} must hold a 2-D (H, W) array of numbers, "
            f"got {field.dtype} {field.shape}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # checked here, in words
        finite = np.isfinite(field) & (np.abs(field) <= np.finfo(np.float32).max)
    if not np.all(finite):
        raise ValueError(
            f"condition {name!r}: {path} holds values that are not finite float32 numbers "
            f"(NaN, infinite, or beyond +-3.4e38)"
        )
    return field.astype(np.float32)
