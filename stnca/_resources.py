"""Refuse work that cannot fit before allocating it: memory estimates from shapes."""

from __future__ import annotations

import os

MAX_STEPS = 2**31 - 1
"""The longest rollout or simulation (``jax.lax.scan`` counts its steps in 32 bits)."""

FLOAT_BYTES = 4


def available_memory() -> int:
    """Bytes of memory free for this process (``MemAvailable``, else the physical total)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def check_memory(floats: int, what: str, *, copies: float = 2.0) -> int:
    """Raise ``ValueError`` naming the estimate if ``floats`` float32 values (times
    ``copies``: device buffers, host copies) cannot fit in the free memory; return the bytes."""
    needed = int(floats * FLOAT_BYTES * copies)
    free = available_memory()
    if needed > 0.8 * free:
        raise ValueError(
            f"{what} needs about {needed / 2**30:,.1f} GiB of memory, more than the "
            f"{free / 2**30:,.1f} GiB free here; make it smaller"
        )
    return needed


def check_disk(floats: int, folder, what: str) -> int:
    """Raise ``ValueError`` naming the estimate if ``floats`` float32 values cannot be written
    in ``folder`` (its nearest existing ancestor): less free disk than needed; return bytes."""
    import shutil
    from pathlib import Path

    needed = int(floats) * FLOAT_BYTES
    place = Path(folder).resolve()
    while not place.exists():
        place = place.parent
    free = shutil.disk_usage(place).free
    if needed > free:
        raise ValueError(
            f"{what} needs about {needed / 2**30:,.1f} GiB of disk, more than the "
            f"{free / 2**30:,.1f} GiB free in {place}; make it smaller"
        )
    return needed


STREAM_ABOVE = 2**27
"""Simulations and rollouts with more float values than this (512 MiB of frames) are written
frame by frame, with progress, instead of being held in memory."""
