"""Data scaling: physical units <-> the units a model was trained in.

The authors' code scales training data to ``[0, 1]`` by min-max over the whole data set
(every trajectory, frame and channel together), so that a box constraint ``[0, 1]`` on the
state fits the data. A trained model keeps that map (``NCA.scaling``), so rollouts and
evaluations take and return physical units whatever the model was trained on.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from jaxtyping import Array, Float

SCALINGS = ("minmax", "none")
"""``[data] scale`` values: min-max to [0, 1] (the authors'), or the data as they are."""


@dataclasses.dataclass(frozen=True)
class Scaling:
    """An affine map per observable channel: ``model units = (physical - offset) / scale``.

    Hashable (tuples of floats), so it can be a static field of an ``eqx.Module``.
    """

    offset: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self):
        if len(self.offset) != len(self.scale) or not self.offset:
            raise ValueError(
                f"scaling needs one offset and one scale per channel, got {len(self.offset)} "
                f"offsets and {len(self.scale)} scales"
            )
        values = self.offset + self.scale
        if not all(isinstance(v, float) and math.isfinite(v) for v in values):
            raise ValueError(f"scaling offsets and scales must be finite floats, got {values}")
        if not all(s > 0 for s in self.scale):
            raise ValueError(f"scaling scales must be > 0, got {self.scale}")

    @property
    def channels(self) -> int:
        return len(self.offset)

    def _arrays(self, like) -> tuple[np.ndarray, np.ndarray]:
        shape = (1,) * (np.ndim(like) - 1) + (self.channels,)
        offset = np.asarray(self.offset, np.float32).reshape(shape)
        return offset, np.asarray(self.scale, np.float32).reshape(shape)

    def encode(
        self, physical: Float[Array | np.ndarray, "... channels"]
    ) -> Float[Array, "... channels"]:
        """Physical units -> model units."""
        offset, scale = self._arrays(physical)
        return (physical - offset) / scale

    def decode(
        self, scaled: Float[Array | np.ndarray, "... channels"]
    ) -> Float[Array, "... channels"]:
        """Model units -> physical units."""
        offset, scale = self._arrays(scaled)
        return scaled * scale + offset

    def to_json(self) -> dict[str, list[float]]:
        return {"offset": list(self.offset), "scale": list(self.scale)}

    @classmethod
    def from_json(cls, value: Any) -> Scaling:
        if not isinstance(value, dict) or set(value) != {"offset", "scale"}:
            raise ValueError(f"scaling must be {{'offset': [...], 'scale': [...]}}, got {value!r}")
        try:
            return cls(
                tuple(float(v) for v in value["offset"]), tuple(float(v) for v in value["scale"])
            )
        except TypeError:
            raise ValueError(f"scaling values must be lists of numbers, got {value!r}") from None


def fit_scaling(data: np.ndarray, mode: str) -> Scaling | None:
    """The scaling ``mode`` fitted to ``data`` (..., channels); ``None`` for ``"none"``.

    ``"minmax"`` uses one minimum and one maximum over the whole array, all channels
    together (as the authors do), so the species keep their relative sizes; a constant
    data set gets scale 1.
    """
    if mode not in SCALINGS:
        raise ValueError(f"scale must be one of {list(SCALINGS)}, got {mode!r}")
    if mode == "none":
        return None
    data = np.asarray(data, np.float64)
    low, high = float(data.min()), float(data.max())
    scale = high - low if high > low else 1.0
    channels = data.shape[-1]
    return Scaling((low,) * channels, (scale,) * channels)
