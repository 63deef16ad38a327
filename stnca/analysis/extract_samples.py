"""The regression's samples (``stnca.analysis.extract``): the candidate terms and the time
derivatives at randomly drawn (cell, time) pairs of trajectories.

The time derivative is the change between consecutive frames divided by their spacing
``dt`` (``forward``, features at the earlier frame: exact for forward-Euler data sampled
every step), or ``central``, ``(y[k+1] - y[k-1]) / 2 dt`` with features at frame ``k``.
Features are computed in float32 with the project's stencils (as the simulator computes
them) and returned in float64, for the regression.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .equations import evaluate_terms
from .extract_library import Library

SAMPLES = 200_000
"""Default number of (cell, time) samples regressed (fitted plus held out)."""
DERIVATIVES = ("forward", "central")
_CHUNK = 32  # frames whose features are computed in one compiled call


@functools.partial(jax.jit, static_argnames=("terms", "boundary"))
def _features(terms, frames, boundary):
    return evaluate_terms(terms, frames, boundary)


def regression_samples(
    trajectories: np.ndarray,
    library: Library,
    *,
    dt: float,
    boundary: str = "periodic",
    derivative: str = "forward",
    first: int = 0,
    samples: int = SAMPLES,
    key: PRNGKeyArray,
) -> tuple[np.ndarray, np.ndarray]:
    """The feature matrix and the time derivatives at randomly drawn (cell, time) samples.

    Args:
        trajectories: frames ``(R, T, H, W, C)`` equally spaced by ``dt``.
        library: the candidate terms.
        dt: time between frames.
        boundary: lattice boundary for the stencils.
        derivative: ``forward`` or ``central`` (see the module docstring).
        first: the first frame whose change is fitted (a burn-in before it).
        samples: the most samples drawn (all of them if there are fewer).
        key: PRNG key for the draw.

    Returns:
        ``features`` float64 ``(n, terms)`` and ``targets`` float64 ``(n, C)``.
    """
    frames = trajectories.shape[1]
    start = max(first, 1 if derivative == "central" else 0)
    stop = frames - 1  # the last frame has no successor
    if stop <= start:
        raise ValueError(
            f"need at least {start + 2} frames to fit a {derivative} difference"
            f"{f' after {first} burn-in frames' if first else ''}, got {frames}"
        )
    r, _, h, w, _ = trajectories.shape
    shape = (r, stop - start, h, w)
    total = math.prod(shape)
    rng = np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)).tolist())
    flat = np.sort(rng.choice(total, size=min(samples, total), replace=False))
    ri, ti, ii, ji = np.unravel_index(flat, shape)
    ti = ti + start
    y = trajectories
    if derivative == "forward":
        targets = (y[ri, ti + 1, ii, ji].astype(np.float64) - y[ri, ti, ii, ji]) / dt
    else:
        targets = (y[ri, ti + 1, ii, ji].astype(np.float64) - y[ri, ti - 1, ii, ji]) / (2 * dt)
    # the samples are sorted by frame: each block of frames owns one slice of them
    frame_of = ri * frames + ti
    used, inverse = np.unique(frame_of, return_inverse=True)
    features = np.empty((len(flat), len(library.terms)), np.float64)
    terms = library.parsed()
    flat_frames = y.reshape(-1, h, w, y.shape[-1])
    batch = np.zeros((_CHUNK, h, w, y.shape[-1]), np.float32)
    for begin in range(0, len(used), _CHUNK):
        block = used[begin : begin + _CHUNK]
        batch[: len(block)] = flat_frames[block]
        values = np.asarray(_features(terms, jnp.asarray(batch), boundary))
        low, high = np.searchsorted(inverse, [begin, begin + len(block)])
        mine = slice(low, high)
        features[mine] = values[inverse[mine] - begin, ii[mine], ji[mine]]
    return features, targets
