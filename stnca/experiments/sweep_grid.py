"""The grid of a sweep: config keys (``section.key``, e.g. ``data.noise``) varied over lists of
values, their Cartesian product (the first key outermost), each cell's config checked before
any training, and the shards of the grid.

Time sampling, as in the paper's Fig 4 (section 3.1.1): the key ``t`` sets both the NCA steps
between training frames (``training.steps_between_frames``) and, for Gray-Scott data, the PDE
steps between them (``data.every``), with the horizon ``N = data.steps`` fixed, so there are
``M = N / t`` frames; the number of mini-batches follows, keeping the base config's
transitions per mini-batch. Varying ``training.steps_between_frames`` alone keeps the data's
frame spacing (``data.every`` pinned to the base's), so the NCA then takes a different number
of steps per PDE interval; varying ``data.every`` alone keeps ``t``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import tomllib
from collections.abc import Sequence
from typing import Any

from ..train.config import Config, GrayScottData, ImageData, config_from_dict
from ..train.loop import check_data_shape

SAMPLING = "t"
"""The sweep key of the paper's time sampling (see the module's docstring)."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One point of the grid: its varied values and the config they give."""

    values: tuple[tuple[str, Any], ...]
    config: Config

    @property
    def name(self) -> str:
        """A folder name, e.g. ``t=32`` or ``model.activation=relu_data.noise=0.1``."""
        return "_".join(f"{key}={_text(value)}" for key, value in self.values)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "+".join(map(str, value))
    return str(value)


def parse_vary(text: str) -> tuple[str, list]:
    """``KEY=V1,V2,...`` -> ``(KEY, [V1, V2, ...])``; values are TOML scalars (numbers,
    booleans, strings), and ``a+b`` is the list ``[a, b]`` (e.g. kernels)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"vary must look like KEY=V1,V2,..., got {text!r}")
    items = [v.strip() for v in values.split(",")]
    if not any(items) or any(not v for v in items):
        raise ValueError(f"vary {key}: give a comma-separated list of values, got {values!r}")
    return key, [_scalar_or_list(v) for v in items]


def _scalar_or_list(text: str) -> Any:
    if "+" in text and not _is_number(text):
        return [_scalar(part) for part in text.split("+")]
    return _scalar(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def expand(base: Config, vary: Sequence[tuple[str, Sequence]]) -> list[Cell]:
    """The grid: every combination of the varied values (first key outermost), each checked
    by the config loader, so a bad key or value is refused before any training."""
    keys = [key for key, _ in vary]
    if len(set(keys)) != len(keys):
        raise ValueError(f"vary names a key twice: {', '.join(keys)}")
    for key, values in vary:
        if not values:
            raise ValueError(f"vary {key}: the list of values is empty")
        if len({json.dumps(v) for v in values}) != len(values):
            raise ValueError(f"vary {key}: a value is repeated")
    cells = []
    for combination in itertools.product(*(values for _, values in vary)):
        values = tuple(zip(keys, combination, strict=True))
        cell = Cell(values, cell_config(base, values))
        try:
            check_data_shape(cell.config, *_planned_shape(cell.config))
        except ValueError as error:
            raise ValueError(f"vary {cell.name}: {error}") from None
        cells.append(cell)
    return cells


def _planned_shape(config: Config) -> tuple[int, int, bool]:
    """The training data's trajectories, frames and whether the last frame repeats, from
    the config alone (so a cell is checked before any training)."""
    data = config.data
    if isinstance(data, GrayScottData):
        every = data.every or config.training.steps_between_frames
        return data.trajectories, data.steps // every + 1, False
    if isinstance(data, ImageData):
        return data.copies, len(data.images) + data.final_repeats - 1, data.final_repeats >= 2
    raise ValueError(f"sweeps need Gray-Scott or image data, got data.source = {data.source!r}")


def _planned_data(config: Config) -> tuple[int, int, int, int, int]:
    """The shape ``(R, T, H, W, C)`` of a cell's training data, from its config alone."""
    trajectories, frames, _ = _planned_shape(config)
    data = config.data
    if isinstance(data, ImageData):
        side = data.size + 2 * data.padding
        return trajectories, frames, side, side, 4
    return trajectories, frames, data.size, data.size, 2


def cell_config(base: Config, values: Sequence[tuple[str, Any]]) -> Config:
    """``base`` with the varied ``values`` set (``t`` and the pinning rules of the module's
    docstring), validated like a config file."""
    tables = base.to_dict()
    keys = {key for key, _ in values}
    if isinstance(base.data, GrayScottData) and "data.every" not in keys:
        tables["data"]["every"] = base.data.every or base.training.steps_between_frames
    sampling = [value for key, value in values if key == SAMPLING]
    for key, value in values:
        if key == SAMPLING:
            continue
        section, _, name = key.partition(".")
        if section not in ("model", "data", "training") or not name:
            raise ValueError(
                f"vary {key}: keys are {SAMPLING} or section.key with section model, data "
                "or training (e.g. data.noise, model.activation)"
            )
        if (section, name) in (("data", "source"), ("training", "epochs")):
            raise ValueError(f"vary {key}: not a key a sweep may vary")
        tables[section][name] = value
    # t last, on the cell's own horizon and trajectories; a varied training.minibatches
    # overrides the number of mini-batches it implies
    for t in sampling:
        _set_sampling(base, tables, t, "training.minibatches" not in keys)
    try:
        return config_from_dict(tables, base.base_dir)
    except ValueError as error:
        where = ", ".join(f"{k}={_text(v)}" for k, v in values)
        raise ValueError(f"vary {where}: {error}") from None


def _set_sampling(base: Config, tables: dict, t: Any, minibatches: bool) -> None:
    if not isinstance(t, int) or isinstance(t, bool) or t < 1:
        raise ValueError(f"vary {SAMPLING}: the time sampling must be an integer >= 1, got {t!r}")
    tables["training"]["steps_between_frames"] = t
    if not isinstance(base.data, GrayScottData):
        return  # file and image data keep their frames; t is the NCA steps between them
    steps = tables["data"].get("steps", base.data.steps)
    if not isinstance(steps, int) or steps < 1 or steps % t:
        raise ValueError(f"vary {SAMPLING}={t}: it must divide the horizon data.steps = {steps}")
    tables["data"]["every"] = t
    if not minibatches:
        return
    # keep the base config's transitions per mini-batch
    base_every = base.data.every or base.training.steps_between_frames
    per_batch = base.data.steps // base_every * base.data.trajectories / base.training.minibatches
    trajectories = tables["data"].get("trajectories", base.data.trajectories)
    if not isinstance(trajectories, int) or trajectories < 1:
        return  # the config loader names the bad value
    transitions = steps // t * trajectories
    wanted = max(1.0, transitions / per_batch)
    divisors = [b for b in range(1, transitions + 1) if transitions % b == 0]
    tables["training"]["minibatches"] = min(divisors, key=lambda b: (abs(b - wanted), b))


def select_shard(cells: Sequence[Cell], spec: str) -> list[Cell]:
    """The cells of shard ``i/n`` (0 <= i < n; ``$SLURM_ARRAY_TASK_ID`` of ``--array=0-(n-1)``):
    every n-th cell starting at the i-th, so shards get similar mixes of settings."""
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n with integers, got {spec!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard i/n needs n >= 1 and 0 <= i < n, got {spec!r}")
    return list(cells[index::count])
