"""The device arrays of K training runs: as they are for one run, stacked for several.

``train`` (K = 1) leaves every array as it is and calls the plain epoch function, so its
numerics are those of the unbatched code. ``train_seeds`` (K > 1) stacks each run's arrays
on a leading run axis and maps functions over it with ``eqx.filter_vmap``, so that one
compiled program advances all runs. ``Lanes`` is the one place that tells the two apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

T = TypeVar("T")
BATCHED = eqx.if_array(0)
"""``in_axes`` of an argument stacked over the runs (``None``: shared by all)."""


class Lanes:
    """How the arrays of ``count`` runs are laid out (see the module's docstring).

    Args:
        count: the number of runs K (>= 1).
    """

    def __init__(self, count: int):
        self.count = count
        self.stacked = count > 1

    def stack(self, trees: Sequence[T]) -> T:
        """One tree from the K runs' trees of the same structure."""
        if not self.stacked:
            return trees[0]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)

    def lane(self, tree: T, run: int) -> T:
        """Run ``run``'s tree (a copy of its slice when stacked)."""
        return jax.tree.map(lambda leaf: leaf[run], tree) if self.stacked else tree

    def floats(self, values: Any) -> list[float]:
        """One Python float per run from a scalar (K = 1) or a ``(K,)`` array."""
        return [float(v) for v in np.asarray(values).reshape(self.count)]

    def map(self, fn: Callable[..., Any], in_axes: tuple, *, jit: bool = False) -> Callable:
        """``fn`` over the runs: ``fn`` itself for K = 1, else ``eqx.filter_vmap(fn, in_axes)``
        (``BATCHED`` for each stacked positional argument, ``None`` for shared ones), jitted
        with ``eqx.filter_jit`` if ``jit``."""
        if not self.stacked:
            return fn
        return _mapped(fn, in_axes, jit)


MAPPED_KEPT = 64


@functools.lru_cache(maxsize=MAPPED_KEPT)
def _mapped(fn: Callable[..., Any], in_axes: tuple, jit: bool) -> Callable:
    """``Lanes.map``'s wrapper, one per function, ``in_axes`` and ``jit`` (the most recently
    used ``MAPPED_KEPT``), so that a function mapped again (the module's functions,
    ``stnca.train.algorithm.shared_epoch``'s epochs) is compiled once per shape."""
    mapped = eqx.filter_vmap(fn, in_axes=in_axes)
    return eqx.filter_jit(mapped) if jit else mapped
