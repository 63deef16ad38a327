"""``[training]``: Algorithm 2's settings."""

from __future__ import annotations

import dataclasses

from ..._validate import choice
from ...losses import LOSSES, SUBSAMPLED
from ..damage import FILLS
from ..optimizers import OPTIMIZERS
from ._checks import _non_negative, _positive, _seed

UPDATES = ("minibatch", "epoch")
"""``training.update_every``: one optimiser update per mini-batch, or one per epoch."""
SELECTIONS = ("rollout", "reinitialised", "loss")
"""``training.select_by``: how ``model.eqx`` is chosen among the epochs' models."""


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Algorithm 2's settings, and the stabilisers of the authors' code.

    ``minibatches`` (B) must divide the number of transitions ``M x R``; the first
    ``reinitialised_batches`` trajectories restart from the data every epoch, the others
    propagate their predicted states. ``learning_rate`` decays as
    ``learning_rate * lr_decay_rate ** (epoch / lr_decay_epochs)`` (no decay by default).

    Updates: ``update_every = "minibatch"`` (default, the authors' code) applies one
    optimiser update per mini-batch, its gradient normalised on its own (B updates per
    epoch); ``"epoch"`` sums the mini-batch gradients and updates once (Algorithm 2 read
    literally).

    Defaults are the authors' settings that helped in our measurements (REPRODUCTION.md):
    per-mini-batch updates, the state-range penalty (0.01) and restarts every 64 epochs;
    the propagation gate (off by default) made every model we trained unstable on unseen
    initial conditions.

    State range: ``state_penalty`` w > 0 (default 0.01) adds ``w`` times the authors' penalty
    ``sum(relu(low - x) + relu(x - high))`` (``state_bounds = [low, high]``, in the units
    the model trains in) over every state of the mini-batch, every cell and every channel,
    hidden ones included, averaged over the t steps of the rollout, to the minimised
    objective. The logged loss and model selection leave it out.

    Propagation: with ``propagate_tolerance`` set, the propagated start states are kept
    only while the epoch's loss is at most that much above the lowest loss so far;
    otherwise every trajectory restarts from the data. Every ``restart_every`` epochs
    (0: never) all start states are redrawn from the data, hidden channels drawn from
    ``U(0, restart_hidden_noise)``.

    Holding a final state: with ``hold_final = true`` (data whose last frame repeats, e.g.
    an image sequence with ``final_repeats >= 2``) the last transition of each propagated
    trajectory starts from its own previous prediction, so it trains ever longer rollouts
    to stay on the final frame (an attractor) rather than only ``final_repeats - 1``
    intervals of it.

    Regeneration (after growing NCA, Mordvintsev et al. 2020): with ``damage_fraction`` > 0
    each propagated start state (every transition but the first of the trajectories that
    propagate) has, with that probability, a random disc erased before the epoch's rollouts
    (``stnca.train.damage``); the damaged rollouts propagate as usual, so the rule learns to
    regrow what was erased. The draws come from the epoch's key, so a resumed run stays
    bit-identical. Off by default.

    Speed and scale (docs/concepts/scale.md): ``devices`` splits each mini-batch's
    transitions over several devices (data parallel, the parameters replicated);
    ``loss_fraction`` < 1 compares a random subset of the cells (``loss_patch`` x
    ``loss_patch`` blocks) in each loss, weighted to be unbiased for ``mse`` and ``l1`` and
    for the square of ``euclidean``; ``remat_every`` sets how many NCA steps are
    rematerialised together when ``checkpoint_rollout`` is on. The defaults change
    nothing on one device.

    Model selection (``model.eqx``), never within the first ``select_after`` fraction of
    the epochs:

    - ``"rollout"`` (default): every ``validate_every`` epochs (and at the last if none
      qualified yet), roll the
      model out from frame 0 of the validation trajectories (``data.validation_trajectories``;
      without any, the training trajectories) over the whole horizon, with no restarts,
      and score the mean loss over every frame; keep the lowest. This measures what a user
      wants (long rollouts from a given initial state), not the one-interval fit.
    - ``"reinitialised"``: the loss of the trajectories that restart from the data, when it
      is below the best so far and below the previous epoch's;
    - ``"loss"``: the loss over all transitions, by the same rule (the authors'; with
      propagated trajectories it can stay above the untrained model's for a long time).
    """

    epochs: int = 4000
    """Training epochs (Algorithm 2's outer loop). Range: 0 to 10**8."""
    steps_between_frames: int = 32
    """NCA steps ``t`` between consecutive data frames; the horizon is ``N = M t``. Range: >= 1."""
    minibatches: int = 1
    """Mini-batches ``B`` per epoch. Range: >= 1, dividing the ``M x R`` transitions."""
    reinitialised_batches: int = 1
    """How many trajectories (the first ones) restart from the data every epoch; the others
    propagate their predictions. Range: >= 0.
    """
    loss: str = "euclidean"
    """Distance between predicted and true observable channels: ``euclidean``, ``mse``, ``l1``,
    ``hellinger``, ``bhattacharyya``, ``spectral`` or ``sliced_wasserstein``.
    """
    loss_fraction: float = 1.0
    """Expected fraction of the cells each loss compares: every cell (or ``loss_patch`` block) is
    kept with this probability and weighted by its inverse, a fresh draw per transition and
    mini-batch; 1 compares every cell (the full loss). Below 1 the loss must be ``euclidean``,
    ``mse`` or ``l1``; unbiased for ``mse``, ``l1`` and the square of ``euclidean``, while
    ``euclidean`` itself is biased low, relatively by about ``(1 - f) / (8 f n)`` for an error
    spread over ``n`` blocks. The logged loss is the estimate; free-rollout scores use the full
    loss. Range: (0, 1].
    """
    loss_patch: int = 1
    """Side, in cells, of the square blocks that ``loss_fraction`` keeps or drops together (they
    tile the lattice from its corner); 1: single cells. Ignored when ``loss_fraction = 1``.
    Range: >= 1.
    """
    optimizer: str = "nadam"
    """Optimiser: ``nadam`` (the paper's), ``adam``, ``adamw``, ``sgd`` (Nesterov momentum 0.9),
    ``rmsprop`` or ``lion``.
    """
    learning_rate: float = 1e-3
    """Initial learning rate. Range: > 0."""
    lr_decay_rate: float = 1.0
    """Factor the learning rate is multiplied by every ``lr_decay_epochs`` epochs (smoothly); 1:
    constant. Range: (0, 1].
    """
    lr_decay_epochs: int = 1000
    """Epochs over which the learning rate decays by ``lr_decay_rate``. Range: >= 1."""
    gradient_normalisation: bool = True
    """Divide each parameter's gradient by its own norm before the optimiser (the authors' code)."""
    weight_average: float = 0.0
    """Decay, per optimiser update, of a moving average of the weights (Polyak averaging; about
    the last ``1 / (1 - weight_average)`` updates); the free rollouts then score, and
    ``model.eqx`` keeps, the averaged weights, which are steadier than the last update's
    (``final.eqx`` stays the last update's). 0: off. Needs ``select_by = "rollout"``. Range:
    [0, 1).
    """
    sam_radius: float = 0.0
    """Sharpness-aware minimisation: take each gradient at the weights moved this far along the
    normalised gradient (Foret et al.; two gradient evaluations per update), which seeks flat
    minima, rules robust to their own weights; 0: off. Range: >= 0.
    """
    l1_penalty: float = 0.0
    """Weight of the lasso ``sum |W2| + sum |W1|`` on every weight (``stnca.train.parsimony``),
    added to the objective of each update; 0: off. Range: >= 0.
    """
    kernel_lasso: float = 0.0
    """Weight of the group lasso on the first layer's kernel-channel blocks
    (``sum_{c,k} ||W2[:, c, k]||``): whole kernels of whole channels go to zero; 0: off.
    Range: >= 0.
    """
    channel_lasso: float = 0.0
    """Weight of the group lasso on whole hidden channels (the norm of all that reads or writes
    each): channels the rule can do without switch off, for ``stnca prune``; 0: off.
    Range: >= 0.
    """
    update_every: str = "minibatch"
    """``minibatch``: one optimiser update per mini-batch (the authors' code); ``epoch``: the
    mini-batches' gradients summed, one update (Algorithm 2 literally).
    """
    state_penalty: float = 0.01
    """Weight ``w`` of the state-range penalty ``sum(relu(low - x) + relu(x - high))`` on every
    intermediate state, hidden channels included; 0: off. Range: >= 0.
    """
    state_bounds: tuple[float, ...] = (0.0, 1.0)
    """``[low, high]`` of the state-range penalty, in the units the model trains in. Range: low <
    high.
    """
    propagate_tolerance: float | None = None
    """Keep the propagated start states only while the epoch's loss is at most this much above the
    lowest so far; unset: always propagate. Range: >= 0.
    """
    restart_every: int = 64
    """Epochs between restarts, which redraw every start state from the data; 0: never. Range: >= 0.
    """
    restart_hidden_noise: float = 0.1
    """At a restart, hidden channels are drawn from ``U(0, restart_hidden_noise)``. Range: >= 0."""
    hold_final: bool = False
    """The last transition of each propagated trajectory starts from its own previous prediction
    (for data whose last frame repeats).
    """
    damage_fraction: float = 0.0
    """Regeneration training: the probability that each propagated start state (every transition
    but the first of the trajectories that propagate) has a random disc erased before the
    epoch's rollouts; 0: off. Range: [0, 1].
    """
    damage_radius: tuple[float, ...] = (0.05, 0.2)
    """``[low, high]``: an erased disc's radius is drawn uniformly from this range, times the
    lattice's shortest side (growing NCA's range); its centre uniformly over the lattice. Range:
    0 < low <= high <= 1.
    """
    damage_fill: str = "zero"
    """What an erased disc holds: ``zero`` (every channel; for images: transparent), ``initial``
    (the trajectory's first frame, hidden channels zero) or ``noise`` (observable channels
    uniform in ``state_bounds``, hidden channels zero).
    """
    select_by: str = "rollout"
    """How ``model.eqx`` is chosen: ``rollout`` (free rollouts over the whole horizon),
    ``reinitialised`` or ``loss``.
    """
    select_after: float = 0.05
    """Fraction of the epochs during which no model is chosen. Range: [0, 1)."""
    validate_every: int = 10
    """Epochs between free-rollout scores (``select_by = "rollout"``). Range: >= 1."""
    checkpoint_rollout: bool = True
    """Recompute the NCA steps in the backward pass (``jax.checkpoint``; each step, or blocks of
    ``remat_every``) instead of keeping their activations: less memory, more compute.
    """
    rollout_chunk: int = 0
    """Transitions rolled out and differentiated at once within a mini-batch; the mini-batch's
    gradient is the sum over its chunks, taken one after another. 0: the whole mini-batch at
    once. Smaller chunks keep a step's intermediate arrays in the CPU's caches (1.3x faster for
    the paper's Gray-Scott epoch with chunks of 8 transitions on 2 CPU cores, BENCHMARKS.md) and
    need less memory; the gradient is the same up to the order of floating-point sums (a
    stochastic model's masks and a sub-sampled loss draw other random numbers). Range: 0 or a
    divisor of the mini-batch size ``M x R / minibatches``.
    """
    remat_every: int = 1
    """With ``checkpoint_rollout``: rematerialise blocks of this many NCA steps (``jax.checkpoint``
    around each block) instead of every step; the backward pass keeps one state per block and
    one block's activations. The same losses, weights equal up to float rounding;
    ``sqrt(steps_between_frames)`` uses least memory.
    A last, shorter block takes the remainder when it does not divide ``steps_between_frames``.
    Range: 1 to ``steps_between_frames``.
    """
    devices: int = 0
    """Devices that each mini-batch's transitions are split over (data parallel, parameters
    replicated, one program): 0: all visible ones (``jax.devices()``, every process's in a
    ``--distributed`` run); ``n``: the first ``n``; 1: no splitting. When the mini-batch size is
    not divisible by it, the largest divisor below it is used (logged). Range: >= 0, at most the
    devices visible.
    """
    checkpoint_every: int = 100
    """Epochs between saves of the checkpoint, metrics and chosen model (also saved at the end).
    Range: >= 1.
    """
    tensorboard: bool = False
    """Write TensorBoard event files (losses, gradient norm, learning rate each epoch; a prediction
    image every ``tensorboard_every`` epochs) to ``OUT/tensorboard/``. Needs ``stnca[tensorboard]``.
    """
    tensorboard_every: int = 100
    """Epochs between TensorBoard prediction images (truth, the free rollout from frame 0 of the
    first training trajectory, and their difference; also at the last epoch). Range: >= 1.
    """
    seed: int = 0
    """Seed of the initial weights, the shuffling and the stochastic updates. Range: [0, 2**32)."""

    def __post_init__(self):
        _non_negative(self.epochs, "training.epochs")
        if self.epochs > MAX_EPOCHS:
            raise ValueError(f"training.epochs must be <= {MAX_EPOCHS:_}, got {self.epochs:_}")
        _positive(self.steps_between_frames, "training.steps_between_frames")
        _positive(self.minibatches, "training.minibatches")
        _non_negative(self.reinitialised_batches, "training.reinitialised_batches")
        choice(self.loss, "training.loss", LOSSES)
        choice(self.optimizer, "training.optimizer", OPTIMIZERS)
        if not self.learning_rate > 0:
            raise ValueError(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.lr_decay_rate <= 1:
            raise ValueError(f"training.lr_decay_rate must be in (0, 1], got {self.lr_decay_rate}")
        _positive(self.lr_decay_epochs, "training.lr_decay_epochs")
        choice(self.update_every, "training.update_every", UPDATES)
        _non_negative(self.state_penalty, "training.state_penalty")
        _non_negative(self.sam_radius, "training.sam_radius")
        for name in ("l1_penalty", "kernel_lasso", "channel_lasso"):
            _non_negative(getattr(self, name), f"training.{name}")
        if len(self.state_bounds) != 2 or not self.state_bounds[0] < self.state_bounds[1]:
            raise ValueError(
                f"training.state_bounds must be [low, high] with low < high, "
                f"got {list(self.state_bounds)}"
            )
        if self.propagate_tolerance is not None:
            _non_negative(self.propagate_tolerance, "training.propagate_tolerance")
        if not 0 < self.loss_fraction <= 1:
            raise ValueError(f"training.loss_fraction must be in (0, 1], got {self.loss_fraction}")
        if self.loss_fraction < 1 and self.loss not in SUBSAMPLED:
            raise ValueError(
                f"training.loss_fraction < 1 needs a loss that sums over cells "
                f"({', '.join(SUBSAMPLED)}), got training.loss = {self.loss!r}"
            )
        _positive(self.loss_patch, "training.loss_patch")
        _non_negative(self.rollout_chunk, "training.rollout_chunk")
        _positive(self.remat_every, "training.remat_every")
        if self.remat_every > self.steps_between_frames:
            raise ValueError(
                f"training.remat_every ({self.remat_every}) must be at most "
                f"training.steps_between_frames ({self.steps_between_frames})"
            )
        if self.remat_every > 1 and not self.checkpoint_rollout:
            raise ValueError(
                f"training.remat_every = {self.remat_every} needs training.checkpoint_rollout "
                "= true (false turns rematerialisation off)"
            )
        _non_negative(self.devices, "training.devices")
        _non_negative(self.restart_every, "training.restart_every")
        _non_negative(self.restart_hidden_noise, "training.restart_hidden_noise")
        if not 0 <= self.damage_fraction <= 1:
            raise ValueError(
                f"training.damage_fraction must be in [0, 1], got {self.damage_fraction}"
            )
        if len(self.damage_radius) != 2 or not (
            0 < self.damage_radius[0] <= self.damage_radius[1] <= 1
        ):
            raise ValueError(
                f"training.damage_radius must be [low, high] with 0 < low <= high <= 1, "
                f"got {list(self.damage_radius)}"
            )
        choice(self.damage_fill, "training.damage_fill", FILLS)
        choice(self.select_by, "training.select_by", SELECTIONS)
        if not 0 <= self.select_after < 1:
            raise ValueError(f"training.select_after must be in [0, 1), got {self.select_after}")
        _positive(self.validate_every, "training.validate_every")
        if not 0 <= self.weight_average < 1:
            raise ValueError(
                f"training.weight_average must be in [0, 1), got {self.weight_average}"
            )
        if self.weight_average and self.select_by != "rollout":
            raise ValueError(
                'training.weight_average needs training.select_by = "rollout" (the averaged '
                f"weights are chosen by their free rollouts), got {self.select_by!r}"
            )
        _positive(self.checkpoint_every, "training.checkpoint_every")
        _positive(self.tensorboard_every, "training.tensorboard_every")
        _seed(self.seed, "training.seed")

    @property
    def updates_per_epoch(self) -> int:
        """Optimiser updates per epoch: B per mini-batch, or 1."""
        return self.minibatches if self.update_every == "minibatch" else 1


MAX_EPOCHS = 100_000_000
"""The largest ``training.epochs`` accepted (beyond it a run could never finish anyway)."""
