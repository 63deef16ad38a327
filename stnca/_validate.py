"""Small argument checks shared by the constructors, the config loader and the CLI."""

from __future__ import annotations

import math
import operator


def count(value, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum`` (and ``<= maximum``
    if given), else raise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be at most {maximum:_}, got {number:_}")
    return number


def real(value, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """Return ``value`` as a finite ``float`` in ``[low, high]``, else raise ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
    return number


def choice(value, name: str, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


SEED_LIMIT = 2**32
"""Seeds are ``0 <= seed < 2**32`` (what ``jax.random.key`` takes without wrapping)."""


def seed(value, name: str) -> int:
    """Return ``value`` if it is a valid seed (an integer in ``[0, 2**32)``), else raise."""
    try:
        number = count(value, name, -(2**63))
    except ValueError:
        raise ValueError(f"{name} must be an integer in [0, 2**32), got {value!r}") from None
    if not 0 <= number < SEED_LIMIT:
        raise ValueError(f"{name} must be in [0, 2**32), got {number}")
    return number
