"""The sparse regression of one channel's change on the candidate terms: PySINDy's STLSQ on
the triangular factor of the fitted features, with the threshold chosen by cross-validation
on held-out samples (the sparsest model within ``1 + tolerance`` of the best held-out error;
the method in full is in ``stnca.analysis.extract``'s docstring)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from .._validate import real

HOLDOUT = 0.2
"""Fraction of the samples held out to choose the threshold."""
THRESHOLDS = tuple(float(t) for t in np.logspace(-4, 2, 61))
"""The STLSQ thresholds tried (relative contributions, 10 per decade)."""
TOLERANCE = 0.1
"""Default: the sparsest model within 10 % of the best held-out error is chosen."""
RIDGE = 1e-5
"""STLSQ's ridge ``alpha`` on the normalised columns, against collinear libraries."""


def require_pysindy():
    """The ``pysindy`` module, or a ``ValueError`` saying how to install it."""
    try:
        import pysindy
    except ImportError:
        raise ValueError('extraction needs PySINDy: pip install "stnca[extract]"') from None
    return pysindy


def held_out(samples: int) -> int:
    """How many of ``samples`` are held out to choose the threshold."""
    return max(1, int(round(HOLDOUT * samples)))


def selection(tolerance: float) -> dict[str, Any]:
    """How the model is chosen, as ``equation.json`` records it."""
    return {
        "optimizer": f"pysindy.STLSQ(alpha={RIDGE}, normalize_columns=True)",
        "rule": "the fewest terms within (1 + tolerance) x the best held-out relative error",
        "tolerance": tolerance,
        "thresholds": {"from": THRESHOLDS[0], "to": THRESHOLDS[-1], "count": len(THRESHOLDS)},
    }


def _stlsq(factor: np.ndarray, projected: np.ndarray, norm: float, threshold: float) -> np.ndarray:
    ps = require_pysindy()
    optimiser = ps.STLSQ(threshold=threshold, alpha=RIDGE, normalize_columns=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparsity parameter too big": the empty model
        optimiser.fit(factor, projected / norm)
    return np.asarray(optimiser.coef_, np.float64)[0] * norm


def _square_root(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``R`` and ``Q^T y`` for ``features = Q R``: the normal equations in ``terms`` rows."""
    q, r = np.linalg.qr(features)
    return r, q.T @ target


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
    held = held_out(n)
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
    return _chosen_fit(chosen, path, features[test], target[test], names)


def _chosen_fit(
    chosen: dict[str, Any],
    path: dict[tuple[int, ...], dict[str, Any]],
    features: np.ndarray,
    target: np.ndarray,
    names: Sequence[str],
) -> dict[str, Any]:
    """``sparse_regression``'s result for the ``chosen`` model of the ``path``, scored on the
    held-out ``features`` and ``target``."""
    coefficients = chosen["coefficients"]
    residual = target - features @ coefficients
    spread = float(np.sum((target - target.mean()) ** 2))
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
