"""The smallest rule that still works: hidden channels, then kernel-channel blocks of the
first layer, taken away while the error on a test trajectory stays within a tolerance of
the whole rule's (``stnca prune``); optionally retrained in between (prune, retrain,
repeat).

A pass tries each part once, in the order of how little its removal alone costs
(``inspect_function``), and keeps it out if the error with it and everything removed before
it out stays within ``(1 + tolerance)`` of the original's; a hidden channel is then dropped
from the model for real (a smaller NCA), a kernel-channel block is zeroed. Without
fine-tuning (``fine_tune_epochs = 0``) one pass is all: what is left is the original rule's
own weights.

With ``fine_tune_epochs = n > 0`` each round's removals are followed by ``n`` epochs of
retraining on the training data (``fine_tune``; removed blocks held at zero), then the next
round: another pass, or, when a pass takes nothing out, the one part whose removal alone
costs least, taken out anyway and kept out only if the retrained rule comes back within
the tolerance. It stops at the first such part that does not, or when nothing is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import equinox as eqx
import jax
import numpy as np

from .._validate import count
from ..model import NCA
from .fine_tune import fine_tune
from .inspect_function import rollout_error, without_hidden, without_kernel


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` found: the smaller ``model`` and what was taken out. ``rounds``: what
    each round removed (``removed_hidden_channels`` 1-based and blocks' ``channel`` 0-based,
    in the original's numbering; ``forced`` when taken out beyond the tolerance to be
    retrained back), the ``error`` after it, the ``fine_tuned_error`` and the retrained
    epoch kept (``fine_tune_epoch``), and whether it was ``kept``."""

    model: NCA
    error: float  # the original's
    pruned_error: float
    tolerance: float
    removed_hidden: list[int]  # 1-based, the original's numbering
    removed_blocks: list[tuple[int, int]]  # (channel, kernel) of the pruned model's w_in
    parameters: int  # the original's weights
    pruned_parameters: int  # the pruned model's nonzero weights
    fine_tune_epochs: int = 0
    rounds: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        kernels = self.model.perception_names
        return {
            "error": self.error,
            "pruned_error": self.pruned_error,
            "tolerance": self.tolerance,
            "hidden_channels": self.model.hidden_channels,
            "removed_hidden_channels": self.removed_hidden,
            "removed_blocks": [
                {"channel": c, "kernel": kernels[k]} for c, k in self.removed_blocks
            ],
            "parameters": self.parameters,
            "pruned_parameters": self.pruned_parameters,
            "fine_tune_epochs": self.fine_tune_epochs,
            "rounds": self.rounds,
        }


def nonzero_weights(model: NCA) -> int:
    """The weights of ``model`` that are not exactly zero."""
    arrays = [model.w_in, model.w_out, model.b_out] + [
        a for a in (model.b_in, model.kernel_weights) if a is not None
    ]
    return int(sum(np.count_nonzero(np.asarray(a)) for a in arrays))


def drop_hidden(model: NCA, hidden: list[int]) -> NCA:
    """A smaller NCA: ``model`` without the hidden channels ``hidden`` (0-based), the rest of
    its weights as they are."""
    keep = np.array(
        [c for c in range(model.channels) if c - model.observable_channels not in hidden], int
    )
    settings = model.hyperparameters() | {"hidden_channels": model.hidden_channels - len(hidden)}
    settings.pop("observable_channels", None)
    smaller = NCA(model.observable_channels, key=jax.random.key(0), **settings)
    smaller = eqx.tree_at(
        lambda m: (m.w_in, m.w_out, m.b_out),
        smaller,
        (model.w_in[:, keep, :], model.w_out[keep, :], model.b_out[keep]),
    )
    if model.b_in is not None:
        smaller = eqx.tree_at(lambda m: m.b_in, smaller, model.b_in)
    if model.kernel_weights is not None:
        smaller = eqx.tree_at(lambda m: m.kernel_weights, smaller, model.kernel_weights)
    return smaller


def _live(model: NCA) -> list[tuple[int, int]]:
    w_in = np.asarray(model.w_in)
    channels, kernels = w_in.shape[1:]
    return [(c, k) for c in range(channels) for k in range(kernels) if np.any(w_in[:, c, k])]


# The rounds work on the original's shape, a removed hidden channel switched off
# (``without_hidden``) rather than dropped, so that every round's rollouts and retraining
# compile once; the channels are dropped at the end.
Block = tuple[int, int]
Removal = tuple[NCA, list[int], list[Block]]
"""A round's model, the hidden channels (0-based) and blocks ``(channel, kernel)`` it took
out."""


def _pass(model: NCA, off: list[int], truth, every, limit) -> Removal:
    """One pass: the hidden channels not yet ``off``, then the live blocks, each kept out
    while the error stays within ``limit``."""
    error = lambda m: rollout_error(m, truth, every)  # noqa: E731
    hidden = [h for h in range(model.hidden_channels) if h not in off]
    alone = [error(without_hidden(model, h)) for h in hidden]
    removed: list[int] = []
    for i in np.argsort(alone, kind="stable"):
        trial = without_hidden(model, hidden[i])
        if error(trial) <= limit:
            model, removed = trial, [*removed, hidden[i]]
    blocks = _live(model)
    alone = [error(without_kernel(model, c, k)) for c, k in blocks]
    zeroed: list[tuple[int, int]] = []
    for i in np.argsort(alone, kind="stable"):
        trial = without_kernel(model, *blocks[i])
        if error(trial) <= limit:
            model, zeroed = trial, [*zeroed, blocks[i]]
    return model, sorted(removed), sorted(zeroed)


def _cheapest(model: NCA, off: list[int], truth, every) -> Removal:
    """The one part (a hidden channel not yet ``off`` or a live block) whose removal alone
    costs least, taken out whatever it costs."""
    hidden = [h for h in range(model.hidden_channels) if h not in off]
    blocks = _live(model)
    trials = [without_hidden(model, h) for h in hidden]
    trials += [without_kernel(model, c, k) for c, k in blocks]
    if not trials:
        return model, [], []
    best = int(np.argmin([rollout_error(t, truth, every) for t in trials]))
    if best < len(hidden):
        return trials[best], [hidden[best]], []
    return trials[best], [], [blocks[best - len(hidden)]]


def prune(
    model: NCA,
    truth: np.ndarray,
    every: int,
    *,
    tolerance: float = 0.1,
    fine_tune_epochs: int = 0,
    data: np.ndarray | None = None,
    training=None,
    fine_tune_learning_rate: float | None = None,
    augment_noise: float = 0.0,
    log=None,
) -> Pruned:
    """The smallest rule within ``1 + tolerance`` of ``model``'s error on ``truth`` (see the
    module's docstring; ``rollout_error`` is the error).

    Args:
        model: an unconditioned NCA.
        truth, every: the test trajectory ``(T, H, W, observable)`` (physical units) and
            the NCA steps per frame.
        tolerance: the error may grow to ``(1 + tolerance)`` times the original's.
        fine_tune_epochs: epochs of retraining after each round (default 0: one pass, no
            retraining).
        data: the training trajectories ``(R, M + 1, H, W, observable)`` to retrain on
            (needed when ``fine_tune_epochs > 0``).
        training: Algorithm 2's settings for retraining (``TrainingConfig``; default: the
            defaults with ``steps_between_frames = every``).
        fine_tune_learning_rate: the retraining's constant learning rate (default:
            ``training.learning_rate``).
        augment_noise: the data's noise augmentation while retraining.
        log: called with a line per round (default: silent).
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    count(fine_tune_epochs, "fine_tune_epochs")
    if model.conditions is not None:
        raise ValueError("prune reads unconditioned models")
    if fine_tune_learning_rate is not None and not fine_tune_learning_rate > 0:
        raise ValueError(f"fine_tune_learning_rate must be > 0, got {fine_tune_learning_rate}")
    if fine_tune_epochs and data is None:
        raise ValueError("data: fine-tuning (fine_tune_epochs > 0) needs the training trajectories")
    if training is None:
        from ..train.config.training import TrainingConfig

        training = TrainingConfig(steps_between_frames=every)
    if fine_tune_epochs:
        data = _checked_data(np.asarray(data, np.float32), model, training)
    truth = np.asarray(truth, np.float32)
    base = rollout_error(model, truth, every)
    if not np.isfinite(base):
        raise ValueError("the model blows up on the test trajectory: nothing to prune against")
    limit = (1 + tolerance) * base
    log = log or (lambda line: None)

    def retrain(candidate: NCA):
        return fine_tune(
            candidate,
            cast(np.ndarray, data),
            training,
            truth,
            every,
            epochs=fine_tune_epochs,
            learning_rate=fine_tune_learning_rate,
            augment_noise=augment_noise,
        )

    current, off, rounds, zeroed = model, list[int](), list[dict[str, Any]](), list[Block]()
    while True:
        trial, hidden, blocks = _pass(current, off, truth, every, limit)
        forced = False
        if fine_tune_epochs and rounds and not (hidden or blocks):
            trial, hidden, blocks = _cheapest(current, off, truth, every)
            forced = True
            if not (hidden or blocks):
                break
        record: dict[str, Any] = {
            "round": len(rounds) + 1,
            "removed_hidden_channels": [h + 1 for h in hidden],
            "zeroed_blocks": [
                {"channel": c, "kernel": model.perception_names[k]} for c, k in blocks
            ],
            "forced": forced,
            "error": rollout_error(trial, truth, every),
        }
        if fine_tune_epochs:
            tuned = retrain(trial)
            record |= {"fine_tuned_error": tuned.error, "fine_tune_epoch": tuned.epoch}
            trial = tuned.model
        record["kept"] = not forced or record["fine_tuned_error"] <= limit
        record["nonzero_weights"] = nonzero_weights(trial)
        rounds.append(record)
        log(_describe(record))
        if not record["kept"]:
            break
        current, off, zeroed = trial, sorted(off + hidden), zeroed + blocks
        if not fine_tune_epochs:
            break
    final = drop_hidden(current, off)
    observable = model.observable_channels
    position = [c for c in range(model.channels) if c - observable not in off]
    return Pruned(
        model=final,
        error=base,
        # the same rule as ``final`` (its dropped channels switched off), already compiled
        pruned_error=rollout_error(current, truth, every),
        tolerance=tolerance,
        removed_hidden=[h + 1 for h in off],
        removed_blocks=sorted((position.index(c), k) for c, k in zeroed if c in position),
        parameters=nonzero_weights(model),
        pruned_parameters=nonzero_weights(final),
        fine_tune_epochs=fine_tune_epochs,
        rounds=rounds,
    )


def _checked_data(data: np.ndarray, model: NCA, training) -> np.ndarray:
    from ..train.gradients import check_minibatches

    if data.ndim != model.dimensions + 3 or data.shape[-1] != model.observable_channels:
        raise ValueError(
            f"data must be trajectories (R, M + 1, *lattice, {model.observable_channels}), "
            f"got shape {data.shape}"
        )
    check_minibatches(data.shape[0], data.shape[1] - 1, training.minibatches, "minibatches")
    return data


def _describe(record: dict) -> str:
    parts = [f"hidden {h}" for h in record["removed_hidden_channels"]] + [
        f"{b['kernel']} of channel {b['channel']}" for b in record["zeroed_blocks"]
    ]
    line = f"round {record['round']}: {'forced: ' if record['forced'] else ''}"
    line += (", ".join(parts) or "nothing") + f" out, error {record['error']:.4g}"
    if "fine_tuned_error" in record:
        line += f", fine-tuned {record['fine_tuned_error']:.4g} (epoch {record['fine_tune_epoch']})"
    return line + ("" if record["kept"] else ": over the tolerance, put back")
