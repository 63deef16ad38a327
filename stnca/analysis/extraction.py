"""``stnca extract`` as one library call: the PDE behind a trained model (or trajectories),
with the defaults the command uses, the comparison run and the report files.

``extract_equation`` chooses, as the command does: the rollouts' initial conditions (the
training family drawn with another seed), their length (the training horizon), the burn-in
(one frame interval, while the hidden channels fill), the time step (one PDE step of the
training data), the term library (polynomials of degree 3 times lap, dx, dy), the true PDE
(the model's Gray-Scott config), and the comparison's initial condition (the unseen
``high_frequency`` family); it fits (``extract.extract_from_model`` or
``extract.fit_equation``), simulates the equation beside the truth and the NCA
(``extract_report.compare``) and writes the report (``extract_report.write_report``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._validate import choice, count, real
from .._validate import seed as check_seed
from ..boundaries import BOUNDARIES
from ..data.gray_scott import GrayScottParams
from ..data.initial_conditions import INITIAL_CONDITIONS, initial_condition
from ..data.io import load_states, load_trajectory
from ..serialization import load_model
from .equations import channel_names, gray_scott_equation
from .extract import DERIVATIVES, Library, extract_from_model, fit_equation
from .extract_report import Comparison, compare, write_report
from .inputs import run_config

DERIVATIVE_TERMS = ("lap", "dx", "dy", "none")


@dataclasses.dataclass
class Extraction:
    """What ``extract_equation`` found and wrote."""

    equation: dict[str, Any]
    """As written to ``equation.json`` (``source`` says what it was fitted to)."""
    report: dict[str, Any]
    """``write_report``'s: the coefficient table (or ``None``), the simulation errors, the files."""
    comparison: Comparison


def true_pde(pde: str | None, config) -> tuple[GrayScottParams | None, Any]:
    """``(Gray-Scott parameters or None, the config they came from)`` for ``pde``:
    ``None`` (the model's training config, if Gray-Scott), ``"none"``, ``"gray-scott"``
    (the paper's parameters) or a config file's path."""
    from ..train import load_config

    if pde is None:
        if config is not None and config.data.source == "gray_scott":
            return config.data.params(), config
        return None, config
    if pde == "none":
        return None, config
    if pde == "gray-scott":
        return GrayScottParams(), config
    if not pde.lower().endswith(".toml"):
        raise ValueError(f"pde must be gray-scott, none or a config .toml, got {pde!r}")
    loaded = load_config(Path(pde))
    if loaded.data.source != "gray_scott":
        raise ValueError(f"pde {pde}: its [data] is {loaded.data.source!r}, not Gray-Scott")
    return loaded.data.params(), loaded


def initial_states(
    spec: str, what: str, channels: int, size: tuple, key, batch: int | None, drawn: str
) -> tuple[np.ndarray, str]:
    """``(states (R, H, W, C), description)``: a .npy file's states, or ``batch`` (or one)
    of a Gray-Scott family's, drawn with ``key`` (``drawn`` says how, for the report)."""
    if spec.lower().endswith(".npy"):
        states = load_states(Path(spec), channels=channels, what=what)
        return (states[None] if states.ndim == 3 else states), spec
    if spec not in INITIAL_CONDITIONS:
        raise ValueError(
            f"{what} must be a .npy file or a Gray-Scott initial condition "
            f"({', '.join(sorted(INITIAL_CONDITIONS))}), got {spec!r}"
        )
    if channels != 2:
        raise ValueError(
            f"{what} {spec} is a Gray-Scott initial condition, but there are {channels} channels"
        )
    states = np.asarray(initial_condition(spec, size, key=key, batch=batch))
    return (states[None] if batch is None else states), f"{spec} ({size[0]}x{size[1]}, {drawn})"


def term_library(names: tuple[str, ...], terms: str, degree: int | None) -> Library:
    """The regression's library: polynomials of ``degree`` (default 3) times the
    derivatives listed in ``terms`` (any of lap, dx, dy, or none), or the whole library
    as a list of terms (e.g. ``'1,A,A*B^2,lap(A)'``)."""
    operators = [t.strip() for t in terms.split(",") if t.strip()]
    others = [op for op in operators if op not in DERIVATIVE_TERMS]
    if others and len(others) < len(operators):  # derivatives mixed with something else
        raise ValueError(
            f"terms: {others[0]!r} is not a derivative (lap, dx, dy or none); give "
            "derivatives, or the whole library as a list of terms (e.g. '1,A,lap(A)')"
        )
    if operators and set(operators) <= set(DERIVATIVE_TERMS):
        wanted = [op for op in operators if op != "none"]
        return Library.build(names, 3 if degree is None else degree, wanted)
    if degree is not None:
        raise ValueError("give degree or a list of terms, not both")
    return Library.build(names, terms=operators)


def extract_equation(
    model: str | os.PathLike | None = None,
    *,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike = "extract",
    dt: float | None = None,
    pde: str | None = None,
    init: str | None = None,
    rollouts: int | None = None,
    steps: int | None = None,
    burn_in: int | None = None,
    degree: int | None = None,
    terms: str = "lap,dx,dy",
    derivative: str | None = None,
    boundary: str | None = None,
    samples: int = 200_000,
    tolerance: float = 0.1,
    test_init: str | None = None,
    test_steps: int | None = None,
    seed: int = 2024,
    log: Callable[[str], None] = print,
) -> Extraction:
    """The PDE behind a trained model (``model``: a model file or a shipped model's name)
    or trajectories (``data``: a ``.npy`` (T, H, W, C) or (R, T, H, W, C)), by sparse
    regression; write the report into ``out``.

    Args:
        dt: time per NCA step, or between ``data`` frames (default: one PDE step of the
            model's Gray-Scott config, else 1); coefficients are per unit time.
        pde: the true PDE to compare with (see ``true_pde``).
        init: a model's rollouts' initial conditions: a ``.npy`` (R, H, W, C) or a
            Gray-Scott family (default: the training family, drawn with another seed).
        rollouts: how many rollouts from a family ``init`` (default 4).
        steps: their length in NCA steps (default: the training horizon).
        burn_in: steps at their start not fitted (default: the training's t, while the
            hidden channels fill).
        degree: the polynomials' highest degree (default 3; see ``term_library``).
        terms: the derivatives in the library, or the whole library as a list of terms.
        derivative: ``data``'s finite differences: forward (default) or central.
        boundary: ``data``'s boundary: periodic (default), fixed or reflect.
        samples: (cell, time) samples regressed, 20% held out.
        tolerance: the sparsest model within ``1 + tolerance`` of the best held-out error
            is kept.
        test_init: the comparison run's initial condition: a ``.npy`` state or a
            Gray-Scott family drawn with ``seed`` (default ``high_frequency`` against a
            Gray-Scott truth, else the first fitted initial condition).
        test_steps: the comparison's length in steps of ``dt``.
        seed: for initial conditions, samples and stochastic updates.
        log: progress messages.

    Raises:
        ValueError: bad settings or inputs (before any fitting).
    """
    if (model is None) == (data is None):
        raise ValueError("give a model or data (a trajectory .npy), exactly one")
    if data is not None:
        given = {"init": init, "rollouts": rollouts, "steps": steps, "burn_in": burn_in}
        for name, value in given.items():
            if value is not None:
                raise ValueError(f"{name} applies to a model's rollouts, not to data")
    elif derivative is not None or boundary is not None:
        raise ValueError("derivative and boundary apply to data (a model has its own)")
    derivative = choice(derivative or "forward", "derivative", DERIVATIVES)
    boundary = choice(boundary or "periodic", "boundary", BOUNDARIES)
    if dt is not None and real(dt, "dt", 0.0) == 0:
        raise ValueError("dt must be > 0")
    count(samples, "samples", 10)
    real(tolerance, "tolerance", 0.0)
    key = jax.random.key(check_seed(seed, "seed"))
    config = None if model is None else run_config(model)
    params, config = true_pde(pde, config)
    gray = params is not None
    if test_init is not None and model is None and not gray:
        raise ValueError(
            "test_init with data needs a truth to compare with: give pde='gray-scott' or a "
            "Gray-Scott config (or no test_init, to use the data's first trajectory)"
        )
    if model is not None:
        fitted = _model_rollouts(model, config, gray, init, rollouts, steps, burn_in, dt, key, seed)
        names, size, time_step = fitted.names, fitted.size, fitted.dt
    else:
        assert data is not None
        trajectories = load_trajectory(Path(data), what="data")
        names = channel_names(trajectories.shape[-1], gray)
        size, time_step = trajectories.shape[-3:-1], 1.0 if dt is None else dt
    library = term_library(names, terms, degree)
    log(f"library: {len(library.terms)} terms: {', '.join(library.terms)}")
    common = dict(
        dt=time_step, samples=samples, tolerance=tolerance, key=jax.random.fold_in(key, 1)
    )
    if model is not None:
        log(f"rolling out {len(fitted.initial)} x {fitted.steps} steps from {fitted.described}")
        equation = extract_from_model(
            fitted.model, fitted.initial, fitted.steps, library, burn_in=fitted.burn_in, **common
        )
        source = {
            "model": str(model),
            "rollouts": len(fitted.initial),
            "steps": fitted.steps,
            "burn_in": fitted.burn_in,
            "initial_conditions": fitted.described,
            "seed": seed,
        }
    else:
        equation = fit_equation(
            trajectories,
            library,
            boundary=boundary,
            derivative=derivative,
            what=f"data {data}",
            **common,
        )
        source = {
            "data": str(data),
            "trajectories": trajectories.shape[0],
            "frames": trajectories.shape[1],
        }
    equation = {**equation, "source": source}
    truth_frames = None
    if test_init is not None or gray:
        tests, test_described = initial_states(
            test_init or "high_frequency",
            "test_init",
            len(names),
            size,
            key,
            None,
            f"seed {seed}",
        )
        test_initial = tests[0]
    elif model is not None:
        test_initial = fitted.initial[0]
        test_described = f"{fitted.described}, the first (fitted)"
    else:
        test_initial, truth_frames = trajectories[0, 0], trajectories[0]
        test_described = f"frame 0 of {data} (fitted)"
    if test_steps is None:
        test_steps = fitted.steps if model is not None else trajectories.shape[1] - 1
    comparison = compare(
        equation,
        test_initial,
        count(test_steps, "test_steps", 1),
        description=test_described,
        model=fitted.model if model is not None else None,
        pde=params,
        truth=truth_frames,
        key=jax.random.fold_in(key, 3),
    )
    report = write_report(
        out,
        equation,
        truth=gray_scott_equation(params) if gray else None,
        comparison=comparison,
        title=f"equation extracted from {model or data}, run from {test_described}",
    )
    return Extraction(equation, report, comparison)


@dataclasses.dataclass
class _Rollouts:
    """A model's rollouts to fit, with the defaults filled in."""

    model: Any
    names: tuple[str, ...]
    initial: np.ndarray
    described: str
    steps: int
    burn_in: int
    dt: float
    size: tuple[int, int]


def _model_rollouts(model_path, config, gray, init, rollouts, steps, burn_in, dt, key, seed):
    """The rollouts ``extract_equation`` fits for a model, their defaults taken from its
    training config."""
    model = load_model(model_path)
    if model.conditions is not None:
        raise ValueError(
            f"the model is conditioned on {', '.join(model.condition_names)}; extract does not "
            f"take conditions yet (use rollout or evaluate with --condition)"
        )
    names = channel_names(model.observable_channels, gray)
    gray_config = config is not None and config.data.source == "gray_scott"
    size = (config.data.size,) * 2 if gray_config else (64, 64)
    if init is None and not gray_config:
        raise ValueError("give init (a .npy of initial states): no Gray-Scott training config")
    initial, described = initial_states(
        init or config.data.families[0],
        "init",
        model.observable_channels,
        size,
        jax.random.fold_in(key, 2),
        count(4 if rollouts is None else rollouts, "rollouts", 1),
        f"key fold_in(key({seed}), 2)",
    )
    horizon = config.horizon() if config is not None else None
    steps = count(steps if steps is not None else horizon or 1024, "steps", 1)
    if burn_in is None:  # the hidden channels start at zero: skip one frame interval t
        t = config.training.steps_between_frames if config is not None else 0
        burn_in = t if t < steps else 0
    burn_in = count(burn_in, "burn_in", 0)
    time_step = 1.0 if dt is None else dt
    if dt is None and gray_config:  # one NCA step: every / t PDE steps of the data
        t = config.training.steps_between_frames
        time_step = (config.data.every or t) / t * config.data.dt
    return _Rollouts(model, names, initial, described, steps, burn_in, time_step, size)
