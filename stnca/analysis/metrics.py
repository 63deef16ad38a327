"""Evaluation metrics: pixel-wise errors, baselines, and a power-spectrum distance."""

from __future__ import annotations

import numpy as np


def _lattice(dims: int) -> tuple[int, ...]:
    """The lattice axes of a channel-last field on a ``dims``-dimensional lattice."""
    return tuple(range(-1 - dims, -1))


def euclidean(prediction: np.ndarray, truth: np.ndarray, dims: int = 2) -> np.ndarray:
    """``sqrt(sum (x - y)^2)`` over the lattice and channels (the last ``dims + 1`` axes)."""
    difference = np.asarray(prediction, np.float64) - np.asarray(truth, np.float64)
    return np.sqrt(np.sum(difference**2, axis=(*_lattice(dims), -1)))


def relative_error(prediction: np.ndarray, truth: np.ndarray, dims: int = 2) -> np.ndarray:
    """``||x - y|| / ||y||`` over the lattice and channels (0 where both are zero)."""
    norm = np.sqrt(np.sum(np.asarray(truth, np.float64) ** 2, axis=(*_lattice(dims), -1)))
    error = euclidean(prediction, truth, dims)
    return np.where(norm > 0, error / np.where(norm > 0, norm, 1.0), error)


def radial_power_spectrum(field: np.ndarray, dims: int = 2) -> np.ndarray:
    """Radially averaged power spectrum of each channel, shape ``(..., bins, channels)``.

    The spatial mean is removed first (the k = 0 bin is left out); bin ``b`` averages
    ``|FFT|^2`` over wavevectors with ``b <= |k| L / (2 pi) < b + 1`` (``L`` the shortest
    side), up to the Nyquist radius. ``dims``: the lattice's dimension (shells in 3-D,
    the one-sided spectrum in 1-D).
    """
    field = np.asarray(field, np.float64)
    axes = _lattice(dims)
    sizes = [field.shape[a] for a in axes]
    centred = field - field.mean(axis=axes, keepdims=True)
    power = np.abs(np.fft.fftn(centred, axes=axes)) ** 2 / np.prod(sizes)
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in sizes], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids)) * min(sizes)
    bins = np.floor(radius).astype(int)
    n_bins = min(sizes) // 2
    flat = power.reshape(power.shape[: -1 - dims] + (-1, power.shape[-1]))
    out = []
    for b in range(1, n_bins + 1):
        mask = (bins == b).ravel()
        out.append(flat[..., mask, :].mean(axis=-2))
    return np.stack(out, axis=-2)


def spectrum_distance(prediction: np.ndarray, truth: np.ndarray, dims: int = 2) -> np.ndarray:
    """Relative L2 distance between radially averaged power spectra (lattice and channels).

    Zero when the two fields have the same pattern statistics (wavelengths and contrast)
    even if the patterns are not aligned pixel by pixel.
    """
    p, t = radial_power_spectrum(prediction, dims), radial_power_spectrum(truth, dims)
    norm = np.sqrt(np.sum(t**2, axis=(-2, -1)))
    error = np.sqrt(np.sum((p - t) ** 2, axis=(-2, -1)))
    return np.where(norm > 0, error / np.where(norm > 0, norm, 1.0), error)


def frame_metrics(
    prediction: np.ndarray, truth: np.ndarray, dims: int = 2
) -> dict[str, np.ndarray]:
    """Euclidean distance, relative error and spectrum distance per frame."""
    return {
        "euclidean": euclidean(prediction, truth, dims),
        "relative_error": relative_error(prediction, truth, dims),
        "spectrum_distance": spectrum_distance(prediction, truth, dims),
    }


VARIANCE_FLOOR = 1e-7
"""Added to the truth's variance in ``vrmse`` (The Well's epsilon)."""


def vrmse(prediction: np.ndarray, truth: np.ndarray, dims: int = 2) -> np.ndarray:
    """Variance-scaled RMSE, ``sqrt(MSE / (Var(truth) + 1e-7))`` per channel over the lattice,
    averaged over channels (The Well's VRMSE): 1 for the truth's own spatial mean, 0 for the
    truth itself."""
    prediction, truth = np.asarray(prediction, np.float64), np.asarray(truth, np.float64)
    lattice = _lattice(dims)
    mse = np.mean((prediction - truth) ** 2, axis=lattice)
    variance = np.var(truth, axis=lattice)
    return np.mean(np.sqrt(mse / (variance + VARIANCE_FLOOR)), axis=-1)


def pearson(prediction: np.ndarray, truth: np.ndarray, dims: int = 2) -> np.ndarray:
    """Pearson correlation over the lattice per channel, averaged over channels. A channel
    that is constant in either field counts 1 where the two agree (to 1e-6) and 0 elsewhere."""
    prediction, truth = np.asarray(prediction, np.float64), np.asarray(truth, np.float64)
    lattice = _lattice(dims)
    p = prediction - prediction.mean(axis=lattice, keepdims=True)
    t = truth - truth.mean(axis=lattice, keepdims=True)
    norms = np.sqrt(np.sum(p**2, axis=lattice) * np.sum(t**2, axis=lattice))
    flat = norms <= 1e-12 * np.maximum(1.0, np.sum(truth**2, axis=lattice))
    equal = np.all(np.abs(prediction - truth) <= 1e-6, axis=lattice)
    correlation = np.sum(p * t, axis=lattice) / np.where(flat, 1.0, norms)
    return np.mean(np.where(flat, equal.astype(np.float64), correlation), axis=-1)


CORRELATION_THRESHOLD = 0.8
"""``correlation_time`` counts steps until the Pearson correlation drops below this."""


def correlation_time(
    correlation: np.ndarray, steps: np.ndarray, threshold: float = CORRELATION_THRESHOLD
) -> np.ndarray:
    """The last step before the correlation (``(..., frames)``, at ``steps``) first drops
    below ``threshold``: the whole run (``steps[-1]``) if it never does, 0 if it starts
    below."""
    correlation, steps = np.asarray(correlation), np.asarray(steps)
    below = correlation < threshold
    first = np.where(below.any(axis=-1), below.argmax(axis=-1), correlation.shape[-1])
    return np.where(first == 0, 0, steps[np.maximum(first - 1, 0)])
