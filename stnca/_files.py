"""Atomic file writing: a file is either wholly written or not there (or left as it was)."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_MARK = ".tmp"
"""What ``atomic_path``'s temporary names carry before the suffix: ``.STEM.XXXX.tmpSUFFIX``."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary file keeps ``path``'s suffix, so writers that pick a format by extension
    (imageio, matplotlib) still work. If the block raises, the temporary file is removed
    and ``path`` is untouched. Parent folders are created as needed.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(target)
        handle, name = tempfile.mkstemp(
            prefix=f".{target.stem}.{os.getpid()}.",
            suffix=f"{TEMPORARY_MARK}{target.suffix}",
            dir=target.parent,
        )
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(target)) from None
    os.close(handle)
    temporary = Path(name)
    os.chmod(temporary, 0o666 & ~_umask())
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        try:
            os.replace(temporary, target)
        except OSError as error:  # e.g. the target is a folder: name it, not the temporary
            raise OSError(error.errno, error.strerror, str(target)) from None
        _fsync_folder(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _remove_orphans(target: Path) -> None:
    """Delete the temporaries of ``target`` whose writing process is gone (killed mid-write:
    ``.NAME.PID.xxxx.tmp.SUFFIX``, the PID no longer running). A live writer's are kept."""
    for stale in target.parent.glob(f".{target.stem}.*{TEMPORARY_MARK}{target.suffix}"):
        pid = stale.name[len(target.stem) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            continue


def remove_stale_temporaries(folder: str | os.PathLike, names) -> list[Path]:
    """Delete temporary files that ``atomic_path`` left for ``names`` in ``folder`` when a
    process was killed mid-write (``.model.abc123.tmp.eqx`` for ``model.eqx``); return them."""
    removed = []
    for name in names:
        target = Path(name)
        for stale in Path(folder).glob(f".{target.stem}.*{TEMPORARY_MARK}{target.suffix}"):
            if stale.is_file():
                stale.unlink(missing_ok=True)
                removed.append(stale)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def json_safe(value):
    """``value`` with every non-finite float replaced by ``None`` (strict JSON), recursively."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_streamed(
    out: str | os.PathLike, shape: tuple[int, ...], frames, on_frame=None, dims: int = 2
):
    """Write ``frames`` (an iterator over the frame axis, ``shape[-2 - dims]`` of them, with
    ``dims`` lattice axes after it) to the float32 ``.npy`` file ``out`` as they come: a
    memory map on a temporary file, renamed at the end (nothing is left if
    ``on_frame(frame)`` raises). Returns the file, memory-mapped."""
    import numpy as np

    with atomic_path(out) as temporary:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32, shape=shape)
        for index, frame in enumerate(frames):
            frame = np.asarray(frame)
            if on_frame is not None:
                on_frame(frame)
            np.moveaxis(array, -2 - dims, 0)[index] = frame
        array.flush()
        del array
    return np.load(out, mmap_mode="r")
