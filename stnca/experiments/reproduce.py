"""One command per paper figure: the sweep files of ``configs/sweeps/``.

A sweep file names a base config (``base``, relative to the file), and per scale (``cpu``,
``paper``) the seeds, the varied keys in order (``vary = [["t", [8, 16]], ...]``), an
optional test lattice size, another base, and overrides of the base config
(``[cpu.config.training] epochs = 300``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

from ..data.io import check_regular_file
from ..train.config import Config, config_from_dict, load_config

FIGURES = {
    "fig4": "fig4_sampling.toml",
    "fig6": "fig6_noise.toml",
    "fig8": "fig8_kernels_activations.toml",
    "fig9": "fig9_sampling_channels.toml",
}
SCALES = ("cpu", "paper")
SWEEPS = Path(__file__).resolve().parents[2] / "configs" / "sweeps"
"""The sweep files, in a clone of the repository (the README's editable install)."""


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """A figure's sweep at one scale."""

    figure: str
    base: Config
    vary: list[tuple[str, list]]
    seeds: int
    test_size: int | None


def sweep_file(name: str) -> Path:
    """``fig4`` (and the other figures) or a sweep file's path -> the file."""
    if name in FIGURES:
        path = SWEEPS / FIGURES[name]
        if not path.is_file():
            raise ValueError(
                f"{path} not found: stnca reproduce reads configs/sweeps/ of a clone of the "
                "repository (install it with pip install -e .), or give a sweep file's path"
            )
        return path
    if not name.endswith(".toml"):
        raise ValueError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)} or a .toml")
    return check_regular_file(Path(name), "sweep file", "a TOML file")


def load_plan(path: str | os.PathLike, scale: str) -> SweepPlan:
    """Read a sweep file at ``scale`` (``cpu`` or ``paper``); every key is type-checked and
    a message names the file."""
    path = Path(path)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"sweep file {path} is not valid TOML: {error}") from None

    def bad(what: str) -> ValueError:
        return ValueError(f"sweep file {path}: {what}")

    settings = tables.get(scale)
    if not isinstance(settings, dict):
        raise bad(f"no [{scale}] table")
    unknown = sorted(set(settings) - {"base", "seeds", "vary", "test_size", "config"})
    if unknown:
        raise bad(f"unknown key {scale}.{unknown[0]}")
    base_name = settings.get("base", tables.get("base"))
    if not isinstance(base_name, str) or not base_name:
        raise bad('base must name the base config file (base = "../config.toml")')
    base = load_config(path.parent / base_name)
    overrides = settings.get("config", {})
    if not isinstance(overrides, dict):
        raise bad(f"[{scale}.config] must be tables of config keys")
    if overrides:
        merged = base.to_dict()
        for section, values in overrides.items():
            if section not in merged or not isinstance(values, dict):
                raise bad(f"[{scale}.config.{section}] is not a table of model, data or training")
            merged[section].update(values)
        try:
            base = config_from_dict(merged, base.base_dir)
        except ValueError as error:
            raise bad(f"[{scale}.config]: {error}") from None
    vary = settings.get("vary")
    if (
        not isinstance(vary, list)
        or not vary
        or not all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], list)
            for v in vary
        )
    ):
        raise bad(f"{scale}.vary must be a non-empty list [[KEY, [VALUES...]], ...]")
    seeds = settings.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise bad(f"{scale}.seeds must be an integer >= 1, got {seeds!r}")
    test_size = settings.get("test_size")
    if test_size is not None and (
        isinstance(test_size, bool) or not isinstance(test_size, int) or test_size < 3
    ):
        raise bad(f"{scale}.test_size must be an integer >= 3, got {test_size!r}")
    return SweepPlan(
        figure=str(tables.get("figure", path.stem)),
        base=base,
        vary=[(key, values) for key, values in vary],
        seeds=seeds,
        test_size=test_size,
    )
