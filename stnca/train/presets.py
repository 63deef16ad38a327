"""Packaged training configs a user starts from: the paper's image-morphing defaults."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path

from .config import Config, config_from_dict

IMAGES_PRESET = Path(__file__).resolve().parents[1] / "presets" / "images.toml"
"""The image-morphing defaults (`stnca train --images`): the paper's Fig 7 settings."""


def images_config(
    images: Sequence[str | os.PathLike], base_dir: str | os.PathLike | None = None
) -> Config:
    """The paper's image-morphing config (``presets/images.toml``) with ``images`` to morph
    through, in order: image files, or ``emoji:NAME`` for the packaged ones.

    Args:
        images: at least two; the first is where the morph starts.
        base_dir: the folder relative image paths are read from (default: the current one).
    """
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if len(images) < 2:
        raise ValueError(
            f"images: a morph needs at least two images to morph through (the first is where "
            f"the morph starts), got {len(images)}"
        )
    tables = tomllib.loads(IMAGES_PRESET.read_text(encoding="utf-8"))
    tables["data"]["images"] = [str(image) for image in images]
    return config_from_dict(tables, base_dir=Path.cwd() if base_dir is None else Path(base_dir))
