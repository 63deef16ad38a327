"""Data parallelism: each mini-batch's transitions split over several devices.

Algorithm 2's inner step rolls a mini-batch of transitions out and differentiates the
loss; the transitions are independent, so they can run on different devices. With ``n``
devices a one-axis ``jax.sharding.Mesh`` named ``"data"`` is laid over the first ``n`` of
``jax.devices()``, and inside the one jitted epoch:

- the mini-batch's start states and targets are constrained to be split along their
  transition axis (``jax.lax.with_sharding_constraint``, ``PartitionSpec("data")``): each
  device rolls out and differentiates ``batch / n`` transitions;
- everything else is replicated: the parameters and optimiser state, the propagated start
  states of all transitions and the data (every device holds a copy); the epoch's outputs
  are constrained to be replicated, so that every process can read them;
- XLA (GSPMD) partitions the program: the per-transition losses are gathered, and the
  gradient, a sum over the transitions, is all-reduced before the (replicated) optimiser
  update.

The numbers are those of one device up to the order of floating-point sums. Random draws
(stochastic updates, sub-sampled losses) are the same as on one device, since JAX's
``threefry`` draws do not depend on how an array is split.

Several processes (``jax.distributed.initialize()``, see ``stnca.train.distributed``) see
every process's devices in ``jax.devices()``; the mesh then spans them all and each process
runs the same program on its own devices.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "data"
"""The name of the mesh axis the transitions are split along."""

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, eq=False)
class DataParallel:
    """Where an epoch's arrays live when its mini-batches are split over devices.

    Args:
        mesh: a one-axis mesh (axis ``AXIS``) over the devices used.
    """

    mesh: Mesh

    @property
    def devices(self) -> int:
        """The number of devices the mini-batches are split over."""
        return self.mesh.size

    @property
    def split_sharding(self) -> NamedSharding:
        """Leading (transition) axis split over the devices, the other axes whole."""
        return NamedSharding(self.mesh, PartitionSpec(AXIS))

    @property
    def replicated_sharding(self) -> NamedSharding:
        """A full copy on every device."""
        return NamedSharding(self.mesh, PartitionSpec())

    def split(self, x: jax.Array) -> jax.Array:
        """Inside jit: ``x`` (a mini-batch, transitions first) split over the devices."""
        return jax.lax.with_sharding_constraint(x, self.split_sharding)

    def replicated(self, tree: T) -> T:
        """Inside jit: every array of ``tree`` replicated on all devices."""
        dynamic, static = eqx.partition(tree, eqx.is_array)
        sharding = self.replicated_sharding
        dynamic = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), dynamic)
        return eqx.combine(dynamic, static)

    def place(self, tree: T) -> T:
        """Outside jit: every array of ``tree`` copied onto all devices (arrays already
        placed so are left as they are). In a run of several processes every process must
        pass the same values: each copies its own to its devices."""
        dynamic, static = eqx.partition(tree, eqx.is_array)
        sharding = self.replicated_sharding
        dynamic = jax.tree.map(lambda x: _replicate(x, sharding), dynamic)
        return eqx.combine(dynamic, static)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with every array argument placed on all devices first, so that a jitted
        ``fn`` runs on the mesh whatever its arguments' devices."""

        @functools.wraps(fn)
        def placed(*args):
            return fn(*self.place(args))

        return placed


def _replicate(x: jax.Array, sharding: NamedSharding) -> jax.Array:
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    # several processes: device_put refuses arrays another device holds, so go by the host
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _replicate(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def largest_divisor(size: int, limit: int) -> int:
    """The largest divisor of ``size`` that is at most ``limit`` (>= 1)."""
    return max(d for d in range(1, min(size, limit) + 1) if size % d == 0)


def plan(
    devices: int,
    batch: int,
    *,
    log: Callable[[str], None] = print,
    available: list | None = None,
    what: str = "mini-batch",
) -> DataParallel | None:
    """The devices mini-batches of ``batch`` transitions are split over, for the setting
    ``training.devices = devices``; ``None`` for one device (nothing split or placed).

    Args:
        devices: 0 for every device in ``available``, else how many (the first ones).
        batch: transitions rolled out at once: a mini-batch, ``M x R / B``, or a
            ``training.rollout_chunk``.
        log: where the one message about a fallback goes.
        available: the devices to choose from (default ``jax.devices()``: every process's).
        what: how the messages call a batch ("mini-batch", "rollout chunk").

    Raises:
        ValueError: more devices asked for than there are; or, with several processes, a
            setting or mini-batch size that would leave a process's devices out.
    """
    available = jax.devices() if available is None else list(available)
    wanted = devices or len(available)
    if wanted > len(available):
        raise ValueError(
            f"training.devices is {devices} but only {len(available)} devices are visible "
            f"({available[0].platform}); use 0 for all of them"
        )
    used = largest_divisor(batch, wanted)
    processes = {device.process_index for device in available}
    if len(processes) > 1 and used != len(available):
        raise ValueError(
            f"a run of {len(processes)} processes splits each mini-batch over all "
            f"{len(available)} devices: training.devices must be 0 or {len(available)} and "
            f"the {what} size ({batch} transitions) a multiple of {len(available)}"
        )
    if used != wanted:
        where = "runs on one device" if used == 1 else f"is split over {used} of them"
        log(
            f"training.devices: a {what} of {batch} transitions does not split evenly "
            f"over {wanted} devices; it {where}"
        )
    if used == 1:
        return None
    if used == wanted:
        log(
            f"training.devices: each {what} of {batch} transitions is split over "
            f"{used} {available[0].platform} devices"
        )
    return DataParallel(Mesh(np.asarray(available[:used]), (AXIS,)))
