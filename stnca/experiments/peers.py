"""Peer emulators: the neural PDE emulators a user would pick instead of an NCA.

The four standard architectures of the APEBench benchmark, from **pdequinox** (its
JAX/Equinox library; the optional extra ``stnca[peers]``, in ``dev``), each at the
library's default size: ``convnet`` (10 convolutions of 16 channels), ``resnet`` (6
residual blocks of 32 channels), ``unet`` (4 levels, 16 channels) and ``fno`` (4 Fourier
blocks, 12 modes, 32 channels). Each is trained as APEBench trains them: an autoregressive
*residual* next-frame model (``x[m+1] = x[m] + net(x[m])``, in the NCA's min-max units) on
exactly the NCA's training data, with a loss unrolled over several frames, Adam, and a
wall-clock budget; the learning rate and the unroll length are chosen on a validation
trajectory (the same family, another seed) from ``TUNING`` (the unrolls the data's
trajectories are long enough for), each tried for a quarter of
the budget, and the chosen pair is then trained for the whole budget. The model kept is
the one with the lowest validation rollout error (checked every ``CHECK_EVERY`` updates).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

PEERS = ("convnet", "resnet", "unet", "fno")
"""The peer architectures, by name."""
TUNING = ((1e-3, 1), (1e-3, 4), (3e-4, 1), (3e-4, 4))
"""(learning rate, unrolled frames) pairs tried for each peer."""
BATCH = 8
"""Windows per update."""
CHECK_EVERY = 25
"""Updates between validation checks."""


def _network(name: str, channels: int, key: jax.Array) -> Callable[[jax.Array], jax.Array]:
    try:
        import pdequinox as pdeqx
    except ImportError:  # pragma: no cover - installed with the dev extra
        raise ValueError("peer emulators need pdequinox: pip install 'stnca[peers]'") from None
    arch = pdeqx.arch
    makers: dict[str, Callable[..., Any]] = {
        "convnet": arch.ConvNet,
        "resnet": arch.ClassicResNet,
        "unet": arch.ClassicUNet,
        "fno": arch.ClassicFNO,
    }
    if name not in makers:
        raise ValueError(f"peers must be among {', '.join(PEERS)}, got {name!r}")
    return makers[name](2, channels, channels, key=key)


def parameter_count(tree) -> int:
    """The number of trainable numbers (floating-point array entries) in a model."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return int(sum(leaf.size for leaf in leaves))


def _trailing(values: jax.Array, ndim: int) -> jax.Array:
    """Per-channel ``values`` shaped to broadcast against an array of ``ndim`` axes."""
    return jnp.reshape(values, (1,) * (ndim - 1) + (-1,))


class Peer(eqx.Module):
    """A residual next-frame emulator on ``(H, W, C)`` states in physical units."""

    net: Callable[[jax.Array], jax.Array]
    low: jax.Array
    span: jax.Array
    name: str = eqx.field(static=True)

    def step(self, state: jax.Array) -> jax.Array:
        """The next frame of one state (units of ``low``/``span``: normalised)."""
        inside = jnp.moveaxis(state, -1, 0)
        return state + jnp.moveaxis(self.net(inside), 0, -1)

    def rollout(self, initial: jax.Array, frames: int) -> jax.Array:
        """Frames ``0..frames`` from ``initial`` ``(R, H, W, C)``, physical units:
        ``(R, frames + 1, H, W, C)``."""
        z = self.normalise(initial)

        def advance(state, _):
            state = jax.vmap(self.step)(state)
            return state, state

        _, out = jax.lax.scan(advance, z, None, length=frames)
        out = jnp.concatenate([z[None], out])
        out = jnp.moveaxis(out, 0, 1)
        return out * _trailing(self.span, out.ndim) + _trailing(self.low, out.ndim)

    def normalise(self, x) -> jax.Array:
        """Physical units to the peer's min-max units."""
        return (x - _trailing(self.low, x.ndim)) / _trailing(self.span, x.ndim)

    @property
    def parameters(self) -> int:
        """The number of trainable numbers."""
        return parameter_count(self.net)


def check_lattice(name: str, height: int, width: int) -> None:
    """Refuse a lattice the architecture cannot run on: the U-Net halves it four times (a
    side divisible by 16), the FNO keeps 12 Fourier modes (a side of at least 24)."""
    if name == "unet" and (height % 16 or width % 16):
        raise ValueError(f"the unet peer needs lattice sides divisible by 16, got {height}x{width}")
    if name == "fno" and min(height, width) < 24:
        raise ValueError(f"the fno peer needs lattice sides of at least 24, got {height}x{width}")


def make_peer(name: str, data: np.ndarray, *, key: jax.Array) -> Peer:
    """An untrained peer for trajectories like ``data`` ``(R, T, H, W, C)``, its units the
    data's min-max range per channel."""
    low = np.min(data, axis=(0, 1, 2, 3))
    span = np.max(data, axis=(0, 1, 2, 3)) - low
    span = np.where(span > 0, span, 1.0)
    net = _network(name, data.shape[-1], key)
    return Peer(net, jnp.asarray(low, jnp.float32), jnp.asarray(span, jnp.float32), name)


@dataclasses.dataclass
class PeerResult:
    """A trained peer, how it was chosen and what it cost."""

    peer: Peer
    learning_rate: float
    unroll: int
    seconds: float
    updates: int
    validation_error: float
    tried: list[dict[str, Any]]


def _windows(data: np.ndarray, unroll: int) -> np.ndarray:
    """Every window of ``unroll + 1`` consecutive frames: ``(N, unroll + 1, H, W, C)``."""
    frames = data.shape[1]
    if frames < unroll + 1:
        raise ValueError(f"the data need at least {unroll + 1} frames, got {frames}")
    return np.concatenate([data[:, m : m + unroll + 1] for m in range(frames - unroll)])


def _validation_error(peer: Peer, validation: jax.Array) -> float:
    prediction = _rollout(peer, validation[:, 0], validation.shape[1] - 1)
    error = jnp.sqrt(jnp.sum((prediction - validation) ** 2, axis=(2, 3, 4)))
    norm = jnp.sqrt(jnp.sum(validation**2, axis=(2, 3, 4)))
    value = float(jnp.mean(error[:, 1:] / norm[:, 1:]))
    return value if math.isfinite(value) else math.inf


@eqx.filter_jit
def _rollout(peer: Peer, initial, frames: int):
    return peer.rollout(initial, frames)


def _loss(model: Peer, batch) -> jax.Array:
    """Mean squared error of the rollout over each window's frames (normalised units)."""

    def one(window):
        def advance(x, target):
            x = model.step(x)
            return x, jnp.mean((x - target) ** 2)

        _, errors = jax.lax.scan(advance, window[0], window[1:])
        return jnp.mean(errors)

    return jnp.mean(jax.vmap(one)(batch))


_OPTIMIZER = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)


@eqx.filter_jit
def _update(model: Peer, state, batch):
    value, grads = eqx.filter_value_and_grad(_loss)(model, batch)
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, state = _OPTIMIZER.update(grads, state, params)
    return eqx.apply_updates(model, updates), state, value


def _train_one(
    peer: Peer,
    data: np.ndarray,
    validation: np.ndarray,
    learning_rate: float,
    unroll: int,
    seconds: float,
    key: jax.Array,
) -> tuple[Peer, float, int]:
    """Train for ``seconds`` of wall-clock time; return the best peer on ``validation``."""
    windows = peer.normalise(jnp.asarray(_windows(data, unroll)))
    state = _OPTIMIZER.init(eqx.filter(peer, eqx.is_inexact_array))
    state.hyperparams["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
    held = jnp.asarray(validation)
    best, best_error, updates = peer, _validation_error(peer, held), 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        key, pick = jax.random.split(key)
        batch = windows[jax.random.randint(pick, (BATCH,), 0, windows.shape[0])]
        peer, state, _ = _update(peer, state, batch)
        updates += 1
        if updates % CHECK_EVERY == 0:
            error = _validation_error(peer, held)
            if error < best_error:
                best, best_error = peer, error
    error = _validation_error(peer, held)
    if error < best_error:
        best, best_error = peer, error
    return best, best_error, updates


def train_peer(
    name: str,
    data: np.ndarray,
    validation: np.ndarray,
    *,
    seconds: float,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> PeerResult:
    """Tune (``TUNING``, a quarter of ``seconds`` each) and train (``seconds``) the peer
    ``name`` on ``data`` ``(R, T, H, W, C)`` (frames one model step apart), choosing on
    ``validation`` ``(R', T', H, W, C)``."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    data, validation = np.asarray(data, np.float32), np.asarray(validation, np.float32)
    key = jax.random.key(seed)
    untrained = make_peer(name, data, key=key)
    tried: list[dict[str, Any]] = []
    for learning_rate, unroll in [(r, u) for r, u in TUNING if u < data.shape[1]]:
        _, error, updates = _train_one(
            untrained, data, validation, learning_rate, unroll, seconds / 4, key
        )
        tried.append({"learning_rate": learning_rate, "unroll": unroll, "error": error})
        if log is not None:
            log(f"  {name}: lr {learning_rate:g}, unroll {unroll}: validation {error:.4f}")
    chosen = min(tried, key=lambda row: row["error"])
    rate, unroll = float(chosen["learning_rate"]), int(chosen["unroll"])
    start = time.perf_counter()
    peer, error, updates = _train_one(untrained, data, validation, rate, unroll, seconds, key)
    return PeerResult(
        peer,
        rate,
        unroll,
        time.perf_counter() - start,
        updates,
        error,
        tried,
    )


def save_peer(path, result: PeerResult, **extra: Any) -> None:
    """Write a trained peer (arrays and a JSON header, like a model file; no pickle)."""
    from ..serialization import save_tree

    header = {
        "kind": "peer",
        "name": result.peer.name,
        "channels": int(result.peer.low.shape[0]),
        "learning_rate": result.learning_rate,
        "unroll": result.unroll,
        "seconds": result.seconds,
        "updates": result.updates,
        "validation_error": result.validation_error,
        "tried": result.tried,
        "parameters": result.peer.parameters,
        **extra,
    }
    save_tree(path, result.peer, header)


def load_peer(path) -> tuple[Peer, dict[str, Any]]:
    """A peer written by ``save_peer`` and its header."""
    from ..serialization import load_tree, read_header

    header = read_header(path, "peer")
    channels = int(header["channels"])
    like_data = np.zeros((1, 1, 1, 1, channels), np.float32)
    skeleton = make_peer(header["name"], like_data, key=jax.random.key(0))
    return load_tree(path, skeleton), header
