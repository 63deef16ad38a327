"""The PDE behind a trained NCA, or behind data, by sparse regression (PDE-FIND with PySINDy).

The per-step change of each observable channel is regressed on a library of candidate terms
(``extract_library``: monomials of the channels up to a degree, and the paper's stencil
derivatives of each channel, ``stnca.analysis.equations``), keeping few terms:

- **Time derivative.** For a model: the NCA is rolled out densely (every step) and the
  target is the exact per-step change of the decoded observable fields divided by ``dt``,
  the time one NCA step stands for; the features are evaluated on the state before the
  step. For data: the change between consecutive frames divided by the frame spacing
  ``dt`` (``forward``, features at the earlier frame: exact for forward-Euler data sampled
  every step), or ``central``, ``(y[k+1] - y[k-1]) / 2 dt`` with features at frame ``k``.
- **Samples** (``extract_samples``). At most ``samples`` (cell, time) pairs, drawn
  uniformly at random with the key; a random ``HOLDOUT`` fraction of them is held out, the
  rest are fitted. Features are computed in float32 with the project's stencils (as the
  simulator computes them) and regressed in float64.
- **Sparse regression** (``extract_regression``). PySINDy's sequentially thresholded least
  squares, ``pysindy.STLSQ(threshold, alpha=RIDGE, normalize_columns=True)``, one channel at
  a time, with the target divided by its norm: a term survives the thresholding when its
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

from typing import Any

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from .._resources import check_memory
from .._trajectory import check_steps
from .._validate import count, real
from ..boundaries import check_boundary
from ..model import NCA
from .evaluate import predict
from .extract_library import MAX_TERMS as MAX_TERMS
from .extract_library import Library as Library
from .extract_regression import HOLDOUT as HOLDOUT
from .extract_regression import RIDGE as RIDGE
from .extract_regression import THRESHOLDS as THRESHOLDS
from .extract_regression import TOLERANCE as TOLERANCE
from .extract_regression import held_out, require_pysindy, selection
from .extract_regression import sparse_regression as sparse_regression
from .extract_samples import DERIVATIVES as DERIVATIVES
from .extract_samples import SAMPLES as SAMPLES
from .extract_samples import regression_samples as regression_samples


def _static(target: np.ndarray, fields: np.ndarray, dt: float) -> bool:
    """Whether a channel's change stays within float32 rounding of its values."""
    resolution = 4 * np.finfo(np.float32).eps * max(1.0, float(np.max(np.abs(fields))))
    return bool(float(np.max(np.abs(target))) * dt <= resolution)


def _checked(
    trajectories: np.ndarray, library: Library, dt: float, derivative: str, boundary: str, what: str
) -> tuple[np.ndarray, float]:
    """``fit_equation``'s trajectories as float32 and its ``dt``, once checked."""
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
    return trajectories, dt


def _moving(targets: np.ndarray, trajectories: np.ndarray, dt: float, what: str) -> list[bool]:
    """Per channel, whether it changes by more than float32 rounding; refuse if none does."""
    moving = [not _static(targets[:, c], trajectories[..., c], dt) for c in range(targets.shape[1])]
    if not any(moving):
        raise ValueError(
            f"no observable dynamics: the observable channels of {what} do not change by more"
            " than float32 rounding from one frame to the next (an untrained model, whose "
            "output layer is zero?)"
        )
    return moving


def _fit_channels(
    features: np.ndarray,
    targets: np.ndarray,
    library: Library,
    moving: list[bool],
    tolerance: float,
    key: PRNGKeyArray,
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """``(coefficients, fit)`` per channel: a sparse regression for each moving channel."""
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
            key=jax.random.fold_in(key, c),
        )
        channels[name] = fit.pop("coefficients")
        fits[name] = fit
    return channels, fits


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
    require_pysindy()
    trajectories, dt = _checked(trajectories, library, dt, derivative, boundary, what)
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
    moving = _moving(targets, trajectories, dt, what)
    channels, fits = _fit_channels(features, targets, library, moving, tolerance, k_split)
    held = held_out(len(targets))
    return {
        "channels": channels,
        "dt": dt,
        "boundary": boundary,
        "derivative": derivative,
        "library": list(library.terms),
        "samples": {"fitted": len(targets) - held, "held_out": held},
        "selection": selection(tolerance),
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
