"""The generalisation benchmark: a model run from many families of initial conditions.

A rule that learned the PDE predicts its response to initial conditions it never saw; a
rule that learned its training set does not. ``run_benchmark`` draws initial conditions
from every family of a ``Suite`` (``stnca.data.initial_conditions``: the smooth training
blobs, sharp shapes, sparse noise, random Fourier series of three bandwidths, sparse seeds,
thin lines and stripes, and a mixture), on lattices larger than the training one, runs the
model and the PDE to 1x, 2x and 4x the training horizon, and scores every frame:

- relative L2 error, VRMSE (``sqrt(MSE / Var(truth))``, The Well's metric: 1 is no better
  than the spatial mean), the Pearson correlation and the time until it drops below 0.8
  (correlation time), and the power-spectrum distance;
- beside the same for the baselines: ``persistence`` (the initial frame held),
  ``spatial_mean`` (the truth's own spatial mean at every time) and ``pde_perturbed`` (the
  PDE itself with its feed rate 1% off: the predictability floor, how much of an error is
  the model's and how much is the system's sensitivity).

A model trained on Gray-Scott data (its run's ``config.toml``, or a shipped model's
``NAME.toml``) is compared with the Gray-Scott PDE at its own parameters (a conditioned
model at each of its training points). Any other model needs a ``truth`` trajectory: the
suite is then the truth's trajectories, and its last frame the largest horizon.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from .._resources import check_memory
from .._validate import choice, count, real
from ..data import gray_scott
from ..data.initial_conditions import BENCHMARK_FAMILIES, INITIAL_CONDITIONS, initial_condition
from ..model import NCA
from .evaluate import predict
from .metrics import correlation_time, pearson, relative_error, spectrum_distance, vrmse

MIN_SIZE = 8
"""The smallest lattice side the benchmark runs on."""
PREDICTORS = ("nca", "persistence", "spatial_mean", "pde_perturbed")
"""The model and its baselines, in the order of the report (other emulators follow)."""
Emulator = Callable[[np.ndarray, int], np.ndarray]
"""``(initial (R, H, W, C), frames) -> (R, frames + 1, H, W, C)``, physical units."""


@dataclasses.dataclass(frozen=True)
class Suite:
    """Which initial conditions a benchmark runs: ``draws`` of each of ``families`` on a
    ``size`` x ``size`` lattice, and ``large_draws`` of each of ``large_families`` on a
    ``large_size`` one (none if ``large_size`` is 0), to ``horizons`` times the horizon."""

    families: tuple[str, ...] = BENCHMARK_FAMILIES
    draws: int = 3
    size: int = 64
    large_families: tuple[str, ...] = ("mixture",)
    large_draws: int = 1
    large_size: int = 256
    horizons: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self):
        for name in (*self.families, *self.large_families):
            choice(name, "families", INITIAL_CONDITIONS)
        if not self.families:
            raise ValueError("families must name at least one family")
        count(self.draws, "draws", 1)
        count(self.large_draws, "large_draws", 1)
        for side, name in ((self.size, "size"), (self.large_size, "large_size")):
            if count(side, name) < MIN_SIZE and not (name == "large_size" and side == 0):
                raise ValueError(f"{name} must be at least {MIN_SIZE} cells, got {side}")
        if not self.horizons or sorted(set(self.horizons)) != list(self.horizons):
            raise ValueError(f"horizons must increase, got {list(self.horizons)}")
        for horizon in self.horizons:
            count(horizon, "horizons", 1)

    def cases(self) -> list[tuple[str, int, int]]:
        """``(family, size, draws)`` for every case of the suite."""
        cases = [(family, self.size, self.draws) for family in self.families]
        if self.large_size:
            cases += [(f, self.large_size, self.large_draws) for f in self.large_families]
        return cases


SUITES = {
    "default": Suite(),
    "quick": Suite(draws=1, large_size=0),
}
"""Named suites: ``default`` (every family, three draws on 64 x 64, the mixture on
256 x 256) and ``quick`` (one draw of every family on 64 x 64)."""


@dataclasses.dataclass
class Case:
    """One family on one lattice (at one condition point): truth and predictions."""

    family: str
    size: tuple[int, int]
    condition: str
    """``name=value,...`` of a conditioned model's point; empty otherwise."""
    truth: np.ndarray
    """``(R, T, H, W, C)``, frame ``m`` at NCA step ``m * steps_between_frames``."""
    predictions: dict[str, np.ndarray]


@dataclasses.dataclass
class Benchmark:
    """Every case's metrics as rows, and the first draw of every case for the figures."""

    steps_between_frames: int
    """NCA steps per frame."""
    pde_steps_between_frames: int | None
    """PDE steps per frame (``None`` for a given truth)."""
    horizon_frames: int
    """Frames in the training horizon (the 1x horizon)."""
    horizons: tuple[int, ...]
    rows: list[dict[str, Any]]
    examples: list[Case]
    """Each case with its first draw only."""

    @property
    def predictors(self) -> list[str]:
        """The predictors scored, the NCA and baselines first."""
        names = list(dict.fromkeys(row["predictor"] for row in self.rows))
        return [p for p in PREDICTORS if p in names] + [p for p in names if p not in PREDICTORS]

    def mean_vrmse(self, predictor: str = "nca", horizon: int = 2) -> float:
        """VRMSE averaged over the families (and lattices) at ``horizon`` times the horizon."""
        values = [
            row["vrmse"]
            for row in self.rows
            if row["predictor"] == predictor and row["horizon"] == horizon
        ]
        return float(np.mean(values)) if values else float("nan")


PERTURBED_PARAMETER = "alpha"
"""The parameter ``pde_perturbed`` changes: the feed rate. (1% off in the kill rate
``gamma`` instead moves the PDE about as far from itself as from its spatial mean by 2x
the paper's horizon: these parameters sit near a bifurcation in ``gamma``.)"""


def perturbed_params(params: gray_scott.GrayScottParams, fraction: float):
    """The PDE's parameters with the feed rate ``alpha`` ``fraction`` higher."""
    value = getattr(params, PERTURBED_PARAMETER)
    return dataclasses.replace(params, **{PERTURBED_PARAMETER: value * (1 + fraction)})


def frame_scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric per trajectory and frame ``(R, T)`` (the correlation time, which depends
    on the horizon it is counted to, is derived from ``correlation``)."""
    return {
        "relative_l2": relative_error(prediction, truth),
        "vrmse": vrmse(prediction, truth),
        "spectrum_distance": spectrum_distance(prediction, truth),
        "correlation": pearson(prediction, truth),
    }


def _rows(case: Case, t: int, every: int | None, marks: dict[int, int]) -> list[dict]:
    steps = np.arange(case.truth.shape[1]) * t
    rows = []
    for predictor, prediction in case.predictions.items():
        scores = frame_scores(prediction, case.truth)
        for horizon, frame in marks.items():
            within = correlation_time(scores["correlation"][:, : frame + 1], steps[: frame + 1])
            rows.append(
                {
                    "size": f"{case.size[0]}x{case.size[1]}",
                    "family": case.family,
                    "condition": case.condition,
                    "predictor": predictor,
                    "horizon": horizon,
                    "step": int(steps[frame]),
                    "pde_step": None if every is None else frame * every,
                    "draws": int(case.truth.shape[0]),
                    **{
                        name: float(np.mean(scores[name][:, frame]))
                        for name in ("relative_l2", "vrmse", "spectrum_distance", "correlation")
                    },
                    "correlation_time": float(np.mean(within)),
                }
            )
    return rows


def family_key(key: jax.Array, family: str, size: int) -> jax.Array:
    """The key of a family's draws on a lattice: the same whatever else the suite holds."""
    return jax.random.fold_in(jax.random.fold_in(key, list(INITIAL_CONDITIONS).index(family)), size)


def _baselines(truth: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "persistence": np.broadcast_to(truth[:, :1], truth.shape),
        "spatial_mean": np.broadcast_to(truth.mean(axis=(2, 3), keepdims=True), truth.shape),
    }


def _pde_cases(model, config, suite, key, perturbation, emulators, progress, t, every, frames):
    """Every case of the suite against the PDE, ``frames`` frames of ``t`` NCA (``every``
    PDE) steps each."""
    data = config.data
    for point in data.parameter_points(model.condition_names):
        values = {name: getattr(point, name) for name in model.condition_names}
        label = ",".join(f"{name}={value:g}" for name, value in values.items())
        for family, size, draws in suite.cases():
            check_memory(5 * draws * (frames + 1) * size * size * 2, "the benchmark's frames")
            case_key = family_key(key, family, size)
            initial = initial_condition(family, size, key=case_key, batch=draws)
            truth = np.asarray(
                gray_scott.simulate(initial, frames * every, every=every, params=point)
            )
            off = gray_scott.simulate(
                initial, frames * every, every=every, params=perturbed_params(point, perturbation)
            )
            nca = predict(
                model,
                model.with_conditions(np.asarray(initial), values or None),
                frames * t,
                every=t,
                key=jax.random.fold_in(case_key, 1),
            )
            predictions = {"nca": nca, **_baselines(truth), "pde_perturbed": np.asarray(off)}
            for name, emulator in emulators.items():
                predictions[name] = np.asarray(emulator(np.asarray(initial), frames))
            case = Case(family, (size, size), label, truth, predictions)
            if progress is not None:
                progress(case)
            yield case


def run_benchmark(
    model: NCA,
    *,
    config=None,
    truth: np.ndarray | None = None,
    steps_between_frames: int | None = None,
    suite: str | Suite = "default",
    seed: int = 0,
    perturbation: float = 0.01,
    emulators: dict[str, Emulator] | None = None,
    progress: Callable[[Case], None] | None = None,
) -> Benchmark:
    """Run ``model`` through the benchmark suite against its PDE, or against ``truth``.

    Args:
        model: a trained NCA.
        config: the model's training config (``stnca.analysis.inputs.run_config``); a
            Gray-Scott one gives the PDE, its parameters, ``t`` and the horizon.
        truth: instead of the PDE, true trajectories ``(T, H, W, C)`` or ``(R, T, H, W, C)``
            (observable channels), frames ``steps_between_frames`` NCA steps apart; their
            last frame is the largest horizon.
        steps_between_frames: NCA steps per frame of ``truth`` (default: the config's).
        suite: a name of ``SUITES`` or a ``Suite``.
        seed: seed of the initial conditions and of a stochastic model's updates.
        perturbation: the relative change of the feed rate in ``pde_perturbed``.
        emulators: other models to score beside the NCA, by name: each
            ``(initial (R, H, W, C), frames) -> (R, frames + 1, H, W, C)`` in physical units,
            one call per frame interval (e.g. the peers of ``stnca.experiments.peers``).
        progress: called with every case as it is done.
    """
    suite = SUITES[choice(suite, "suite", SUITES)] if isinstance(suite, str) else suite
    real(perturbation, "perturbation", 0.0, 1.0)
    key = jax.random.key(count(seed, "seed"))
    if truth is not None:
        return _truth_benchmark(model, config, truth, steps_between_frames, suite, key, emulators)
    source = getattr(getattr(config, "data", None), "source", None)
    if source != "gray_scott":
        raise ValueError(
            "the model was not trained on Gray-Scott data"
            + (f" (its data.source is {source!r})" if source else " (no training config found)")
            + ", so there is no PDE to compare with: give a truth trajectory"
        )
    if model.observable_channels != 2:
        raise ValueError(
            f"the model has {model.observable_channels} observable channels; a Gray-Scott "
            "model has 2 (A and B)"
        )
    t = config.training.steps_between_frames
    every = config.data.every or t
    horizon_frames = config.data.steps // every
    marks = {h: h * horizon_frames for h in suite.horizons}
    frames = marks[suite.horizons[-1]]
    rows, examples = [], []
    cases = _pde_cases(
        model, config, suite, key, perturbation, emulators or {}, progress, t, every, frames
    )
    for case in cases:
        rows += _rows(case, t, every, marks)
        examples.append(_first_draw(case))
    return Benchmark(t, every, horizon_frames, suite.horizons, rows, examples)


def _first_draw(case: Case) -> Case:
    predictions = {name: np.asarray(p[0:1]) for name, p in case.predictions.items()}
    return dataclasses.replace(case, truth=case.truth[0:1], predictions=predictions)


def _truth_benchmark(
    model, config, truth, steps_between_frames, suite, key, emulators
) -> Benchmark:
    if steps_between_frames is None:
        training = getattr(config, "training", None)
        if training is None:
            raise ValueError("give steps_between_frames (NCA steps per frame of the truth)")
        steps_between_frames = training.steps_between_frames
    t = count(steps_between_frames, "steps_between_frames", 1)
    truth = np.asarray(truth, np.float32)
    truth = truth[None] if truth.ndim == 4 else truth
    observable = model.observable_channels
    if truth.ndim != 5 or truth.shape[-1] != observable:
        raise ValueError(
            f"truth must have shape (T, H, W, {observable}) or (R, T, H, W, {observable}),"
            f" got {truth.shape}"
        )
    if min(truth.shape[2:4]) < MIN_SIZE:
        raise ValueError(
            f"the truth's lattice must be at least {MIN_SIZE} cells a side, got "
            f"{truth.shape[2]}x{truth.shape[3]}"
        )
    if not np.all(np.isfinite(truth)):
        raise ValueError("the truth holds NaN or infinite values")
    largest = suite.horizons[-1]
    if (truth.shape[1] - 1) % largest:
        raise ValueError(
            f"the truth's {truth.shape[1] - 1} frame intervals must divide into the "
            f"{largest} horizons of the suite (a multiple of {largest})"
        )
    horizon_frames = (truth.shape[1] - 1) // largest
    if horizon_frames < 1:
        raise ValueError("the truth needs at least two frames")
    nca = predict(model, truth[:, 0], (truth.shape[1] - 1) * t, every=t, key=key)
    predictions = {"nca": nca, **_baselines(truth)}
    for name, emulator in (emulators or {}).items():
        predictions[name] = np.asarray(emulator(truth[:, 0], truth.shape[1] - 1))
    case = Case("truth", truth.shape[2:4], "", truth, predictions)
    marks = {h: h * horizon_frames for h in suite.horizons}
    return Benchmark(
        t, None, horizon_frames, suite.horizons, _rows(case, t, None, marks), [_first_draw(case)]
    )


def families_argument(text: str | Sequence[str]) -> tuple[str, ...]:
    """Family names from a comma-separated list (or a sequence), each checked."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    for name in names:
        choice(name, "families", INITIAL_CONDITIONS)
    return tuple(names)


def model_and_config(model: str | os.PathLike):
    """A model file or shipped name, loaded, and its training config (``None`` if none)."""
    from ..serialization import load_model
    from .inputs import run_config

    return load_model(model), run_config(model)
