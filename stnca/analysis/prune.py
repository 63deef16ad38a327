"""The smallest rule that still works: hidden channels, then kernel-channel blocks of the
first layer, taken away while the error on a test trajectory stays within a tolerance of
the whole rule's (``stnca prune``).

Each part is tried once, in the order of how little its removal alone costs
(``inspect_function``), and kept out if the error with it and everything removed before it
out stays within ``(1 + tolerance)`` of the original's; a hidden channel is then dropped
from the model for real (a smaller NCA), a kernel-channel block is zeroed. No retraining:
what is left is the original rule's own weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import equinox as eqx
import jax
import numpy as np

from ..model import NCA, require_plane
from .inspect_function import rollout_error, without_hidden, without_kernel


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` found: the smaller ``model`` and what was taken out."""

    model: NCA
    error: float  # the original's
    pruned_error: float
    tolerance: float
    removed_hidden: list[int]  # 1-based, the original's numbering
    removed_blocks: list[tuple[int, int]]  # (channel, kernel) of the pruned model's w_in
    parameters: int  # the original's weights
    pruned_parameters: int  # the pruned model's nonzero weights

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


def prune(model: NCA, truth: np.ndarray, every: int, *, tolerance: float = 0.1) -> Pruned:
    """The smallest rule within ``1 + tolerance`` of ``model``'s error on ``truth`` (see the
    module's docstring; ``rollout_error`` is the error)."""
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if model.conditions is not None:
        raise ValueError("prune reads unconditioned models")
    truth = np.asarray(truth, np.float32)
    base = rollout_error(model, truth, every)
    if not np.isfinite(base):
        raise ValueError("the model blows up on the test trajectory: nothing to prune against")
    limit = (1 + tolerance) * base
    alone = [
        rollout_error(without_hidden(model, h), truth, every) for h in range(model.hidden_channels)
    ]
    current = model
    removed: list[int] = []
    for h in np.argsort(alone, kind="stable"):
        trial = without_hidden(current, int(h))
        if rollout_error(trial, truth, every) <= limit:
            current, removed = trial, [*removed, int(h)]
    smaller = drop_hidden(current, sorted(removed))
    channels, kernels = smaller.w_in.shape[1:]
    w_in = np.asarray(smaller.w_in)
    blocks = [(c, k) for c in range(channels) for k in range(kernels) if np.any(w_in[:, c, k])]
    alone = [rollout_error(without_kernel(smaller, c, k), truth, every) for c, k in blocks]
    zeroed: list[tuple[int, int]] = []
    for i in np.argsort(alone, kind="stable"):
        trial = without_kernel(smaller, *blocks[i])
        if rollout_error(trial, truth, every) <= limit:
            smaller, zeroed = trial, [*zeroed, blocks[i]]
    return Pruned(
        model=smaller,
        error=base,
        pruned_error=rollout_error(smaller, truth, every),
        tolerance=tolerance,
        removed_hidden=[h + 1 for h in sorted(removed)],
        removed_blocks=sorted(zeroed),
        parameters=nonzero_weights(model),
        pruned_parameters=nonzero_weights(smaller),
    )


FILES = ("model.eqx", "config.toml", "prune.json")
"""What ``prune_to_folder`` writes into its folder (the config when the model has one)."""


def prune_to_folder(
    model: str | os.PathLike,
    out,
    *,
    tolerance: float = 0.1,
    truth=None,
    steps_between_frames: int | None = None,
    log=print,
) -> tuple[Pruned, list]:
    """``stnca prune``: prune the model file (or shipped model's name) ``model`` on its test
    trajectory (``inputs.parts_trajectory``: ``truth``, or a Gray-Scott model's unseen test)
    and write the smaller model, the original's training config (for the horizon and the
    PDE; its ``hidden_channels`` is the original's) and ``prune.json`` into ``out``."""
    import json
    from pathlib import Path

    from .._files import json_safe, write_text
    from ..serialization import load_model, resolve_model, save_model
    from .inputs import parts_trajectory, run_config

    loaded = require_plane(load_model(model), "prune")
    config = run_config(model)
    test = parts_trajectory(loaded, config, truth, steps_between_frames)
    if test is None:
        raise ValueError(
            "truth: give a test trajectory (the model's training config is not Gray-Scott, "
            "so there is no default)"
        )
    log(f"pruning on {test[2]}")
    result = prune(loaded, test[0], test[1], tolerance=tolerance)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [save_model(out / FILES[0], result.model)]
    source = resolve_model(model)
    for candidate in (source.parent / FILES[1], source.with_suffix(".toml")):
        if config is not None and candidate.is_file():
            note = (
                f"# the training config of {source.name}, which {FILES[0]} was pruned from "
                "(stnca prune):\n# its model is smaller (prune.json)\n"
            )
            write_text(out / FILES[1], note + candidate.read_text())
            files.append(out / FILES[1])
            break
    report = result.to_json() | {"model": str(model), "test": test[2]}
    write_text(out / FILES[2], json.dumps(json_safe(report), indent=2) + "\n")
    return result, [*files, out / FILES[2]]
