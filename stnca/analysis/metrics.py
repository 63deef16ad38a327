"""Evaluation metrics: pixel-wise errors, baselines, and a power-spectrum distance."""

from __future__ import annotations

import numpy as np


def euclidean(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``sqrt(sum (x - y)^2)`` over the last three axes (lattice and channels)."""
    difference = np.asarray(prediction, np.float64) - np.asarray(truth, np.float64)
    return np.sqrt(np.sum(difference**2, axis=(-3, -2, -1)))


def relative_error(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``||x - y|| / ||y||`` over the last three axes (0 where both are zero)."""
    norm = np.sqrt(np.sum(np.asarray(truth, np.float64) ** 2, axis=(-3, -2, -1)))
    error = euclidean(prediction, truth)
    return np.where(norm > 0, error / np.where(norm > 0, norm, 1.0), error)


def radial_power_spectrum(field: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum of each channel, shape ``(..., bins, channels)``.

    The spatial mean is removed first (the k = 0 bin is left out); bin ``b`` averages
    ``|FFT|^2`` over wavevectors with ``b <= |k| L / (2 pi) < b + 1`` (``L`` the shorter side),
    up to the Nyquist radius.
    """
    field = np.asarray(field, np.float64)
    height, width = field.shape[-3], field.shape[-2]
    centred = field - field.mean(axis=(-3, -2), keepdims=True)
    power = np.abs(np.fft.fft2(centred, axes=(-3, -2))) ** 2 / (height * width)
    ky = np.fft.fftfreq(height)[:, None]
    kx = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(ky**2 + kx**2) * min(height, width)
    bins = np.floor(radius).astype(int)
    n_bins = min(height, width) // 2
    out = []
    for b in range(1, n_bins + 1):
        mask = bins == b
        out.append(power[..., mask, :].mean(axis=-2))
    return np.stack(out, axis=-2)


def spectrum_distance(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Relative L2 distance between radially averaged power spectra (lattice and channels).

    Zero when the two fields have the same pattern statistics (wavelengths and contrast)
    even if the patterns are not aligned pixel by pixel.
    """
    p, t = radial_power_spectrum(prediction), radial_power_spectrum(truth)
    norm = np.sqrt(np.sum(t**2, axis=(-2, -1)))
    error = np.sqrt(np.sum((p - t) ** 2, axis=(-2, -1)))
    return np.where(norm > 0, error / np.where(norm > 0, norm, 1.0), error)


def frame_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Euclidean distance, relative error and spectrum distance per frame."""
    return {
        "euclidean": euclidean(prediction, truth),
        "relative_error": relative_error(prediction, truth),
        "spectrum_distance": spectrum_distance(prediction, truth),
    }


VARIANCE_FLOOR = 1e-7
"""Added to the truth's variance in ``vrmse`` (The Well's epsilon)."""


def vrmse(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Variance-scaled RMSE, ``sqrt(MSE / (Var(truth) + 1e-7))`` per channel over the lattice,
    averaged over channels (The Well's VRMSE): 1 for the truth's own spatial mean, 0 for the
    truth itself."""
    prediction, truth = np.asarray(prediction, np.float64), np.asarray(truth, np.float64)
    mse = np.mean((prediction - truth) ** 2, axis=(-3, -2))
    variance = np.var(truth, axis=(-3, -2))
    return np.mean(np.sqrt(mse / (variance + VARIANCE_FLOOR)), axis=-1)


def pearson(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pearson correlation over the lattice per channel, averaged over channels. A channel
    that is constant in either field counts 1 where the two agree (to 1e-6) and 0 elsewhere."""
    prediction, truth = np.asarray(prediction, np.float64), np.asarray(truth, np.float64)
    p = prediction - prediction.mean(axis=(-3, -2), keepdims=True)
    t = truth - truth.mean(axis=(-3, -2), keepdims=True)
    norms = np.sqrt(np.sum(p**2, axis=(-3, -2)) * np.sum(t**2, axis=(-3, -2)))
    flat = norms <= 1e-12 * np.maximum(1.0, np.sum(truth**2, axis=(-3, -2)))
    equal = np.all(np.abs(prediction - truth) <= 1e-6, axis=(-3, -2))
    correlation = np.sum(p * t, axis=(-3, -2)) / np.where(flat, 1.0, norms)
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
