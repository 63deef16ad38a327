"""Read a trained rule: which kernel of which channel the first layer uses, how many
directions each layer uses, and how one step acts on small perturbations of the state the
system rests in, Fourier mode by Fourier mode, beside the PDE's; and which fixed stencil
each learnable kernel is closest to (``learned_kernels``).

The linearisation needs no formula for the rule. One step ``f`` on a periodic lattice is
translation invariant, so around a uniform state ``x0`` its Jacobian is a convolution:
the response of ``f`` to a one-cell perturbation of channel ``c`` (one ``jax.vjp`` row per
channel) is that convolution's kernel, and its discrete Fourier transform is the step's
*symbol* ``S(q)``, a channels x channels matrix per wavenumber ``q``: a perturbation
``exp(i q.r) e_c`` becomes ``exp(i q.r) S(q) e_c`` after one step (of the mean update, for
a stochastic rule). ``S(q)[c, c]`` is the growth factor of channel ``c`` on itself; the
eigenvalue of largest modulus says whether any mixture of channels grows at ``q``. The
same code applied to the Gray-Scott step at rest (A = 1, B = 0) gives
``1 + D_A L(q) - alpha`` and ``1 + D_B L(q) - (gamma + alpha)``, with ``L`` the symbol of
the 9-point Laplacian (``tests/test_inspect.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..model import NCA
from .learned_kernels import KernelReading, read_learned_kernels

ENERGY = 0.99
"""The share of a layer's squared singular values its effective rank keeps."""


def kernel_importance(model: NCA) -> np.ndarray:
    """``(channels, kernels)``: how strongly the first layer reads kernel ``k`` of channel
    ``c``: the root-sum-square over hidden units of ``w_in[h, c, k]``, each unit weighted by
    the size of its output weights ``|w_out[:, h]|`` (a unit nothing reads does not count)."""
    w_in = np.asarray(model.w_in, np.float64)  # (hidden, channels, kernels)
    gain = np.linalg.norm(np.asarray(model.w_out, np.float64), axis=0)  # (hidden,)
    return np.sqrt(np.einsum("hck,h->ck", w_in**2, gain**2))


def effective_rank(singular_values: np.ndarray, energy: float = ENERGY) -> int:
    """The fewest singular values whose squares hold ``energy`` of the total (0 if none)."""
    squares = np.asarray(singular_values, np.float64) ** 2
    total = squares.sum()
    if total == 0:
        return 0
    return int(np.searchsorted(np.cumsum(squares) / total, energy - 1e-12) + 1)


def layer_spectra(model: NCA) -> dict[str, np.ndarray]:
    """Singular values of the first layer (hidden x (channels x kernels)) and the second
    (updated channels x hidden), largest first."""
    w_in = np.asarray(model.w_in, np.float64)
    return {
        "w_in": np.linalg.svd(w_in.reshape(w_in.shape[0], -1), compute_uv=False),
        "w_out": np.linalg.svd(np.asarray(model.w_out, np.float64), compute_uv=False),
    }


def step_symbol(
    step: Callable[[jax.Array], jax.Array], rest: Sequence[float] | np.ndarray, size: int
) -> np.ndarray:
    """The symbol ``S`` of ``step``'s Jacobian at the uniform state ``rest`` on a periodic
    ``size`` x ``size`` lattice: ``(size, size, channels, channels)`` complex, indexed by
    the wavenumber ``(q_y, q_x) = 2 pi (i, j) / size`` and ``[out, in]``."""
    values = np.asarray(rest, np.float32)
    channels = values.shape[0]
    x0 = jnp.broadcast_to(jnp.asarray(values), (size, size, channels))
    # reverse mode (the NCA's backward passes are hand-written, forward mode is not
    # supported): row (0, 0, out) of the Jacobian is the response at cell (0, 0) to every
    # input cell, i.e. the impulse response at (0, 0) mirrored through the origin
    pullback = jax.jit(lambda cotangent: jax.vjp(step, x0)[1](cotangent)[0])

    def row(out):
        return np.asarray(pullback(jnp.zeros_like(x0).at[0, 0, out].set(1.0)), np.float64)

    rows = np.stack([row(o) for o in range(channels)], -2)  # (size, size, out, in)
    impulse = np.roll(rows[::-1, ::-1], 1, axis=(0, 1))  # index -i mod size
    return np.fft.fft2(impulse, axes=(0, 1))  # (size, size, out, in)


def laplacian_symbol(q_y: np.ndarray, q_x: np.ndarray) -> np.ndarray:
    """The symbol of the 9-point Laplacian ``stencils.KERNELS["laplacian"]``:
    ``-3 + cos q_x + cos q_y + cos q_x cos q_y``."""
    return -3 + np.cos(q_x) + np.cos(q_y) + np.cos(q_x) * np.cos(q_y)


@dataclass(frozen=True)
class Inspection:
    """What ``inspect_model`` reads from a rule (see the module's docstring)."""

    kernels: tuple[str, ...]
    channels: tuple[str, ...]
    observable: int  # the first ``observable`` channels are the data's
    importance: np.ndarray  # (channels, kernels)
    spectra: dict[str, np.ndarray]
    rest: np.ndarray  # (channels,) the state linearised around, the model's units
    rest_increment: float  # max |F(rest)|: 0 when the rest state is the rule's fixed point
    wavenumbers: np.ndarray  # (K,) q_x from 0 to pi, q_y = 0
    growth: np.ndarray  # (K, channels) S(q)[c, c], real part
    radius: np.ndarray  # (K,) largest |eigenvalue| of S(q)
    pde_growth: np.ndarray | None  # (K, observable) the PDE's S(q)[c, c] over as many steps
    learned: tuple[KernelReading, ...] = ()  # the learnable kernels, each beside the stencils

    def ranks(self) -> dict[str, int]:
        return {name: effective_rank(values) for name, values in self.spectra.items()}

    def to_json(self) -> dict:
        gap = None
        if self.pde_growth is not None:
            difference = np.abs(self.growth[:, : self.observable] - self.pde_growth)
            gap = {
                name: {"max": float(difference[:, c].max()), "mean": float(difference[:, c].mean())}
                for c, name in enumerate(self.channels[: self.observable])
            }
        learned = (
            {"learned_kernels": [reading.to_json() for reading in self.learned]}
            if self.learned
            else {}  # a model without learnable kernels: the report as before
        )
        return {
            "kernels": list(self.kernels),
            "channels": list(self.channels),
            "importance": self.importance.tolist(),
            "singular_values": {name: values.tolist() for name, values in self.spectra.items()},
            "effective_rank": {"energy": ENERGY, **self.ranks()},
            "rest": self.rest.tolist(),
            "rest_increment": self.rest_increment,
            "wavenumbers": self.wavenumbers.tolist(),
            "growth": self.growth.tolist(),
            "spectral_radius": self.radius.tolist(),
            "pde_growth": None if self.pde_growth is None else self.pde_growth.tolist(),
            "growth_gap": gap,
            **learned,
        }


def _axis_cut(symbol: np.ndarray) -> np.ndarray:
    """``S(q)`` along ``q_y = 0``, ``q_x`` from 0 to pi: ``(K, out, in)``."""
    return symbol[0, : symbol.shape[1] // 2 + 1]


def inspect_model(
    model: NCA,
    rest: Sequence[float] | np.ndarray,
    *,
    channel_names: Sequence[str] | None = None,
    pde_step: Callable[[jax.Array], jax.Array] | None = None,
    pde_steps: int = 1,
    size: int = 32,
) -> Inspection:
    """Read ``model``'s rule. ``rest``: the observable channels' values at rest, in physical
    units (the hidden channels rest at zero, where they start); ``pde_step``: one step of
    the PDE the data came from (on the observable channels, physical units), applied
    ``pde_steps`` times per NCA step, to compare growth factors; ``size``: the lattice side
    of the linearisation (its wavenumbers are ``2 pi j / size``)."""
    if model.conditions is not None:
        raise ValueError(
            f"model has conditions ({', '.join(model.condition_names)}): inspect reads "
            "unconditioned models"
        )
    physical = np.asarray(rest, np.float32).reshape(-1)
    if physical.shape[0] != model.observable_channels:
        raise ValueError(
            f"rest must give {model.observable_channels} values (one per observable channel), "
            f"got {physical.shape[0]}"
        )
    if not np.all(np.isfinite(physical)):
        raise ValueError("rest must be finite")
    if not 4 <= size <= 1024:  # the modes resolved; larger lattices add nothing but memory
        raise ValueError(f"size must be in [4, 1024], got {size}")
    names = list(channel_names or [f"channel {c}" for c in range(model.observable_channels)])
    names += [f"hidden {h + 1}" for h in range(model.hidden_channels)]
    state = np.concatenate(
        [np.asarray(model.encode(physical)), np.zeros(model.hidden_channels, np.float32)]
    )
    # the mean update: a stochastic rule updates each cell with probability 1 - p
    step = jax.jit(lambda x: x + model.update_probability * model.increment(x))
    symbol = _axis_cut(step_symbol(step, state, size))
    growth = np.real(np.einsum("kcc->kc", symbol))
    radius = np.abs(np.linalg.eigvals(symbol)).max(axis=-1)
    increment = model.increment(jnp.broadcast_to(jnp.asarray(state), (4, 4, state.shape[0])))
    pde_growth = None
    if pde_step is not None:

        def pde_steps_at_once(x):
            return jax.lax.fori_loop(0, pde_steps, lambda _, y: pde_step(y), x)

        # the NCA steps in its scaled units, the PDE in physical ones: the scaling is affine
        # per channel, which leaves the symbol's diagonal the same in either
        pde_symbol = _axis_cut(step_symbol(jax.jit(pde_steps_at_once), physical, size))
        pde_growth = np.real(np.einsum("kcc->kc", pde_symbol))
    return Inspection(
        kernels=model.perception_names,
        channels=tuple(names),
        observable=model.observable_channels,
        importance=kernel_importance(model),
        spectra=layer_spectra(model),
        rest=state,
        rest_increment=float(jnp.abs(increment).max()),
        wavenumbers=2 * np.pi * np.arange(size // 2 + 1) / size,
        growth=growth,
        radius=radius,
        pde_growth=pde_growth,
        learned=read_learned_kernels(model),
    )
