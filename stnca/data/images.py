"""Image sequences as training data (the paper's section 3.2).

Images become premultiplied RGBA in ``[0, 1]``: colour times opacity, so a transparent
pixel is all zeros, like the empty lattice outside the image (``fixed`` boundaries). RGB
and grey images get alpha 1. Downsampling averages over areas (Pillow's box filter on the
premultiplied values), so edges do not alias.

Images shipped with stnca (the paper's emoji, see ``emoji/README.md`` for the licence) can
be named as ``emoji:NAME``, e.g. ``emoji:rooster``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .io import check_regular_file

EMOJI_FOLDER = Path(__file__).with_name("emoji")
EMOJI_PREFIX = "emoji:"


def emoji_names() -> list[str]:
    """Names of the packaged emoji images (usable as ``emoji:NAME``)."""
    return sorted(p.stem for p in EMOJI_FOLDER.glob("*.png"))


def resolve_image(name: str | os.PathLike, base_dir: str | os.PathLike = ".") -> Path:
    """The file behind an image name: ``emoji:NAME`` or a path (relative to ``base_dir``)."""
    text = str(name)
    if text.startswith(EMOJI_PREFIX):
        stem = text[len(EMOJI_PREFIX) :]
        path = EMOJI_FOLDER / f"{stem}.png"
        if not path.is_file():
            raise ValueError(
                f"unknown packaged image {text!r}; choose from "
                f"{', '.join(EMOJI_PREFIX + n for n in emoji_names())}"
            )
        return path
    return (Path(base_dir) / text).resolve()


def _size(size) -> tuple[int, int] | None:
    if size is None or size == 0:
        return None
    if isinstance(size, int):
        size = (size, size)
    height, width = (int(s) for s in size)
    if height < 3 or width < 3:
        raise ValueError(f"image size must be at least 3x3, got {height}x{width}")
    return height, width


def _rgba(image: Image.Image) -> np.ndarray:
    """Straight (not premultiplied) RGBA floats in [0, 1] from any Pillow image mode."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit (or float) grey: Pillow's RGBA conversion would clip it at 255
        grey = np.asarray(image, np.float32)
        if image.mode != "F":
            grey = grey / 65535.0
        grey = np.clip(grey, 0.0, 1.0)
        return np.stack([grey, grey, grey, np.ones_like(grey)], axis=-1)
    return np.asarray(image.convert("RGBA"), np.float32) / 255.0


def load_image(path: str | os.PathLike, size=60) -> np.ndarray:
    """Read an image as premultiplied RGBA float32 ``(height, width, 4)`` in ``[0, 1]``.

    Args:
        path: any image Pillow reads (PNG, JPEG, ...). RGB and grey images get alpha 1;
            palette and grey-with-alpha images keep their transparency.
        size: target ``S`` (square) or ``(height, width)``, reached by area averaging;
            ``None`` or 0 keeps the image's own size.
    """
    path = check_regular_file(Path(path), "image", "an image file")
    try:
        with Image.open(path) as image:
            image.load()
            pixels = _rgba(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError:
        raise ValueError(
            f"{path} is too large an image to read safely (over {Image.MAX_IMAGE_PIXELS:_} "
            f"pixels: Pillow's decompression-bomb limit); resize it first"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable image ({error})") from None
    pixels[..., :3] *= pixels[..., 3:4]
    target = _size(size)
    if target is None or target == pixels.shape[:2]:
        return pixels
    height, width = target
    channels = [
        np.asarray(
            Image.fromarray(pixels[..., c], mode="F").resize((width, height), Image.Resampling.BOX)
        )
        for c in range(4)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def image_sequence(
    paths: Sequence[str | os.PathLike],
    size=60,
    final_repeats: int = 2,
    base_dir: str | os.PathLike = ".",
) -> np.ndarray:
    """Load images as one trajectory ``(frames, height, width, 4)``.

    Args:
        paths: image files or ``emoji:NAME``, in order (at least one).
        size: target size for every image (see ``load_image``); with ``None`` or 0 the
            images must already share one size.
        final_repeats: how many times the last image appears (the paper uses 2, so that
            the dynamics must hold it: a stable attractor).
        base_dir: folder relative paths are resolved against.
    """
    if not paths:
        raise ValueError("give at least one image")
    if final_repeats < 1:
        raise ValueError(f"final_repeats must be >= 1, got {final_repeats}")
    images = [load_image(resolve_image(p, base_dir), size) for p in paths]
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        listing = ", ".join(
            f"{Path(str(p)).name}: {i.shape[0]}x{i.shape[1]}"
            for p, i in zip(paths, images, strict=True)
        )
        raise ValueError(f"images have different sizes ({listing}); set a target size")
    frames = images + [images[-1]] * (final_repeats - 1)
    return np.stack(frames)
