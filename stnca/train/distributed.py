"""Training on several hosts: one program run by several processes (multi-controller JAX).

``initialise`` calls ``jax.distributed.initialize()``, which finds the coordinator, the
number of processes and this process's rank from the environment: SLURM (``srun``), Open
MPI (``mpirun``), Kubernetes and Cloud TPU are detected. Elsewhere set them by hand:
``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0; read by JAX), ``STNCA_NUM_PROCESSES``
and ``STNCA_PROCESS_ID`` (read here). ``JAX_LOCAL_DEVICE_IDS`` (e.g. ``0,1,2,3``) picks the
devices a process uses; under SLURM each process otherwise takes the one GPU numbered by its
``SLURM_LOCALID``. It must run before anything uses JAX's devices: ``stnca train --distributed`` (or
``STNCA_DISTRIBUTED=1``) calls it first. From then on ``jax.devices()`` lists every
process's devices, and ``training.devices = 0`` splits each mini-batch over all of them
(``stnca.train.sharding``).

Every process runs the same training (the same config, data and keys) on its own devices;
only process 0 writes the run folder and reports progress (``is_primary``). The folder is
read by every process on ``--resume``, so it must be on a file system they share.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import jax

ENVIRONMENT = "STNCA_DISTRIBUTED"
"""Set to 1 (or true, yes) to join a distributed run without ``--distributed``."""
PROCESSES = "STNCA_NUM_PROCESSES"
"""The number of processes, where no cluster is detected."""
PROCESS_ID = "STNCA_PROCESS_ID"
"""This process's rank (0 to processes - 1), where no cluster is detected."""


def _environment_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def requested(flag: bool = False) -> bool:
    """Whether to join a distributed run: ``flag`` (``--distributed``) or ``STNCA_DISTRIBUTED``."""
    value = os.environ.get(ENVIRONMENT, "").strip().lower()
    if value not in ("", "0", "false", "no", "1", "true", "yes"):
        raise ValueError(f"{ENVIRONMENT} must be 1 or 0 (true/false, yes/no), got {value!r}")
    return flag or value in ("1", "true", "yes")


def initialise(log: Callable[[str], None] = print) -> None:
    """Join the distributed run this process belongs to (``jax.distributed.initialize()``,
    the cluster detected from the environment); nothing if it has joined already.

    Raises:
        ValueError: no cluster found in the environment, or JAX's devices already in use.
    """
    if jax.distributed.is_initialized():
        return
    processes, process_id = _environment_int(PROCESSES), _environment_int(PROCESS_ID)
    try:
        jax.distributed.initialize(num_processes=processes, process_id=process_id)
    except (ValueError, RuntimeError) as error:
        reason = " ".join(str(error).split())  # JAX's message on one line
        raise ValueError(
            f"--distributed: could not join a distributed run; launch one process per GPU or "
            f"host with srun (SLURM) or mpirun, or set JAX_COORDINATOR_ADDRESS, {PROCESSES} "
            f"and {PROCESS_ID} ({reason})"
        ) from None
    log(
        f"process {jax.process_index()} of {jax.process_count()}: "
        f"{jax.local_device_count()} local devices, {jax.device_count()} in all"
    )


def is_primary() -> bool:
    """Whether this process writes files and reports (process 0; always true alone)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process of a distributed run reaches the barrier ``name``."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
