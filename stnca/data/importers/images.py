"""Videos (imageio) and folders of images, one frame per file in natural order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..._resources import check_memory
from .selection import (
    IMAGE_SUFFIXES,
    Imported,
    Selection,
    _finish,
    _pixels,
    _unit_range,
    natural_key,
)


def _read_video(path: Path, selection: Selection) -> Imported:
    import imageio.v3 as iio

    start, stop = selection.frames or (None, None)
    wanted = slice(start, stop, selection.every)
    # negative bounds count from the end, which a stream does not know: keep all, then slice
    from_end = any(v is not None and v < 0 for v in (start, stop))
    keep = range(2**62)[wanted] if not from_end else range(2**62)
    frames: list[np.ndarray] = []
    try:
        for index, frame in enumerate(iio.imiter(path)):
            if index >= keep.stop:
                break
            if index in keep:
                frames.append(np.asarray(frame))
                if len(frames) % 256 == 0:  # a stream of unknown length: stop before it
                    # fills the memory (the frames read so far, and their float copy)
                    check_memory(len(frames) * frames[0].size, f"reading {path}", copies=3)
    except Exception as error:  # the decoders raise many kinds  # noqa: BLE001
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path}: cannot decode this video ({reason})") from None
    if from_end:
        frames = frames[wanted]
    if not frames and selection.frames is not None:
        raise ValueError(f"{path}: frames {start}:{stop} keeps none of its frames")
    if not frames:
        raise ValueError(f"{path}: no frames decoded (an empty or damaged video?)")
    array = np.stack(frames)
    if array.ndim == 3:
        array = array[..., None]
    dtype = str(array.dtype)
    array = _unit_range(array)
    source = f"video, {len(frames)} frames kept, frame shape {frames[0].shape}"
    plain = dataclasses.replace(selection, frames=None, every=1)
    return _finish(path, source, array, "TYXC", plain, dtype=dtype)


def _read_folder(path: Path, selection: Selection) -> Imported:
    from PIL import Image, UnidentifiedImageError

    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=natural_key,
    )
    if not files:
        raise ValueError(f"{path}: an empty folder (no {', '.join(IMAGE_SUFFIXES)} images in it)")
    start, stop = selection.frames or (None, None)
    files = files[slice(start, stop, selection.every)]
    if not files:
        raise ValueError(f"{path}: frames {start}:{stop} keeps none of its images")
    frames: list[np.ndarray] = []
    modes: list[str] = []
    for file in files:
        try:
            with Image.open(file) as image:
                image.load()
                frame, mode = _pixels(image)
        except Image.DecompressionBombError:
            raise ValueError(f"{file} is too large an image to read safely") from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise ValueError(f"{file}: not a readable image ({error})") from None
        if frames and (frame.shape != frames[0].shape or mode != modes[0]):
            raise ValueError(
                f"{file}: frame of shape {frame.shape} (H, W, C), mode {mode}, but "
                f"{files[0].name} is {frames[0].shape}, mode {modes[0]}; all frames must have "
                "one size and colour mode (bit depth)"
            )
        frames.append(frame)
        modes.append(mode)
    array = np.stack(frames)
    source = f"folder of {len(files)} images ({files[0].name} ... {files[-1].name})"
    plain = dataclasses.replace(selection, frames=None, every=1)
    return _finish(path, source, array, "TYXC", plain, dtype=modes[0])
