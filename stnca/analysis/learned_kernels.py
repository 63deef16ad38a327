"""What a learned kernel is: the fixed stencil it is closest to, and its best reading as the
identity plus one stencil.

A learned 3x3 kernel ``g`` (``stnca.learnable_kernels``) is compared with each stencil ``s``
of ``stnca.stencils.KERNELS`` by the cosine ``<g, s> / (|g| |s|)`` over the nine weights:
scale is removed, and so is sign (the first layer can read ``-g`` as well as ``g``), so the
closest stencil is the one of largest ``|cosine|``, reported with its sign. Since the rule
reads a kernel beside the cell's own value (the identity), a kernel is also fitted by least
squares as ``a identity + b s`` for each other stencil ``s``: the fit's cosine (the share of
``g``'s length the two explain) and its coefficients. A forward-Euler diffusion step, for
example, is ``identity + D laplacian``. Last, ``g`` is fitted on all five stencils at once
(they are independent, so the fit is unique): exact for a D4-tied kernel, whose space the
identity, average and Laplacian span.

Identity and Laplacian are far from orthogonal as nine-vectors (cosine ``-3 / sqrt(10.25)``,
-0.94), so a kernel near the one has a large cosine with the other too: the fits say more
than the single cosines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import NCA
from ..stencils import KERNELS


def _unit(kernel: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(kernel)
    return kernel / norm if norm > 0 else kernel


@dataclass(frozen=True)
class KernelReading:
    """What ``read_kernel`` finds for one learned kernel."""

    name: str
    kernel: np.ndarray  # (3, 3)
    cosines: dict[str, float]  # stencil -> signed cosine
    closest: str  # the stencil of largest |cosine|
    pairs: dict[str, float]  # "identity+s" -> cosine of the best a identity + b s
    closest_pair: str
    coefficients: tuple[float, float]  # a and b of the closest pair
    stencil_fit: dict[str, float]  # the least-squares coefficients on all stencils
    stencil_fit_cosine: float  # the share of the kernel's length that fit explains

    @property
    def closest_cosine(self) -> float:
        return self.cosines[self.closest]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kernel": self.kernel.tolist(),
            "cosine": self.cosines,
            "closest": self.closest,
            "closest_cosine": self.closest_cosine,
            "identity_plus": self.pairs,
            "closest_pair": self.closest_pair,
            "closest_pair_coefficients": list(self.coefficients),
            "stencil_fit": self.stencil_fit,
            "stencil_fit_cosine": self.stencil_fit_cosine,
        }

    def describe(self) -> str:
        """One line: the closest stencil and the closest identity + stencil fit."""
        a, b = self.coefficients
        other = self.closest_pair.split("+")[1]
        return (
            f"{self.name}: closest stencil {self.closest} (cosine {self.closest_cosine:+.3f}); "
            f"{a:.3g} identity {b:+.3g} {other} (cosine {self.pairs[self.closest_pair]:.3f})"
        )


def read_kernel(kernel: np.ndarray, name: str = "kernel") -> KernelReading:
    """Compare one 3x3 ``kernel`` with the fixed stencils (module docstring). A zero kernel
    has cosine 0 with everything (its closest stencil is then the first, ``identity``)."""
    kernel = np.asarray(kernel, np.float64)
    if kernel.shape != (3, 3):
        raise ValueError(f"kernel must be 3x3, got shape {kernel.shape}")
    unit = _unit(kernel)
    cosines = {
        s: float(np.sum(unit * _unit(np.asarray(k, np.float64)))) for s, k in KERNELS.items()
    }
    closest = max(cosines, key=lambda s: abs(cosines[s]))
    pairs, fits = {}, {}
    for stencil in KERNELS:
        if stencil == "identity":
            continue
        coefficients, pairs[f"identity+{stencil}"] = _fit(kernel, ("identity", stencil))
        fits[f"identity+{stencil}"] = (coefficients[0], coefficients[1])
    closest_pair = max(pairs, key=lambda p: pairs[p])
    everything, explained = _fit(kernel, tuple(KERNELS))
    return KernelReading(
        name=name,
        kernel=kernel,
        cosines=cosines,
        closest=closest,
        pairs=pairs,
        closest_pair=closest_pair,
        coefficients=fits[closest_pair],
        stencil_fit=dict(zip(KERNELS, everything, strict=True)),
        stencil_fit_cosine=explained,
    )


def _fit(kernel: np.ndarray, names: tuple[str, ...]) -> tuple[list[float], float]:
    """Least-squares coefficients of ``kernel`` on the stencils ``names``, and the cosine
    between the kernel and the fit (1: exact; 0 for a zero kernel)."""
    basis = np.stack([np.asarray(KERNELS[n], np.float64).ravel() for n in names], axis=1)
    coefficients, *_ = np.linalg.lstsq(basis, kernel.ravel(), rcond=None)
    norm = np.linalg.norm(kernel)
    explained = float(np.linalg.norm(basis @ coefficients) / norm) if norm > 0 else 0.0
    return [float(c) for c in coefficients], explained


def read_learned_kernels(model: NCA) -> tuple[KernelReading, ...]:
    """``read_kernel`` for each learnable kernel of ``model`` (none without)."""
    names = model.perception_names[len(model.kernels) :]
    kernels = np.asarray(model.learned_kernels(), np.float64)
    return tuple(read_kernel(k, name) for name, k in zip(names, kernels, strict=True))
