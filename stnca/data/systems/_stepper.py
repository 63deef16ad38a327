"""A reaction-diffusion stepper on exponax's ETDRK machinery, for the systems exponax lacks.

    du_c/dt = D_c lap(u_c) + R_c(u)

Diffusion is the linear part, integrated exactly in Fourier space; the reaction ``R`` is
the nonlinear part, evaluated pointwise in real space (pseudo-spectrally) by the
exponential Runge-Kutta scheme (exponax's ``ETDRK``, Cox & Matthews 2002).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import exponax
import jax.numpy as jnp
from exponax.nonlin_fun import BaseNonlinearFun
from jaxtyping import Array, Complex, Float

Reaction = Callable[[Float[Array, "channels ..."]], Float[Array, "channels ..."]]


class _ReactionFun(BaseNonlinearFun):
    """``R(u)``: to real space, the pointwise reaction, back to Fourier space."""

    reaction: Reaction = eqx.field(static=True)

    def __init__(self, dims: int, size: int, reaction: Reaction, dealiasing_fraction: float):
        super().__init__(dims, size, dealiasing_fraction=dealiasing_fraction)
        self.reaction = reaction

    def __call__(self, u_hat: Complex[Array, "channels ..."]) -> Complex[Array, "channels ..."]:
        return self.fft(self.reaction(self.ifft(u_hat)))


class ReactionDiffusion(exponax.BaseStepper):
    """An exponax stepper for ``du_c/dt = D_c lap(u_c) + R_c(u)`` on a periodic hypercube.

    Args:
        dims: spatial dimensions (1-3).
        extent: side ``L`` of the domain.
        size: cells per side.
        dt: time step.
        diffusivities: ``D_c``, one per channel.
        reaction: ``R``, channel-first ``(C, *space) -> (C, *space)``, pointwise.
        dealiasing_fraction: modes kept before the reaction is evaluated (exponax's
            convention; 1 keeps all but the Nyquist mode: pointwise reactions hold no
            derivatives, so aliasing only moves energy among the resolved modes).
    """

    diffusivities: tuple[float, ...]
    reaction: Reaction = eqx.field(static=True)
    dealiasing_fraction: float

    def __init__(
        self,
        dims: int,
        extent: float,
        size: int,
        dt: float,
        *,
        diffusivities: tuple[float, ...],
        reaction: Reaction,
        dealiasing_fraction: float = 1.0,
    ):
        self.diffusivities = tuple(float(d) for d in diffusivities)
        self.reaction = reaction
        self.dealiasing_fraction = dealiasing_fraction
        super().__init__(
            num_spatial_dims=dims,
            domain_extent=extent,
            num_points=size,
            dt=dt,
            num_channels=len(self.diffusivities),
            order=2,
        )

    def _build_linear_operator(self, derivative_operator):
        laplace = exponax.spectral.build_laplace_operator(derivative_operator, order=2)
        shape = (len(self.diffusivities),) + (1,) * (laplace.ndim - 1)
        return jnp.asarray(self.diffusivities).reshape(shape) * laplace

    def _build_nonlinear_fun(self, derivative_operator):
        del derivative_operator
        return _ReactionFun(
            self.num_spatial_dims, self.num_points, self.reaction, self.dealiasing_fraction
        )
