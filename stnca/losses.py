"""Distances between a predicted state and data (the paper's section 2.2.1).

Every loss takes ``prediction`` and ``target`` of the same shape
``(*batch, height, width, channels)`` (observable channels only: the caller slices them)
and returns one value per batch element, shape ``batch``. All losses are differentiable
everywhere (square roots and moduli use the "double where" trick so that their gradient
at zero is finite), zero on identical inputs and finite on constant inputs. Every loss
accepts a keyword ``key``; only ``sliced_wasserstein`` uses it.

Sub-sampled losses (``subsampled``, the paper's suggestion for large lattices): each call
compares a random subset of the cells, each cell (or ``patch`` x ``patch`` block of cells)
kept with probability ``fraction`` and weighted ``1 / fraction``, so that for the losses
that are sums or means over cells the estimate is unbiased: its mean over keys is the full
loss (``mse``, ``l1``), or for ``euclidean`` the full loss's square (the sum of squared
differences); the square root makes the ``euclidean`` estimate itself biased low (see
``subsampled``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

Field = Float[Array, "*batch height width channels"]
Loss = Callable[..., Float[Array, "*batch"]]

_LATTICE = (-3, -2, -1)
_EPS = 1e-9


def _safe_sqrt(s: Array) -> Array:
    """``sqrt(s)`` for ``s >= 0`` with gradient 0 (not infinity) at ``s == 0``.

    A NaN stays NaN (``0 * s``), so a diverged prediction is never reported as a loss of 0.
    """
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, 1.0)), 0.0 * s)


def euclidean(prediction: Field, target: Field, *, key: PRNGKeyArray | None = None):
    """The paper's default: ``sqrt(sum_{i,j,c} (x - y)^2)`` over the lattice and channels."""
    del key
    return _safe_sqrt(jnp.sum((prediction - target) ** 2, axis=_LATTICE))


def mse(prediction: Field, target: Field, *, key: PRNGKeyArray | None = None):
    """Mean squared error over the lattice and channels."""
    del key
    return jnp.mean((prediction - target) ** 2, axis=_LATTICE)


def l1(prediction: Field, target: Field, *, key: PRNGKeyArray | None = None):
    """Mean absolute error over the lattice and channels."""
    del key
    return jnp.mean(jnp.abs(prediction - target), axis=_LATTICE)


def _probability_mass(x: Field) -> Field:
    """Normalise each channel of ``x`` over the lattice into a probability mass.

    Negative values carry no mass: they are clipped to zero. A small epsilon added to every
    cell keeps an all-zero (or all-negative) channel finite, as the uniform distribution.
    """
    mass = jnp.maximum(x, 0.0) + _EPS
    return mass / jnp.sum(mass, axis=(-3, -2), keepdims=True)


def _squared_hellinger(prediction: Field, target: Field) -> Array:
    """Per channel ``H^2 = 1/2 sum_{ij} (sqrt p - sqrt q)^2`` of the two probability masses.

    Written as a sum of squares (not ``1 - sum sqrt(p q)``) so that identical fields give
    exactly zero.
    """
    root_p = jnp.sqrt(_probability_mass(prediction))
    root_q = jnp.sqrt(_probability_mass(target))
    return jnp.clip(0.5 * jnp.sum((root_p - root_q) ** 2, axis=(-3, -2)), 0.0, 1.0)


def hellinger(prediction: Field, target: Field, *, key: PRNGKeyArray | None = None):
    """Hellinger distance between the fields as probability masses, averaged over channels.

    Each channel is normalised over the lattice into a probability mass: negative values are
    clipped to zero (they carry no mass) and a tiny epsilon per cell keeps an all-zero
    channel finite (it becomes uniform). Fields that differ by a positive factor are at
    distance zero. Values lie in ``[0, 1]``.
    """
    del key
    return jnp.mean(_safe_sqrt(_squared_hellinger(prediction, target)), axis=-1)


def bhattacharyya(prediction: Field, target: Field, *, key: PRNGKeyArray | None = None):
    """Bhattacharyya distance ``-log BC`` of the fields as probability masses, channel mean.

    ``BC = sum sqrt(p q) = 1 - H^2``; normalisation and negative values as in ``hellinger``.
    """
    del key
    coefficient = 1.0 - _squared_hellinger(prediction, target)
    return jnp.mean(-jnp.log(jnp.maximum(coefficient, _EPS)), axis=-1)


def _amplitude_spectrum(x: Field) -> Field:
    spectrum = jnp.fft.fft2(x, axes=(-3, -2), norm="ortho")
    return _safe_sqrt(spectrum.real**2 + spectrum.imag**2)


def spectral(prediction: Field, target: Field, *, key: PRNGKeyArray | None = None):
    """Euclidean distance between the 2-D Fourier amplitude spectra ``|FFT(x)|`` per channel.

    The orthonormal FFT keeps the scale of ``euclidean``; phases are ignored, so a pattern
    and any translate of it are at distance zero.
    """
    del key
    difference = _amplitude_spectrum(prediction) - _amplitude_spectrum(target)
    return _safe_sqrt(jnp.sum(difference**2, axis=_LATTICE))


def sliced_wasserstein(
    prediction: Field,
    target: Field,
    *,
    key: PRNGKeyArray | None = None,
    projections: int = 32,
):
    """Sliced Wasserstein-2 distance between the two sets of pixel values.

    Each cell's channel vector is a point in ``R^channels``; both point clouds are projected
    onto ``projections`` random unit directions, each projection is sorted, and the sorted
    values are compared by mean squared difference. Positions are ignored: this compares
    the distribution of colours/concentrations, as in texture synthesis.

    Args:
        key: PRNG key for the random directions (default: a fixed key, so that the loss is a
            deterministic function when none is given).
        projections: number of random directions (default 32).
    """
    if key is None:
        key = jax.random.key(0)
    channels = prediction.shape[-1]
    directions = jax.random.normal(key, (channels, projections), prediction.dtype)
    directions = directions / jnp.linalg.norm(directions, axis=0, keepdims=True)
    batch = prediction.shape[:-3]
    points_p = prediction.reshape(batch + (-1, channels)) @ directions
    points_t = target.reshape(batch + (-1, channels)) @ directions
    sorted_p = jnp.sort(points_p, axis=-2)
    sorted_t = jnp.sort(points_t, axis=-2)
    return _safe_sqrt(jnp.mean((sorted_p - sorted_t) ** 2, axis=(-2, -1)))


def box_penalty(states: Array, low: float = 0.0, high: float = 1.0) -> Array:
    """The authors' state-range penalty ``sum(relu(low - x) + relu(x - high))``.

    Summed over everything in ``states``: every state, cell and channel, hidden channels
    included. Zero inside the box ``[low, high]``; outside it, the distance to the box.
    """
    return jnp.sum(jax.nn.relu(low - states) + jax.nn.relu(states - high))


LOSSES: dict[str, Loss] = {
    "euclidean": euclidean,
    "mse": mse,
    "l1": l1,
    "hellinger": hellinger,
    "bhattacharyya": bhattacharyya,
    "spectral": spectral,
    "sliced_wasserstein": sliced_wasserstein,
}
"""Loss name -> function ``(prediction, target, *, key) -> per-batch-element loss``."""


def as_plane(x: Array, dims: int) -> Array:
    """A ``dims``-dimensional lattice ``(*batch, ..., C)`` viewed as a 2-D one, for the
    losses, which reduce over the last three axes: a line ``(X, C)`` as ``(X, 1, C)``, a
    volume ``(D, H, W, C)`` as ``(D H, W, C)``. Every loss is a function of the set of
    cells (sums, means, per-channel normalisations, sorted values), so the view changes
    no value; only ``loss_patch`` blocks are drawn on the view (a volume's blocks are
    ``patch`` x ``patch`` rectangles of its ``(D H, W)`` plane)."""
    if dims == 2:
        return x
    if dims == 1:
        return x[..., None, :]
    return x.reshape(x.shape[:-4] + (x.shape[-4] * x.shape[-3],) + x.shape[-2:])


def on_lattice(loss: Loss, dims: int) -> Loss:
    """``loss`` for states with ``dims`` lattice axes (``as_plane`` on both arguments);
    ``loss`` itself in 2-D."""
    if dims == 2:
        return loss

    def planar(prediction, target, **kwargs):
        return loss(as_plane(prediction, dims), as_plane(target, dims), **kwargs)

    return planar


def get_loss(name: str) -> Loss:
    """Look a loss up by name, raising ``ValueError`` listing the choices if it is unknown."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
    return LOSSES[name]


SUBSAMPLED = ("euclidean", "mse", "l1")
"""The losses that are sums (or means) over cells, so that a random subset of cells can
estimate them (``subsampled``); the others normalise, transform or sort the whole lattice."""


def cell_weights(
    key: PRNGKeyArray, shape: tuple[int, ...], fraction: float, patch: int = 1
) -> Float[Array, "*batch height width 1"]:
    """Random cell weights of mean 1: ``1 / fraction`` on the kept cells, 0 elsewhere.

    Each ``patch`` x ``patch`` block of cells (the blocks tile the lattice from its corner;
    those at the far edges are cut to fit) is kept with probability ``fraction``,
    independently for every block and every batch element, so every cell is kept with
    probability ``fraction``.

    Args:
        key: PRNG key of the draw.
        shape: ``(*batch, height, width)``.
        fraction: the probability that a block is kept. Range: (0, 1].
        patch: side of the blocks in cells (default 1: each cell on its own). Range: >= 1.
    """
    *batch, height, width = shape
    rows, columns = -(-height // patch), -(-width // patch)
    kept = jax.random.bernoulli(key, fraction, (*batch, rows, columns))
    if patch > 1:
        kept = jnp.repeat(jnp.repeat(kept, patch, axis=-2), patch, axis=-1)
        kept = kept[..., :height, :width]
    return (kept / fraction)[..., None]


def subsampled(name: str, fraction: float, patch: int = 1) -> Loss:
    """The loss ``name`` estimated from a random subset of the cells at every call.

    With ``w = cell_weights(key, ..., fraction, patch)`` (``1 / fraction`` on the kept
    cells, 0 elsewhere; a fresh draw per call and per batch element):

    - ``mse``: ``mean(w (x - y)^2)``; ``l1``: ``mean(w |x - y|)``, means over all cells and
      channels. Both are linear in ``w``, whose mean is 1: the estimate *and its gradient*
      are unbiased (their means over keys are the full loss and its gradient).
    - ``euclidean``: ``sqrt(sum(w (x - y)^2))``. The sum under the root is an unbiased
      estimate of the squared Euclidean distance ``S``, but the root is concave, so
      ``E[sqrt(S_hat)] <= sqrt(S)`` (Jensen): the estimate, and its gradient
      ``grad S_hat / (2 sqrt(S_hat))``, are biased. To second order the relative bias of
      the value is ``-Var(S_hat) / (8 S^2)``, with ``Var(S_hat) = (1 - f) / f * sum_b s_b^2``
      (``s_b``: the squared error summed over block ``b``, ``f = fraction``): about
      ``-(1 - f) / (8 f n)`` for ``n`` blocks of similar error, small on large lattices
      (4096 single cells at ``f = 0.1``: -3e-4), large when few blocks carry the error.

    ``fraction = 1`` returns the full loss itself (``get_loss(name)``), unchanged.

    Args:
        name: ``euclidean``, ``mse`` or ``l1`` (``SUBSAMPLED``).
        fraction: expected fraction of the cells compared. Range: (0, 1].
        patch: side of the blocks of cells kept or left out together. Range: >= 1.

    Returns:
        A loss ``(prediction, target, *, key) -> per-batch-element loss``; ``key`` is
        required when ``fraction < 1``.
    """
    full = get_loss(name)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be an integer >= 1, got {patch!r}")
    if fraction == 1:
        return full
    if name not in SUBSAMPLED:
        raise ValueError(
            f"the {name!r} loss cannot be sub-sampled (it is no sum over cells); "
            f"use one of {', '.join(SUBSAMPLED)}"
        )

    def loss(prediction: Field, target: Field, *, key: PRNGKeyArray | None = None):
        if key is None:
            raise ValueError("a sub-sampled loss needs a PRNG key: pass key=...")
        weights = cell_weights(key, prediction.shape[:-1], fraction, patch)
        difference = prediction - target
        if name == "euclidean":
            return _safe_sqrt(jnp.sum(weights * difference**2, axis=_LATTICE))
        if name == "mse":
            return jnp.mean(weights * difference**2, axis=_LATTICE)
        return jnp.mean(weights * jnp.abs(difference), axis=_LATTICE)

    return loss
