"""Two-species reaction-diffusion systems and a travelling front: Gray-Scott, Brusselator,
FitzHugh-Nagumo, Fisher-KPP.

Gray-Scott is exponax's own stepper; Brusselator, FitzHugh-Nagumo and Fisher-KPP are
``ReactionDiffusion`` steppers (exponax's ETDRK with our reaction terms).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

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
from ._stepper import ReactionDiffusion


@dataclasses.dataclass(frozen=True)
class GrayScott(System):
    """The paper's Gray-Scott equations (``stnca.data.gray_scott``), solved spectrally.

    The defaults are ``stnca.data.gray_scott.GrayScottParams`` (the paper's maze-forming
    values) on the same lattice (spacing 1, time step 1). exponax's ``GrayScott`` names them
    ``diffusivity_1 = diffusion_a``, ``diffusivity_2 = diffusion_b``, ``feed_rate = alpha``,
    ``kill_rate = gamma``; its equations are the paper's. It differs from the finite-
    difference reference only in the discretisation: the exact Laplacian instead of the
    9-point stencil, ETDRK2 instead of forward Euler.
    """

    name: ClassVar[str] = "gray_scott"
    title: ClassVar[str] = "Gray-Scott"
    channels: ClassVar[tuple[str, ...]] = ("A", "B")
    equations: ClassVar[str] = (
        "dA/dt = D_A lap A - A B^2 + alpha (1 - A); dB/dt = D_B lap B + A B^2 - (gamma + alpha) B"
    )
    pattern: ClassVar[str] = "mazes growing from blobs of B"
    source: ClassVar[str] = "the paper (Richardson et al.), as stnca.data.gray_scott"
    steps: ClassVar[int] = 4096
    every: ClassVar[int] = 32
    initial_condition: ClassVar[str] = "blobs"
    blob_direction: ClassVar[tuple[float, ...]] = (-1.0, 1.0)

    diffusion_a: float = parameter(0.1, "diffusion constant D_A of A", NON_NEGATIVE)
    diffusion_b: float = parameter(0.05, "diffusion constant D_B of B", NON_NEGATIVE)
    alpha: float = parameter(0.06230, "feed rate alpha of A towards 1", Range(0.0, 1.0))
    gamma: float = parameter(0.06268, "extra decay rate gamma of B", Range(0.0, 1.0))
    dx: float = spacing_field(1.0)
    dt: float = time_step_field(1.0)
    substeps: int = substeps_field(1)

    def homogeneous(self) -> tuple[float, ...]:
        return (1.0, 0.0)

    def reaction(self, u):
        a, b = u[0], u[1]
        return jnp.stack(
            [-a * b * b + self.alpha * (1 - a), a * b * b - (self.gamma + self.alpha) * b]
        )

    def _exponax_stepper(self, dims, size, dt):
        import exponax

        return exponax.stepper.reaction.GrayScott(
            dims,
            size * self.dx,
            size,
            dt,
            diffusivity_1=self.diffusion_a,
            diffusivity_2=self.diffusion_b,
            feed_rate=self.alpha,
            kill_rate=self.gamma,
            dealiasing_fraction=1.0,  # as the finite-difference reference: no filter
        )


@dataclasses.dataclass(frozen=True)
class Brusselator(System):
    """The Brusselator, Turing's textbook reaction: spots or stripes about ``(a, b/a)``."""

    name: ClassVar[str] = "brusselator"
    title: ClassVar[str] = "Brusselator"
    channels: ClassVar[tuple[str, ...]] = ("u", "v")
    equations: ClassVar[str] = (
        "du/dt = D_u lap u + a - (b + 1) u + u^2 v; dv/dt = D_v lap v + b u - u^2 v"
    )
    pattern: ClassVar[str] = "Turing stripes (a labyrinth) and spots, wavelength about 7 cells"
    source: ClassVar[str] = (
        "linear stability: b = 7.5 lies above the Turing threshold (1 + a sqrt(D_u/D_v))^2 = "
        "6.71 and below the Hopf one 1 + a^2 = 21.25; a = 4.5, D_u = 2, D_v = 16 are the "
        "values of the Brusselator studies after Pena & Perez-Garcia, Phys. Rev. E 64, "
        "056213 (2001)"
    )
    steps: ClassVar[int] = 512
    every: ClassVar[int] = 4
    initial_condition: ClassVar[str] = "noise"

    a: float = parameter(4.5, "feed a (the steady state is u = a, v = b / a)", POSITIVE)
    b: float = parameter(7.5, "conversion rate b", POSITIVE)
    diffusion_u: float = parameter(2.0, "diffusion constant D_u of u", NON_NEGATIVE)
    diffusion_v: float = parameter(16.0, "diffusion constant D_v of v", NON_NEGATIVE)
    dx: float = spacing_field(1.0)
    dt: float = time_step_field(0.25)
    substeps: int = substeps_field(10)

    noise_amplitude: ClassVar[float] = 0.05
    blob_direction: ClassVar[tuple[float, ...]] = (1.0, 0.0)  # the activator u raised

    def homogeneous(self) -> tuple[float, ...]:
        return (self.a, self.b / self.a)

    def reaction(self, u):
        x, y = u[0], u[1]
        return jnp.stack([self.a - (self.b + 1) * x + x * x * y, self.b * x - x * x * y])

    def _exponax_stepper(self, dims, size, dt):
        return ReactionDiffusion(
            dims,
            size * self.dx,
            size,
            dt,
            diffusivities=(self.diffusion_u, self.diffusion_v),
            reaction=self.reaction,
        )


@dataclasses.dataclass(frozen=True)
class FitzHughNagumo(System):
    """FitzHugh-Nagumo with an inhibitor that diffuses faster: Turing labyrinths."""

    name: ClassVar[str] = "fitzhugh_nagumo"
    title: ClassVar[str] = "FitzHugh-Nagumo"
    channels: ClassVar[tuple[str, ...]] = ("u", "v")
    equations: ClassVar[str] = "du/dt = a lap u + u - u^3 - v + k; tau dv/dt = b lap v + u - v"
    pattern: ClassVar[str] = "Turing labyrinth of stripes and spots (wavelength about 8 cells)"
    source: ClassVar[str] = (
        "Rossant, IPython Interactive Computing and Visualization Cookbook, recipe 12.4: "
        "a = 2.8e-4, b = 5e-3, tau = 0.1, k = -0.005 on a lattice of spacing 0.02"
    )
    steps: ClassVar[int] = 1024
    every: ClassVar[int] = 8
    initial_condition: ClassVar[str] = "noise"
    noise_amplitude: ClassVar[float] = 0.05
    blob_direction: ClassVar[tuple[float, ...]] = (1.0, 0.0)  # the activator u raised

    diffusion_u: float = parameter(2.8e-4, "diffusion constant a of u", NON_NEGATIVE)
    diffusion_v: float = parameter(5e-3, "diffusion constant b of v (before 1/tau)", NON_NEGATIVE)
    tau: float = parameter(0.1, "time scale tau of the inhibitor v", POSITIVE)
    k: float = parameter(-0.005, "excitation offset k", Range(-1.0, 1.0))
    dx: float = spacing_field(0.02)
    dt: float = time_step_field(0.02)
    substeps: int = substeps_field(2)

    def homogeneous(self) -> tuple[float, ...]:
        u = float(jnp.cbrt(self.k))  # v = u and u - u^3 - v + k = 0
        return (u, u)

    def reaction(self, u):
        x, y = u[0], u[1]
        return jnp.stack([x - x**3 - y + self.k, (x - y) / self.tau])

    def _exponax_stepper(self, dims, size, dt):
        return ReactionDiffusion(
            dims,
            size * self.dx,
            size,
            dt,
            diffusivities=(self.diffusion_u, self.diffusion_v / self.tau),
            reaction=self.reaction,
        )


@dataclasses.dataclass(frozen=True)
class FisherKPP(System):
    """Fisher-KPP: logistic growth that spreads in fronts of speed ``2 sqrt(D r)``.

    Solved as a ``ReactionDiffusion`` with the reaction ``r max(u, 0) (1 - u)`` rather than
    exponax's ``FisherKPP`` (whose linear part holds ``+ r u``): the two agree for
    ``u >= 0``, where the solutions of ``u0 >= 0`` stay, but in float32 the spectral
    solver's roundoff leaves values of about ``-1e-7`` near ``u = 0``, which exponax's form
    grows at rate ``r`` to minus infinity (a non-finite run after ``r t`` of about 20).
    Positive roundoff still grows at rate ``r`` (the state ``u = 0`` is unstable): after
    ``r t`` of about 15 empty regions ignite on their own.
    """

    name: ClassVar[str] = "fisher_kpp"
    title: ClassVar[str] = "Fisher-KPP"
    channels: ClassVar[tuple[str, ...]] = ("u",)
    equations: ClassVar[str] = "du/dt = D lap u + r u (1 - u)"
    pattern: ClassVar[str] = "fronts invading the empty state from a few seeds"
    source: ClassVar[str] = (
        "lattice units (exponax's FisherKPP has D = 0.01, r = 1 on a unit domain): D = 1 "
        "cell^2 per unit time, r = 0.25 (front speed 1 cell per unit time, front width "
        "about 2 cells)"
    )
    steps: ClassVar[int] = 256
    every: ClassVar[int] = 2
    initial_condition: ClassVar[str] = "seeds"

    diffusivity: float = parameter(1.0, "diffusion constant D", NON_NEGATIVE)
    reactivity: float = parameter(0.25, "growth rate r", POSITIVE)
    dx: float = spacing_field(1.0)
    dt: float = time_step_field(0.25)
    substeps: int = substeps_field(1)

    def reaction(self, u):
        return self.reactivity * jnp.maximum(u, 0.0) * (1 - u)

    def _exponax_stepper(self, dims, size, dt):
        return ReactionDiffusion(
            dims,
            size * self.dx,
            size,
            dt,
            diffusivities=(self.diffusivity,),
            reaction=self.reaction,
        )
