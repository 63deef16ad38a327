"""One-field pattern formers: Allen-Cahn (phase ordering), Cahn-Hilliard (phase separation
that conserves the mean), Swift-Hohenberg (a preferred wavelength). All three are exponax's
own steppers.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ._base import (
    NON_NEGATIVE,
    POSITIVE,
    Range,
    System,
    parameter,
    spacing_field,
    substeps_field,
    time_step_field,
)


@dataclasses.dataclass(frozen=True)
class AllenCahn(System):
    """Allen-Cahn: the two phases ``u = +-1`` separate and their domains coarsen."""

    name: ClassVar[str] = "allen_cahn"
    title: ClassVar[str] = "Allen-Cahn"
    channels: ClassVar[tuple[str, ...]] = ("u",)
    equations: ClassVar[str] = "du/dt = nu lap u + u - u^3"
    pattern: ClassVar[str] = "domains of u = +-1 with sharp walls, coarsening"
    source: ClassVar[str] = (
        "exponax's AllenCahn (c1 = 1, c3 = -1) in lattice units: nu = 1 gives walls "
        "sqrt(2 nu) = 1.4 cells thick (tanh profile)"
    )
    steps: ClassVar[int] = 400
    every: ClassVar[int] = 2
    initial_condition: ClassVar[str] = "noise"
    noise_amplitude: ClassVar[float] = 0.1

    diffusivity: float = parameter(1.0, "diffusion constant nu (squared wall width)", POSITIVE)
    dx: float = spacing_field(1.0)
    dt: float = time_step_field(0.1)
    substeps: int = substeps_field(1)

    def reaction(self, u):
        return u - u**3

    def _exponax_stepper(self, dims, size, dt):
        import exponax

        return exponax.stepper.reaction.AllenCahn(
            dims,
            size * self.dx,
            size,
            dt,
            diffusivity=self.diffusivity,
            first_order_coefficient=1.0,
            third_order_coefficient=-1.0,
            # the reaction is pointwise: exponax's default filter (1/2) would evaluate it on
            # a smoothed u and ring about walls 1-2 cells thick
            dealiasing_fraction=1.0,
        )


@dataclasses.dataclass(frozen=True)
class CahnHilliard(System):
    """Cahn-Hilliard: spinodal decomposition into ``u = +-1``; the mean of ``u`` is conserved."""

    name: ClassVar[str] = "cahn_hilliard"
    title: ClassVar[str] = "Cahn-Hilliard"
    channels: ClassVar[tuple[str, ...]] = ("u",)
    equations: ClassVar[str] = "du/dt = M lap(u^3 - u - gamma lap u)"
    pattern: ClassVar[str] = "a labyrinth of the two phases (spinodal decomposition), coarsening"
    source: ClassVar[str] = (
        "exponax's CahnHilliard (c1 = -1, c3 = 1) in lattice units: gamma = 1 gives the "
        "fastest-growing wavelength 2 pi sqrt(2 gamma) = 8.9 cells"
    )
    steps: ClassVar[int] = 400
    every: ClassVar[int] = 2
    initial_condition: ClassVar[str] = "noise"
    noise_amplitude: ClassVar[float] = 0.1

    mobility: float = parameter(1.0, "mobility M", POSITIVE)
    gamma: float = parameter(1.0, "interface energy gamma (squared wall width)", POSITIVE)
    dx: float = spacing_field(1.0)
    dt: float = time_step_field(1.0)
    substeps: int = substeps_field(20)

    def _exponax_stepper(self, dims, size, dt):
        import exponax

        return exponax.stepper.reaction.CahnHilliard(
            dims,
            size * self.dx,
            size,
            dt,
            diffusivity=self.mobility,
            gamma=self.gamma,
            first_order_coefficient=-1.0,
            third_order_coefficient=1.0,
        )


@dataclasses.dataclass(frozen=True)
class SwiftHohenberg(System):
    """Swift-Hohenberg: a band of unstable wavenumbers about ``q``; hexagons or stripes."""

    name: ClassVar[str] = "swift_hohenberg"
    title: ClassVar[str] = "Swift-Hohenberg"
    channels: ClassVar[tuple[str, ...]] = ("u",)
    equations: ClassVar[str] = "du/dt = r u - (q^2 + lap)^2 u + g u^2 - u^3"
    pattern: ClassVar[str] = (
        "stripes (a labyrinth) of wavelength 2 pi / q = 8 cells; hexagonal spots nearer onset"
    )
    source: ClassVar[str] = (
        "exponax's SwiftHohenberg defaults (r = 0.7, critical number q^2 = 1, g(u) = u^2 - "
        "u^3) on a lattice of spacing pi / 4"
    )
    steps: ClassVar[int] = 400
    every: ClassVar[int] = 2
    initial_condition: ClassVar[str] = "noise"
    noise_amplitude: ClassVar[float] = 0.1

    r: float = parameter(0.7, "control parameter r (distance above onset)", Range(-10.0, 10.0))
    q: float = parameter(1.0, "critical wavenumber q", POSITIVE)
    g: float = parameter(1.0, "quadratic coefficient g (0: stripes only)", NON_NEGATIVE)
    dx: float = spacing_field(0.7853981633974483)
    dt: float = time_step_field(0.5)
    substeps: int = substeps_field(2)

    def reaction(self, u):
        return self.g * u**2 - u**3

    def _exponax_stepper(self, dims, size, dt):
        import exponax

        return exponax.stepper.reaction.SwiftHohenberg(
            dims,
            size * self.dx,
            size,
            dt,
            reactivity=self.r,
            critical_number=self.q**2,
            polynomial_coefficients=(0.0, 0.0, self.g, -1.0),
        )
