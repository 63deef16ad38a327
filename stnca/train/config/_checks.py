"""Small value checks shared by the config sections."""

from __future__ import annotations

from ..._validate import seed


def _positive(value, name):
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _seed(value, name):
    seed(value, name)


def _non_negative(value, name):
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_noise(noise: float) -> None:
    if not 0 <= noise <= 1:
        raise ValueError(f"data.noise (xi) must be in [0, 1], got {noise}")
