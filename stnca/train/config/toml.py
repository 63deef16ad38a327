"""The TOML layer: a whole ``Config``, values coerced to each field's type with messages
that name the key, ``config_from_dict`` and ``load_config``."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import tomli_w

from ...data.images import EMOJI_PREFIX
from ...data.io import check_regular_file
from .data import DATA_SOURCES, FileData, GrayScottData, ImageData, PdeData
from .model import ModelConfig
from .training import TrainingConfig


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole training configuration."""

    model: ModelConfig = ModelConfig()
    data: Any = GrayScottData()
    training: TrainingConfig = TrainingConfig()
    base_dir: str = "."
    """Folder that relative paths in ``data`` are resolved against (the config file's)."""

    def __post_init__(self):
        names = self.model.conditions
        if names and isinstance(self.data, ImageData | PdeData):
            raise ValueError(
                f"model.conditions needs gray_scott or file data ({self.data.source} data "
                "cannot be conditioned yet)"
            )
        if isinstance(self.data, PdeData) and self.model.dimensions != 2:
            self.data.check_family(self.model.dimensions)
        if isinstance(self.data, GrayScottData):
            self.data.parameter_points(names)  # checks the names and the points
            if names and not (self.data.points or self.data.grid):
                raise ValueError(
                    f"model.conditions {list(names)} need data.points or data.grid: the "
                    f"parameter points to train on"
                )

    def horizon(self) -> int | None:
        """The training horizon ``M t`` in NCA steps (``None`` for file data: it depends on
        the file's frames)."""
        t = self.training.steps_between_frames
        if isinstance(self.data, ImageData):
            return (len(self.data.images) + self.data.final_repeats - 2) * t
        if isinstance(self.data, GrayScottData):
            return self.data.steps // (self.data.every or t) * t
        if isinstance(self.data, PdeData):
            steps, every = self.data.frames()
            return steps // every * t
        return None

    def replace(self, section: str | None = None, **changes) -> Config:
        """A copy with ``changes`` applied to ``section`` (or to the config itself)."""
        if section is None:
            return dataclasses.replace(self, **changes)
        updated = dataclasses.replace(getattr(self, section), **changes)
        return dataclasses.replace(self, **{section: updated})

    def resolve(self, path: str) -> Path:
        """A data path made absolute against ``base_dir``."""
        return (Path(self.base_dir) / path).resolve()

    def to_dict(self) -> dict[str, Any]:
        """The config as plain TOML-ready tables (``None`` values left out)."""

        def table(settings) -> dict[str, Any]:
            out = {}
            for field in dataclasses.fields(settings):
                value = getattr(settings, field.name)
                if value is None:
                    continue
                if isinstance(value, tuple):
                    value = list(value)
                if field.name == "path" and isinstance(settings, FileData):
                    value = str(self.resolve(value))
                if isinstance(value, list) and field.name == "images":
                    value = [
                        v if v.startswith(EMOJI_PREFIX) else str(self.resolve(v)) for v in value
                    ]
                out[field.name] = value
            return out

        return {
            "model": table(self.model),
            "data": table(self.data),
            "training": table(self.training),
        }

    def to_toml(self) -> str:
        """The config as TOML text (the resolved config written beside a trained model)."""
        return tomli_w.dumps(self.to_dict())


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check a TOML value against a field's type; return it converted (lists to tuples)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        lists = [a for a in options if typing.get_origin(a) is tuple]
        if isinstance(value, list) and lists:  # `str | tuple[str, ...]` given a list
            return _coerce(value, lists[0], where)
        return _coerce(value, options[0], where)
    if origin is dict:  # a sub-table of numbers, e.g. [data.parameters]
        _, item = typing.get_args(annotation)
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a table, got {value!r}")
        return {str(k): _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        (item,) = {a for a in typing.get_args(annotation) if a is not Ellipsis}
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list of {_type_name(item)}, got {value!r}")
        return tuple(_coerce(v, item, where) for v in value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {annotation!r}")  # pragma: no cover


def _build(cls: type, table: Any, section: str):
    if not isinstance(table, dict):
        raise ValueError(f"[{section}] must be a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in [{section}]; known keys: {', '.join(known)}"
        )
    values = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in table.items()}
    return cls(**values)


def config_from_dict(tables: dict[str, Any], base_dir: str | os.PathLike = ".") -> Config:
    """Validate plain tables (as read from TOML) into a ``Config``."""
    unknown = sorted(set(tables) - {"model", "data", "training"})
    if unknown:
        raise ValueError(f"unknown table [{unknown[0]}]; a config has [model], [data], [training]")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"[{name}] must be a single table of keys, got {table!r:.60}")
    data = dict(tables.get("data", {}))
    source = data.get("source", "gray_scott")
    if not isinstance(source, str) or source not in DATA_SOURCES:
        raise ValueError(f"data.source must be one of {sorted(DATA_SOURCES)}, got {source!r}")
    return Config(
        model=_build(ModelConfig, tables.get("model", {}), "model"),
        data=_build(DATA_SOURCES[source], data, "data"),
        training=_build(TrainingConfig, tables.get("training", {}), "training"),
        base_dir=str(Path(base_dir).resolve()),
    )


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a TOML config file."""
    path = check_regular_file(Path(path), "config file", "a TOML file")
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"config {path} is not valid TOML: {error}") from None
    try:
        return config_from_dict(tables, base_dir=path.parent)
    except ValueError as error:
        raise ValueError(f"config {path}: {error}") from None
