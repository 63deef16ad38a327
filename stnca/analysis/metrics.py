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
