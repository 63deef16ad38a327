"""Training configuration: TOML files validated into frozen, typed settings.

A config has three tables::

    [model]      the NCA's structure (observable channels come from the data)
    [data]       where the training trajectories come from: source = "gray_scott" | "file"
                 | "images"
    [training]   Algorithm 2's settings

Unknown tables or keys, wrong types and out-of-range values raise ``ValueError`` with a
message naming the key. Every default lives here once.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import tomli_w

from .._validate import choice, seed
from ..boundaries import BOUNDARIES
from ..conditions import check_names
from ..data.augment import ROTATIONS
from ..data.gray_scott import GrayScottParams
from ..data.images import EMOJI_PREFIX
from ..data.initial_conditions import INITIAL_CONDITIONS
from ..data.io import check_regular_file
from ..losses import LOSSES, SUBSAMPLED
from ..model import ACTIVATIONS
from ..scaling import SCALINGS
from ..stencils import check_kernels
from .optimizers import OPTIMIZERS

UPDATES = ("minibatch", "epoch")
"""``training.update_every``: one optimiser update per mini-batch, or one per epoch."""
SELECTIONS = ("rollout", "reinitialised", "loss")
"""``training.select_by``: how ``model.eqx`` is chosen among the epochs' models."""


def _positive(value, name):
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _seed(value, name):
    seed(value, name)


def _non_negative(value, name):
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The NCA's structure (see ``stnca.NCA``); observable channels are set by the data."""

    hidden_channels: int = 6
    """Hidden channels appended to the observable ones; they start at zero and the rule uses them as
    it likes. Range: >= 0.
    """
    kernels: tuple[str, ...] = ("identity", "laplacian")
    """Perception kernels applied to every channel: a non-empty subset, without repeats, of
    ``identity``, ``average``, ``gradient_x``, ``gradient_y``, ``laplacian`` and
    ``gradient_magnitude``.
    """
    activation: str = "relu"
    """Activation ``u`` of the hidden layer: ``relu``, ``linear``, ``tanh``, ``silu``, ``swish``,
    ``gelu`` or ``sigmoid``.
    """
    hidden_width: int | None = None
    """Width ``H`` of the hidden layer; unset: ``4 C`` (``C`` = observable + hidden channels), as in
    the paper. Range: >= 1.
    """
    update_probability: float = 1.0
    """Probability ``1 - p`` that a cell-channel is updated in a step; 1 is deterministic. Range:
    (0, 1].
    """
    boundary: str = "periodic"
    """Lattice boundary: ``periodic`` (wrap around), ``fixed`` (zero outside) or ``reflect``."""
    hidden_bias: bool = False
    """Add a bias to the hidden layer (equation 3 has none)."""
    init_scale: float = 0.1
    """Standard deviation of the random input-layer weights ``W2`` (the output layer starts at
    zero). Range: >= 0.
    """
    conditions: tuple[str, ...] = ()
    """Names of parameters the rule is conditioned on (e.g. ``["alpha", "gamma"]``): one constant
    input channel each, normalised, read but never updated and never compared with data. The
    data carry them as trailing channels: Gray-Scott data simulate them at ``data.points`` or
    ``data.grid`` (names of Gray-Scott parameters); a file's last channels hold them, one per
    name. Empty: an unconditioned model.
    """

    def __post_init__(self):
        _non_negative(self.hidden_channels, "model.hidden_channels")
        check_kernels(self.kernels)
        choice(self.activation, "model.activation", ACTIVATIONS)
        choice(self.boundary, "model.boundary", BOUNDARIES)
        if self.hidden_width is not None:
            _positive(self.hidden_width, "model.hidden_width")
        if not 0 < self.update_probability <= 1:
            raise ValueError(
                f"model.update_probability must be in (0, 1], got {self.update_probability}"
            )
        _non_negative(self.init_scale, "model.init_scale")
        check_names(self.conditions, "model.conditions")


@dataclasses.dataclass(frozen=True)
class GrayScottData:
    """Training trajectories simulated from the Gray-Scott equations.

    ``trajectories`` initial conditions of family ``initial_condition`` are drawn with
    ``seed``; each is integrated for ``steps`` Euler steps and sampled every ``every`` steps
    (default: the training's ``steps_between_frames``), giving ``M = steps / every``
    transitions per trajectory. ``validation_trajectories`` more are simulated from the
    same family with another seed and never trained on: they score the models for
    ``training.select_by = "rollout"``. ``scale`` maps the data to the units the model
    trains in (``minmax``: to [0, 1], one minimum and maximum over the whole data set).
    """

    source: str = "gray_scott"
    """Selects this kind of data: ``"gray_scott"``."""
    size: int = 64
    """Lattice size ``S``: trajectories are ``S x S`` (periodic). Range: >= 3."""
    steps: int = 1024
    """Euler steps per trajectory. Range: >= 1, a multiple of ``every``."""
    every: int | None = None
    """Euler steps between kept frames; unset: ``training.steps_between_frames``. Range: >= 1,
    dividing ``steps``.
    """
    trajectories: int = 4
    """Training trajectories ``R``, each from its own initial condition. Range: >= 1."""
    initial_condition: str | tuple[str, ...] = "smooth"
    """Family of the initial conditions (``stnca.data.initial_conditions``: ``smooth``,
    ``high_frequency``, ``noise``, ``sparse_noise``, ``fourier_low``, ``fourier_mid``,
    ``fourier_high``, ``seeds``, ``lines``, ``mixture``, ``uniform``), or a list of them:
    trajectory ``r`` is drawn from the list's entry ``r`` modulo its length (repeat a name to
    weight it).
    """
    seed: int = 0
    """Seed of the initial conditions and the measurement noise. Range: [0, 2**32)."""
    diffusion_a: float = GrayScottParams.diffusion_a
    """Diffusion constant ``D_A`` of species A. Range: >= 0."""
    diffusion_b: float = GrayScottParams.diffusion_b
    """Diffusion constant ``D_B`` of species B. Range: >= 0."""
    alpha: float = GrayScottParams.alpha
    """Feed rate ``alpha`` of A towards 1 (a finite number)."""
    gamma: float = GrayScottParams.gamma
    """Extra decay rate ``gamma`` of B, which decays at ``gamma + alpha`` (a finite number)."""
    dt: float = GrayScottParams.dt
    """Forward-Euler time step. Range: > 0."""
    noise: float = 0.0
    """Measurement noise ``xi``: the data become ``(1 - xi) y + xi eta``, ``eta ~ U(min y, max y)``,
    drawn once. Range: [0, 1].
    """
    scale: str = "minmax"
    """Units the model trains in: ``minmax`` (one minimum and maximum over the whole data set mapped
    to [0, 1]) or ``none``.
    """
    validation_trajectories: int = 0
    """Extra trajectories (another seed, never trained on) that score the models for
    ``training.select_by = "rollout"``; 0: score on the training ones. Range: >= 0.
    """
    points: tuple[tuple[float, ...], ...] = ()
    """Parameter points for a conditioned model (``model.conditions``): one list of values per
    point, in the order of ``model.conditions`` (``[[0.029, 0.057], [0.055, 0.062]]`` for
    ``conditions = ["alpha", "gamma"]``). ``trajectories`` (and ``validation_trajectories``) are
    simulated at every point, each point from its own initial conditions. Unset: the one point
    of this table's parameters.
    """
    grid: tuple[tuple[float, ...], ...] = ()
    """Instead of ``points``: a list of values per condition, in the order of ``model.conditions``;
    every combination is a point (``[[0.03, 0.05], [0.057, 0.062]]``: four points).
    """

    def __post_init__(self):
        choice(self.scale, "data.scale", SCALINGS)
        _non_negative(self.validation_trajectories, "data.validation_trajectories")
        if self.size < 3:
            raise ValueError(f"data.size must be >= 3, got {self.size}")
        _positive(self.steps, "data.steps")
        _positive(self.trajectories, "data.trajectories")
        if self.every is not None:
            _positive(self.every, "data.every")
            if self.steps % self.every:
                raise ValueError(
                    f"data.steps ({self.steps}) must be a multiple of data.every ({self.every})"
                )
        if not self.families:
            raise ValueError("data.initial_condition must name at least one family")
        for family in self.families:
            choice(family, "data.initial_condition", INITIAL_CONDITIONS)
        _seed(self.seed, "data.seed")
        try:  # the simulator owns the rules for its parameters
            self.params()
        except ValueError as error:
            raise ValueError(f"data.{error}") from None
        _check_noise(self.noise)

        if self.points and self.grid:
            raise ValueError("give data.points or data.grid, not both")
        if self.grid and not all(self.grid):
            raise ValueError("data.grid must give at least one value per condition")

    @property
    def families(self) -> tuple[str, ...]:
        """``initial_condition`` as a tuple of family names."""
        family = self.initial_condition
        return (family,) if isinstance(family, str) else tuple(family)

    def params(self) -> GrayScottParams:
        """The simulator's parameters."""
        return GrayScottParams(self.diffusion_a, self.diffusion_b, self.alpha, self.gamma, self.dt)

    def parameter_points(self, names: tuple[str, ...]) -> list[GrayScottParams]:
        """The simulator's parameters at every point (``points``, the ``grid``'s combinations,
        or this table's own parameters), the values in the order of the condition ``names``."""
        rows = list(self.points)
        if self.grid:
            rows = [tuple(row) for row in itertools.product(*self.grid)]
        if not rows:
            return [self.params()]
        where = "data.points" if self.points else "data.grid"
        if not names:
            raise ValueError(
                f"{where} needs model.conditions naming the Gray-Scott parameters it varies"
            )
        wrong = [name for name in names if name not in GRAY_SCOTT_CONDITIONS]
        if wrong:
            raise ValueError(
                f"model.conditions: {wrong[0]!r} is not a Gray-Scott parameter; Gray-Scott "
                f"data can be conditioned on {', '.join(GRAY_SCOTT_CONDITIONS)}"
            )
        points = []
        for row in rows:
            if len(row) != len(names):
                raise ValueError(
                    f"{where}: each point needs {len(names)} values ({', '.join(names)}), "
                    f"got {list(row)}"
                )
            try:
                values = dict(zip(names, row, strict=True))
                points.append(dataclasses.replace(self.params(), **values))
            except ValueError as error:
                raise ValueError(f"{where} {list(row)}: {error}") from None
        return points


@dataclasses.dataclass(frozen=True)
class FileData:
    """Training trajectories read from a ``.npy`` file of shape (T, H, W, C) or (R, T, H, W, C),
    or from any source ``stnca import`` reads with its defaults (a TIFF stack, ``run.h5:/path``,
    a video, a folder of images, ``fields.npz``; see ``stnca.data.importers``).

    ``path`` is relative to the config file's folder. The file's frames are taken as
    ``steps_between_frames`` NCA steps apart. The last ``validation_trajectories``
    trajectories of the file are held back from training to score the models
    (``training.select_by = "rollout"``). ``scale`` as for ``gray_scott``: the default
    ``minmax`` trains in [0, 1] units; models take and return physical units.
    """

    source: str = "file"
    """Selects this kind of data: ``"file"``."""
    path: str = ""
    """The trajectories, relative to the config's folder: a ``.npy`` of shape (T, H, W, C) or
    (R, T, H, W, C), or a source ``stnca import`` reads (``movie.tif``, ``run.h5:/path``, ...),
    read with that command's defaults. Required.
    """
    noise: float = 0.0
    """Measurement noise ``xi``: the data become ``(1 - xi) y + xi eta``, ``eta ~ U(min y, max y)``,
    drawn once. Range: [0, 1].
    """
    seed: int = 0
    """Seed of the measurement noise. Range: [0, 2**32)."""
    scale: str = "minmax"
    """Units the model trains in: ``minmax`` (one minimum and maximum over the whole data set mapped
    to [0, 1]) or ``none``.
    """
    validation_trajectories: int = 0
    """The file's last trajectories held back from training to score the models for
    ``training.select_by = "rollout"``; 0: score on the training ones. Range: >= 0.
    """

    def __post_init__(self):
        choice(self.scale, "data.scale", SCALINGS)
        _non_negative(self.validation_trajectories, "data.validation_trajectories")
        if not self.path:
            raise ValueError("data.path must name the trajectory file (.npy, TIFF, HDF5, ...)")
        _seed(self.seed, "data.seed")
        _check_noise(self.noise)


@dataclasses.dataclass(frozen=True)
class ImageData:
    """An image sequence to morph through (section 3.2), made into training trajectories.

    ``images`` (paths relative to the config's folder, or ``emoji:NAME`` for the packaged
    emoji) are resized to ``size`` x ``size`` by area averaging (0 keeps their own, common,
    size); the last appears ``final_repeats`` times in all so that it must be held stable.
    The sequence is embedded with ``padding`` empty cells on every side and made into
    ``copies`` trajectories, each (but copy 0) translated by up to ``max_shift`` cells
    (default: ``padding``) and optionally rotated (``rotate``: none, lattice or any) and
    flipped, redrawn every ``redraw_every`` epochs (0: never). Each epoch the data get
    ``augment_noise`` of uniform noise, ``(1 - a) y + a U(0, 1)``. Images are already in
    [0, 1], so ``scale`` defaults to ``none``.
    """

    source: str = "images"
    """Selects this kind of data: ``"images"``."""
    images: tuple[str, ...] = ()
    """The images in order: paths relative to the config's folder (any format Pillow reads) or
    ``emoji:NAME``. At least one.
    """
    size: int = 60
    """Side the images are resized to by area averaging; 0 keeps their own (common) size. Range: 0
    or >= 3.
    """
    final_repeats: int = 2
    """How many times the last image appears in the sequence (2 or more: it must be held). Range: >=
    1, at least 2 frames in all.
    """
    padding: int = 10
    """Empty (zero) cells added on every side of the images. Range: >= 0."""
    copies: int = 8
    """Training trajectories made from the sequence; all but copy 0 are moved at random. Range: >=
    1.
    """
    max_shift: int | None = None
    """Largest random translation of a copy, in cells; unset: ``padding``. Range: 0 to ``padding``.
    """
    redraw_every: int = 64
    """Epochs between new random draws of the copies; 0: never. Range: >= 0."""
    augment_noise: float = 0.001
    """Noise ``a`` added each epoch: the data become ``(1 - a) y + a U(min y, max y)``, drawn
    afresh. Range: [0, 1].
    """
    rotate: str = "none"
    """Random rotation of the copies: ``none``, ``lattice`` (multiples of 90 degrees) or ``any``
    (any angle).
    """
    flip: bool = False
    """Flip each copy left-right with probability 1/2."""
    seed: int = 0
    """Seed of the copies' translations, rotations and flips. Range: [0, 2**32)."""
    scale: str = "none"
    """Units the model trains in: ``none`` (images are already in [0, 1]) or ``minmax``."""

    def __post_init__(self):
        choice(self.scale, "data.scale", SCALINGS)
        if not self.images:
            raise ValueError("data.images must list at least one image")
        if self.size != 0 and self.size < 3:
            raise ValueError(
                f"data.size must be >= 3 (or 0 to keep the images' size), got {self.size}"
            )
        _positive(self.final_repeats, "data.final_repeats")
        _non_negative(self.padding, "data.padding")
        _positive(self.copies, "data.copies")
        if self.max_shift is not None:
            _non_negative(self.max_shift, "data.max_shift")
            if self.max_shift > self.padding:
                raise ValueError(
                    f"data.max_shift ({self.max_shift}) must not exceed data.padding "
                    f"({self.padding}), or shifted images would be cut at the lattice edge"
                )
        _non_negative(self.redraw_every, "data.redraw_every")
        if not 0 <= self.augment_noise <= 1:
            raise ValueError(f"data.augment_noise must be in [0, 1], got {self.augment_noise}")
        choice(self.rotate, "data.rotate", ROTATIONS)
        _seed(self.seed, "data.seed")
        if len(self.images) + self.final_repeats - 1 < 2:
            raise ValueError(
                "an image sequence needs at least 2 frames: give 2 images or set "
                "data.final_repeats >= 2"
            )

    @property
    def shift(self) -> int:
        """The largest translation of a copy, in cells."""
        return self.padding if self.max_shift is None else self.max_shift


GRAY_SCOTT_CONDITIONS = ("diffusion_a", "diffusion_b", "alpha", "gamma")
"""The Gray-Scott parameters a conditioned model can take as conditions."""


def _check_noise(noise: float) -> None:
    if not 0 <= noise <= 1:
        raise ValueError(f"data.noise (xi) must be in [0, 1], got {noise}")


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
        choice(self.select_by, "training.select_by", SELECTIONS)
        if not 0 <= self.select_after < 1:
            raise ValueError(f"training.select_after must be in [0, 1), got {self.select_after}")
        _positive(self.validate_every, "training.validate_every")
        _positive(self.checkpoint_every, "training.checkpoint_every")
        _positive(self.tensorboard_every, "training.tensorboard_every")
        _seed(self.seed, "training.seed")

    @property
    def updates_per_epoch(self) -> int:
        """Optimiser updates per epoch: B per mini-batch, or 1."""
        return self.minibatches if self.update_every == "minibatch" else 1


MAX_EPOCHS = 100_000_000
"""The largest ``training.epochs`` accepted (beyond it a run could never finish anyway)."""

DATA_SOURCES: dict[str, type] = {
    "gray_scott": GrayScottData,
    "file": FileData,
    "images": ImageData,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole training configuration."""

    model: ModelConfig = ModelConfig()
    data: Any = GrayScottData()
    training: TrainingConfig = TrainingConfig()
    base_dir: str = "."
    """Folder that relative paths in ``data`` are resolved against (the config file's)."""

    def __post_init__(self):
        names = self.model.conditions
        if names and isinstance(self.data, ImageData):
            raise ValueError(
                "model.conditions needs gray_scott or file data (image data have no parameters)"
            )
        if isinstance(self.data, GrayScottData):
            self.data.parameter_points(names)  # checks the names and the points
            if names and not (self.data.points or self.data.grid):
                raise ValueError(
                    f"model.conditions {list(names)} need data.points or data.grid: the "
                    f"parameter points to train on"
                )

    def horizon(self) -> int | None:
        """The training horizon ``M t`` in NCA steps (``None`` for file data: it depends on
        the file's frames)."""
        t = self.training.steps_between_frames
        if isinstance(self.data, ImageData):
            return (len(self.data.images) + self.data.final_repeats - 2) * t
        if isinstance(self.data, GrayScottData):
            return self.data.steps // (self.data.every or t) * t
        return None

    def replace(self, section: str | None = None, **changes) -> Config:
        """A copy with ``changes`` applied to ``section`` (or to the config itself)."""
        if section is None:
            return dataclasses.replace(self, **changes)
        updated = dataclasses.replace(getattr(self, section), **changes)
        return dataclasses.replace(self, **{section: updated})

    def resolve(self, path: str) -> Path:
        """A data path made absolute against ``base_dir``."""
        return (Path(self.base_dir) / path).resolve()

    def to_dict(self) -> dict[str, Any]:
        """The config as plain TOML-ready tables (``None`` values left out)."""

        def table(settings) -> dict[str, Any]:
            out = {}
            for field in dataclasses.fields(settings):
                value = getattr(settings, field.name)
                if value is None:
                    continue
                if isinstance(value, tuple):
                    value = list(value)
                if field.name == "path" and isinstance(settings, FileData):
                    value = str(self.resolve(value))
                if isinstance(value, list) and field.name == "images":
                    value = [
                        v if v.startswith(EMOJI_PREFIX) else str(self.resolve(v)) for v in value
                    ]
                out[field.name] = value
            return out

        return {
            "model": table(self.model),
            "data": table(self.data),
            "training": table(self.training),
        }

    def to_toml(self) -> str:
        """The config as TOML text (the resolved config written beside a trained model)."""
        return tomli_w.dumps(self.to_dict())


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check a TOML value against a field's type; return it converted (lists to tuples)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        lists = [a for a in options if typing.get_origin(a) is tuple]
        if isinstance(value, list) and lists:  # `str | tuple[str, ...]` given a list
            return _coerce(value, lists[0], where)
        return _coerce(value, options[0], where)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(annotation) if a is not Ellipsis}
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list of {_type_name(item)}, got {value!r}")
        return tuple(_coerce(v, item, where) for v in value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {annotation!r}")  # pragma: no cover


def _build(cls: type, table: Any, section: str):
    if not isinstance(table, dict):
        raise ValueError(f"[{section}] must be a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in [{section}]; known keys: {', '.join(known)}"
        )
    values = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in table.items()}
    return cls(**values)


def config_from_dict(tables: dict[str, Any], base_dir: str | os.PathLike = ".") -> Config:
    """Validate plain tables (as read from TOML) into a ``Config``."""
    unknown = sorted(set(tables) - {"model", "data", "training"})
    if unknown:
        raise ValueError(f"unknown table [{unknown[0]}]; a config has [model], [data], [training]")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"[{name}] must be a single table of keys, got {table!r:.60}")
    data = dict(tables.get("data", {}))
    source = data.get("source", "gray_scott")
    if not isinstance(source, str) or source not in DATA_SOURCES:
        raise ValueError(f"data.source must be one of {sorted(DATA_SOURCES)}, got {source!r}")
    return Config(
        model=_build(ModelConfig, tables.get("model", {}), "model"),
        data=_build(DATA_SOURCES[source], data, "data"),
        training=_build(TrainingConfig, tables.get("training", {}), "training"),
        base_dir=str(Path(base_dir).resolve()),
    )


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a TOML config file."""
    path = check_regular_file(Path(path), "config file", "a TOML file")
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"config {path} is not valid TOML: {error}") from None
    try:
        return config_from_dict(tables, base_dir=path.parent)
    except ValueError as error:
        raise ValueError(f"config {path}: {error}") from None
