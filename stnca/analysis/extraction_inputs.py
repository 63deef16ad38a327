"""What ``extract_equation`` reads, with the defaults ``stnca extract`` uses: the true PDE,
the initial states, the term library, a model's rollouts or data's trajectories, and the
input files its report must not overwrite."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._validate import count
from ..data.gray_scott import GrayScottParams
from ..data.initial_conditions import INITIAL_CONDITIONS, initial_condition
from ..data.io import load_states, load_trajectory
from ..model import require_plane
from ..serialization import load_model, resolve_model
from .equations import channel_names
from .extract import Library

DERIVATIVE_TERMS = ("lap", "dx", "dy", "none")


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


def extraction_starts(
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


def input_files(
    model: str | os.PathLike | None,
    *,
    data: str | os.PathLike | None = None,
    init: str | None = None,
    test_init: str | None = None,
    pde: str | None = None,
) -> dict[str, Path | None]:
    """The files ``extract_equation`` reads, by argument name (``data``; ``init``,
    ``test_init`` and ``pde`` where they name a .npy or .toml; ``model``, a shipped model's
    name resolved to its file): its report must not overwrite them."""
    inputs: dict[str, Path | None] = {"data": None if data is None else Path(data)}
    for name, spec in (("init", init), ("test_init", test_init), ("pde", pde)):
        if spec is not None and spec.lower().endswith((".npy", ".toml")):
            inputs[name] = Path(spec)
    if model is not None:
        inputs["model"] = resolve_model(model)
    return inputs


@dataclasses.dataclass
class ModelRollouts:
    """A model's rollouts to fit, with the defaults filled in."""

    path: str | os.PathLike
    model: Any
    names: tuple[str, ...]
    initial: np.ndarray
    described: str
    steps: int
    burn_in: int
    dt: float
    size: tuple[int, int]
    seed: int

    def source(self) -> dict[str, Any]:
        """What the equation was fitted to, as ``equation.json`` records it."""
        return {
            "model": str(self.path),
            "rollouts": len(self.initial),
            "steps": self.steps,
            "burn_in": self.burn_in,
            "initial_conditions": self.described,
            "seed": self.seed,
        }


@dataclasses.dataclass
class DataTrajectories:
    """Trajectories to fit, ``(R, T, H, W, C)``, with the defaults filled in."""

    path: str | os.PathLike
    trajectories: np.ndarray
    names: tuple[str, ...]
    dt: float

    @property
    def size(self) -> tuple[int, ...]:
        return self.trajectories.shape[-3:-1]

    @property
    def steps(self) -> int:
        """The frame intervals of a trajectory (steps of ``dt``)."""
        return self.trajectories.shape[1] - 1

    def source(self) -> dict[str, Any]:
        """What the equation was fitted to, as ``equation.json`` records it."""
        return {
            "data": str(self.path),
            "trajectories": self.trajectories.shape[0],
            "frames": self.trajectories.shape[1],
        }


def data_trajectories(data: str | os.PathLike, gray: bool, dt: float | None) -> DataTrajectories:
    """The trajectories of a .npy ``data`` file, its channels named for Gray-Scott if
    ``gray``, ``dt`` 1 unless given."""
    trajectories = load_trajectory(Path(data), what="data")
    names = channel_names(trajectories.shape[-1], gray)
    return DataTrajectories(data, trajectories, names, 1.0 if dt is None else dt)


def model_rollouts(model_path, config, gray, init, rollouts, steps, burn_in, dt, key, seed):
    """The rollouts ``extract_equation`` fits for a model, their defaults taken from its
    training config."""
    model = require_plane(load_model(model_path), "extract")
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
    initial, described = extraction_starts(
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
    return ModelRollouts(
        model_path, model, names, initial, described, steps, burn_in, time_step, size, seed
    )
