"""The PDE behind a trained NCA, or behind data, by sparse regression (PDE-FIND with PySINDy).

The per-step change of each observable channel is regressed on a library of candidate terms
(``stnca.analysis.equations``: monomials of the channels up to a degree, and the paper's
stencil derivatives of each channel), keeping few terms:

- **Time derivative.** For a model: the NCA is rolled out densely (every step) and the
  target is the exact per-step change of the decoded observable fields divided by ``dt``,
  the time one NCA step stands for; the features are evaluated on the state before the
  step. For data: the change between consecutive frames divided by the frame spacing
  ``dt`` (``forward``, features at the earlier frame: exact for forward-Euler data sampled
  every step), or ``central``, ``(y[k+1] - y[k-1]) / 2 dt`` with features at frame ``k``.
- **Samples.** At most ``samples`` (cell, time) pairs, drawn uniformly at random with the
  key; a random ``HOLDOUT`` fraction of them is held out, the rest are fitted. Features
  are computed in float32 with the project's stencils (as the simulator computes them)
  and regressed in float64.
- **Sparse regression.** PySINDy's sequentially thresholded least squares,
  ``pysindy.STLSQ(threshold, alpha=RIDGE, normalize_columns=True)``, one channel at a time,
  with the target divided by its norm: a term survives the thresholding when its
  contribution ``|coefficient| ||column||`` is at least ``threshold`` times ``||target||``
  (over the fitted samples); the kept terms are refitted without the ridge (``unbias``).
  STLSQ is handed the triangular factor ``R`` of the fitted features (``X = Q R``) and
  ``Q^T y``: the same normal equations and column norms, so exactly the same fit, in a
  fraction of the time.
- **Threshold by cross-validation.** Every threshold of ``THRESHOLDS`` is fitted; the
  held-out relative error ``e = ||y - X c|| / ||y||`` of each is measured, and the chosen
  model is **the one with the fewest terms whose held-out error is at most ``1 +
  tolerance`` times the best** (default ``TOLERANCE``, 10 %; ties go to the lower error).
  Every distinct model of the path is recorded, so a sparser or fuller one can be read off.

A channel whose change never exceeds float32 rounding gets no terms; if no channel changes
at all (an untrained NCA, whose output layer is zero), extraction is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .._resources import check_memory
from .._trajectory import check_steps
from .._validate import count, real
from ..boundaries import check_boundary
from ..model import NCA
from .equations import OPERATORS, Term, evaluate_terms, parse_term
from .equations import library as term_library
from .evaluate import predict

SAMPLES = 200_000
"""Default number of (cell, time) samples regressed (fitted plus held out)."""
HOLDOUT = 0.2
"""Fraction of the samples held out to choose the threshold."""
THRESHOLDS = tuple(float(t) for t in np.logspace(-4, 2, 61))
"""The STLSQ thresholds tried (relative contributions, 10 per decade)."""
TOLERANCE = 0.1
"""Default: the sparsest model within 10 % of the best held-out error is chosen."""
RIDGE = 1e-5
"""STLSQ's ridge ``alpha`` on the normalised columns, against collinear libraries."""
DERIVATIVES = ("forward", "central")
_CHUNK = 32  # frames whose features are computed in one compiled call


def _pysindy():
    try:
        import pysindy
    except ImportError:
        raise ValueError('extraction needs PySINDy: pip install "stnca[extract]"') from None
    return pysindy


MAX_TERMS = 500
"""The most terms a library may have (a degree-3 library of 2 channels has 16)."""


@dataclasses.dataclass(frozen=True)
class Library:
    """The candidate terms: their names (canonical) and channel names.

    Args:
        channels: the observable channels' names, in state order.
        terms: the candidate term names.
    """

    channels: tuple[str, ...]
    terms: tuple[str, ...]

    @classmethod
    def build(
        cls,
        channels: Sequence[str],
        degree: int = 3,
        operators: Sequence[str] = tuple(OPERATORS),
        terms: Sequence[str] | None = None,
    ) -> Library:
        """Monomials up to ``degree`` and ``operators`` of each channel, or exactly ``terms``
        (names in any order of factors; repeats are refused)."""
        channels = tuple(channels)
        if terms is None:
            names = term_library(channels, count(degree, "degree", 0), operators)
        else:
            names = [parse_term(t, channels).name(channels) for t in terms]
            if not names:
                raise ValueError("the list of terms is empty")
        if len(names) > MAX_TERMS:  # the regression's cost grows with the square of this
            made = f"degree {degree} in {len(channels)} channels" if terms is None else "listed"
            raise ValueError(
                f"the library would have {len(names):_} terms ({made}), more than {MAX_TERMS}: "
                "too many for the sparse regression (its time and memory grow with the square "
                "of the terms); lower the degree or give fewer terms"
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"the library repeats the term(s) {repeated}")
        return cls(channels, tuple(names))

    def parsed(self) -> tuple[Term, ...]:
        return tuple(parse_term(t, self.channels) for t in self.terms)


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


def _static(target: np.ndarray, fields: np.ndarray, dt: float) -> bool:
    """Whether a channel's change stays within float32 rounding of its values."""
    resolution = 4 * np.finfo(np.float32).eps * max(1.0, float(np.max(np.abs(fields))))
    return bool(float(np.max(np.abs(target))) * dt <= resolution)


def _stlsq(factor: np.ndarray, projected: np.ndarray, norm: float, threshold: float) -> np.ndarray:
    ps = _pysindy()
    optimiser = ps.STLSQ(threshold=threshold, alpha=RIDGE, normalize_columns=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparsity parameter too big": the empty model
        optimiser.fit(factor, projected / norm)
    return np.asarray(optimiser.coef_, np.float64)[0] * norm


def sparse_regression(
    features: np.ndarray,
    target: np.ndarray,
    names: Sequence[str],
    *,
    tolerance: float = TOLERANCE,
    thresholds: Sequence[float] = THRESHOLDS,
    key: PRNGKeyArray,
) -> dict[str, Any]:
    """Fit one channel's change by STLSQ with the threshold chosen by cross-validation.

    Args:
        features: ``(n, terms)`` float64.
        target: ``(n,)`` float64.
        names: the term names.
        tolerance: the chosen model is the sparsest within ``1 + tolerance`` of the best
            held-out relative error.
        thresholds: the STLSQ thresholds tried.
        key: PRNG key for the held-out split.

    Returns:
        ``{"coefficients": {term: value}, "threshold", "held_out_relative_error",
        "held_out_r2", "path": [...]}``, the path listing every distinct model found.
    """
    real(tolerance, "tolerance", 0.0)
    n = len(target)
    order = np.asarray(jax.random.permutation(key, n))
    held = max(1, int(round(HOLDOUT * n)))
    test, train = order[:held], order[held:]
    if len(train) < features.shape[1]:
        raise ValueError(
            f"too few samples ({n}) for {features.shape[1]} candidate terms; give more data"
        )
    factor, projected = _square_root(features[train], target[train])
    norm = float(np.linalg.norm(target[train])) or 1.0
    held_norm = float(np.linalg.norm(target[test])) or 1.0
    path: dict[tuple[int, ...], dict[str, Any]] = {}
    for threshold in thresholds:
        coefficients = _stlsq(factor, projected, norm, threshold)
        support = tuple(int(i) for i in np.flatnonzero(coefficients))
        if support in path:
            continue
        error = float(np.linalg.norm(target[test] - features[test] @ coefficients)) / held_norm
        path[support] = {"threshold": threshold, "error": error, "coefficients": coefficients}
    best = min(model["error"] for model in path.values())
    chosen = min(
        (m for m in path.values() if m["error"] <= (1 + tolerance) * best),
        key=lambda m: (np.count_nonzero(m["coefficients"]), m["error"]),
    )
    coefficients = chosen["coefficients"]
    residual = target[test] - features[test] @ coefficients
    spread = float(np.sum((target[test] - target[test].mean()) ** 2))
    return {
        "coefficients": {
            names[int(i)]: float(coefficients[i]) for i in np.flatnonzero(coefficients)
        },
        "threshold": chosen["threshold"],
        "held_out_relative_error": chosen["error"],
        "held_out_r2": 1.0 - float(np.sum(residual**2)) / spread if spread > 0 else None,
        "path": [
            {
                "threshold": m["threshold"],
                "terms": [names[i] for i in support],
                "held_out_relative_error": m["error"],
            }
            for support, m in sorted(path.items(), key=lambda item: -len(item[0]))
        ],
    }


def _square_root(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``R`` and ``Q^T y`` for ``features = Q R``: the normal equations in ``terms`` rows."""
    q, r = np.linalg.qr(features)
    return r, q.T @ target


def fit_equation(
    trajectories: np.ndarray,
    library: Library,
    *,
    dt: float,
    boundary: str = "periodic",
    derivative: str = "forward",
    first: int = 0,
    samples: int = SAMPLES,
    tolerance: float = TOLERANCE,
    what: str = "the data",
    key: PRNGKeyArray,
) -> dict[str, Any]:
    """Extract an equation from trajectories ``(R, T, H, W, C)`` spaced ``dt`` apart.

    Args:
        trajectories: the observable frames, channels named by ``library.channels``.
        library: the candidate terms.
        dt: time between frames (the unit of the coefficients is ``1 / time``).
        boundary: the lattice boundary for the stencils.
        derivative: ``forward`` or ``central`` differences.
        first: the first frame whose change is fitted.
        samples: the most (cell, time) samples regressed.
        tolerance: the selection tolerance (see the module docstring).
        what: how to name the trajectories in errors.
        key: PRNG key for the samples and the held-out split.

    Returns:
        The ``equation.json`` dict: ``channels`` (the contract), ``dt``, ``boundary``,
        ``derivative``, ``library``, ``samples``, ``selection`` and per-channel ``fit``.

    Raises:
        ValueError: non-finite trajectories, too few frames, or no channel that changes.
    """
    _pysindy()
    trajectories = np.asarray(trajectories, np.float32)
    if trajectories.ndim != 5 or trajectories.shape[-1] != len(library.channels):
        raise ValueError(
            f"trajectories must have shape (R, T, H, W, {len(library.channels)}), "
            f"got {trajectories.shape}"
        )
    if not np.all(np.isfinite(trajectories)):
        raise ValueError(f"{what} hold non-finite values (NaN or inf)")
    dt = real(dt, "dt", 0.0)
    if dt == 0:
        raise ValueError("dt must be > 0")
    if derivative not in DERIVATIVES:
        raise ValueError(f"derivative must be one of {list(DERIVATIVES)}, got {derivative!r}")
    check_boundary(boundary)
    k_samples, k_split = jax.random.split(key)
    features, targets = regression_samples(
        trajectories,
        library,
        dt=dt,
        boundary=boundary,
        derivative=derivative,
        first=first,
        samples=count(samples, "samples", 2),
        key=k_samples,
    )
    moving = [not _static(targets[:, c], trajectories[..., c], dt) for c in range(targets.shape[1])]
    if not any(moving):
        raise ValueError(
            f"no observable dynamics: the observable channels of {what} do not change by more"
            " than float32 rounding from one frame to the next (an untrained model, whose "
            "output layer is zero?)"
        )
    channels: dict[str, dict[str, float]] = {}
    fits: dict[str, Any] = {}
    for c, name in enumerate(library.channels):
        if not moving[c]:
            channels[name], fits[name] = {}, {"static": True}
            continue
        fit = sparse_regression(
            features,
            targets[:, c],
            library.terms,
            tolerance=tolerance,
            key=jax.random.fold_in(k_split, c),
        )
        channels[name] = fit.pop("coefficients")
        fits[name] = fit
    held = max(1, int(round(HOLDOUT * len(targets))))
    return {
        "channels": channels,
        "dt": dt,
        "boundary": boundary,
        "derivative": derivative,
        "library": list(library.terms),
        "samples": {"fitted": len(targets) - held, "held_out": held},
        "selection": {
            "optimizer": f"pysindy.STLSQ(alpha={RIDGE}, normalize_columns=True)",
            "rule": "the fewest terms within (1 + tolerance) x the best held-out relative error",
            "tolerance": tolerance,
            "thresholds": {"from": THRESHOLDS[0], "to": THRESHOLDS[-1], "count": len(THRESHOLDS)},
        },
        "threshold": {name: fits[name].get("threshold") for name in library.channels},
        "fit": fits,
    }


def extract_from_model(
    model: NCA,
    initial: np.ndarray,
    steps: int,
    library: Library,
    *,
    dt: float = 1.0,
    burn_in: int = 0,
    samples: int = SAMPLES,
    tolerance: float = TOLERANCE,
    key: PRNGKeyArray,
) -> dict[str, Any]:
    """Roll ``model`` out densely and extract the equation of its observable channels.

    Args:
        model: a trained NCA (without conditions).
        initial: observable initial states ``(R, H, W, C)`` in physical units; the hidden
            channels start at zero.
        steps: NCA steps per rollout; every step's change is a sample.
        library: the candidate terms (one name per observable channel).
        dt: the time one NCA step stands for (the coefficients are per unit time).
        burn_in: steps at the start of each rollout left out of the fit (the hidden
            channels start at zero).
        samples: the most (cell, time) samples regressed (as for ``fit_equation``).
        tolerance: the selection tolerance (as for ``fit_equation``).
        key: PRNG key for stochastic updates, the samples and the held-out split.
    """
    if getattr(model, "conditions", None) is not None:
        raise ValueError("extraction does not support models with conditions")
    initial = np.asarray(initial, np.float32)
    if initial.ndim != 4 or initial.shape[-1] != model.observable_channels:
        raise ValueError(
            f"initial states must have shape (R, H, W, {model.observable_channels}), "
            f"got {initial.shape}"
        )
    check_steps(steps)
    count(burn_in, "burn_in", 0)
    if burn_in >= steps:
        raise ValueError(f"burn_in ({burn_in}) must be smaller than steps ({steps})")
    cells = initial.size // initial.shape[-1]
    check_memory(cells * (steps + 1) * (model.channels + initial.shape[-1]), "a dense rollout")
    k_rollout, k_fit = jax.random.split(key)
    frames = predict(model, initial, steps, key=k_rollout)
    if not np.all(np.isfinite(frames)):
        raise ValueError(
            f"the model's rollouts diverge (non-finite values within {steps} steps); "
            "give fewer steps or other initial conditions"
        )
    return fit_equation(
        frames,
        library,
        dt=dt,
        boundary=model.boundary,
        first=burn_in,
        samples=samples,
        tolerance=tolerance,
        what="the model's rollouts",
        key=k_fit,
    )
