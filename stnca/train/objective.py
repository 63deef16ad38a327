"""What a rollout costs: the objective minimised for one mini-batch of Algorithm 2, and the
plain losses that score a model without updating it.

The objective rolls the NCA ``t = steps_between_frames`` steps from the mini-batch's start
states and compares the observable channels with the data (``training.loss``, over a random
subset of the cells when ``training.loss_fraction < 1``), adding the optional state-range
penalty of the states along the rollout. Its value and gradient can be taken a chunk of
transitions at a time (``training.rollout_chunk``). ``transition_losses`` and
``rollout_score`` measure the same loss with no penalty and no gradient.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _trajectory
from ..losses import box_penalty, get_loss, on_lattice, subsampled
from ..model import NCA
from .config import TrainingConfig
from .parsimony import parsimony
from .sharding import DataParallel


def advance_with_penalty(
    model: NCA,
    x: Float[Array, "*batch H W C"],
    steps: int,
    *,
    key: PRNGKeyArray | None,
    checkpoint: bool,
    bounds: tuple[float, float] = (0.0, 1.0),
    remat_every: int = 1,
) -> tuple[Array, Array]:
    """``Phi^steps(x)`` and the state-range penalty of the states after each step, averaged
    over the steps (``box_penalty`` summed over the batch, cells and channels).
    ``checkpoint``: rematerialise each step, or with ``remat_every = k > 1`` each block of
    ``k`` steps, in the backward pass."""
    keys = None if key is None else jax.random.split(key, steps)
    step = lambda s, k: model(s, key=k)  # noqa: E731 - a plain function for jax.checkpoint
    low, high = bounds
    zero = jnp.zeros((), x.dtype)
    if checkpoint and remat_every > 1:

        def penalised(carry, k):
            state, total = carry
            state = step(state, k)
            return state, total + box_penalty(state, low, high)

        final, total = _trajectory.scan_blocks(penalised, (x, zero), keys, steps, remat_every)
        return final, total / steps
    if checkpoint:
        step = jax.checkpoint(step)

    def body(carry, k):
        state, total = carry
        state = step(state, k)
        return (state, total + box_penalty(state, low, high)), None

    (final, total), _ = jax.lax.scan(body, (x, zero), keys, length=steps)
    return final, total / steps


def _minibatch_objective(
    training: TrainingConfig,
    transitions: int,
    minibatches: int,
    parallel: DataParallel | None = None,
):
    """The function ``(params, static, start, target, key) -> (objective, (xhat, losses))``
    minimised for one mini-batch.

    Per epoch (``update_every = "epoch"``) the data term is the mini-batch's summed loss
    divided by ``M x R``, so the sum over mini-batches is the mean over all transitions;
    per mini-batch it is the mini-batch's mean. The penalty term is ``state_penalty``
    times the mini-batch's penalty (divided by B per epoch, so the epoch's objective holds
    the mean penalty over mini-batches). The loss compares a random subset of the cells
    when ``training.loss_fraction < 1`` (its key: ``k_loss``). With ``parallel`` the
    mini-batch's start states and targets are split over its devices.
    """
    loss_fn = subsampled(training.loss, training.loss_fraction, training.loss_patch)
    per_minibatch = training.update_every == "minibatch"
    size = transitions // minibatches
    data_norm = size if per_minibatch else transitions
    penalty_weight = training.state_penalty / (1 if per_minibatch else minibatches)
    t = training.steps_between_frames
    remat_every = training.remat_every
    weights_penalty = (training.l1_penalty, training.kernel_lasso, training.channel_lasso)
    weights_penalised = any(weights_penalty)
    weight_norm = 1 if per_minibatch else minibatches

    def objective(params, static, start, target, k):
        nca = eqx.combine(params, static)
        if parallel is not None:
            start, target = parallel.split(start), parallel.split(target)
        k_rollout, k_loss = jax.random.split(k)
        rollout_key = k_rollout if nca.stochastic else None
        if training.state_penalty:
            predicted, penalty = advance_with_penalty(
                nca,
                start,
                t,
                key=rollout_key,
                checkpoint=training.checkpoint_rollout,
                bounds=tuple(training.state_bounds),
                remat_every=remat_every,
            )
        elif remat_every > 1:
            predicted = _trajectory.advance(
                lambda s, key: nca(s, key=key),
                start,
                t,
                key=rollout_key,
                checkpoint=training.checkpoint_rollout,
                remat_every=remat_every,
            )
            penalty = jnp.zeros((), start.dtype)
        else:
            predicted = nca.advance(
                start, t, key=rollout_key, checkpoint=training.checkpoint_rollout
            )
            penalty = jnp.zeros((), start.dtype)
        # a conditioned model's targets carry the conditions too: only observables compare
        compare = on_lattice(loss_fn, nca.dimensions)
        each = compare(nca.observable(predicted), nca.observable(target), key=k_loss)
        value = jnp.sum(each) / data_norm + penalty_weight * penalty
        if weights_penalised:  # parsimony: once per update (per mini-batch's share per epoch)
            value = value + parsimony(nca, *weights_penalty) / weight_norm
        return value, (predicted, each)

    return objective


def _value_and_grad(objective, chunk: int, sam_radius: float = 0.0):
    """``jax.value_and_grad(objective, has_aux=True)`` for a mini-batch, rolled out and
    differentiated ``chunk`` transitions at a time (0: all at once): the values and
    gradients of the chunks are summed (the objective is a sum over transitions), the
    predictions and losses put back in order. Each chunk gets its own key. With
    ``sam_radius`` > 0 the gradient is sharpness-aware (``sharpness_aware``)."""
    plain = _chunked(jax.value_and_grad(objective, has_aux=True), chunk)
    return sharpness_aware(plain, sam_radius) if sam_radius else plain


def sharpness_aware(value_and_grad, radius: float):
    """Sharpness-aware minimisation (Foret et al. 2021): the gradient taken at the parameters
    moved ``radius`` along the normalised gradient, ``g(w + radius g(w) / |g(w)|)``, on the
    same mini-batch and key; the value, predictions and losses are those at ``w``. Two
    gradient evaluations per update."""

    def sharp(params, static, start, target, k):
        result, g = value_and_grad(params, static, start, target, k)
        scale = radius / (optax.tree.norm(g) + 1e-12)
        shifted = jax.tree.map(lambda p, d: p + scale * d, params, g)
        return result, value_and_grad(shifted, static, start, target, k)[1]

    return sharp


def _chunked(value_and_grad, chunk: int):
    if not chunk:
        return value_and_grad

    def chunked(params, static, start, target, k):
        count = start.shape[0] // chunk
        if count <= 1:
            return value_and_grad(params, static, start, target, k)
        starts = start.reshape((count, chunk) + start.shape[1:])
        targets = target.reshape((count, chunk) + target.shape[1:])

        def body(total, inputs):
            (value, (predicted, each)), g = value_and_grad(params, static, *inputs)
            return jax.tree.map(jnp.add, total, (value, g)), (predicted, each)

        zero = (jnp.zeros((), start.dtype), jax.tree.map(jnp.zeros_like, params))
        inputs = (starts, targets, jax.random.split(k, count))
        (value, g), (predicted, each) = jax.lax.scan(body, zero, inputs)
        return (value, (predicted.reshape(start.shape), each.reshape(-1))), g

    return chunked


def transition_losses(
    model: NCA,
    states: Float[Array, "R M H W C"],
    targets: Float[Array, "R M H W obs"],
    steps_between_frames: int,
    loss: str = "euclidean",
    *,
    key: PRNGKeyArray | None = None,
) -> Float[Array, "R M"]:
    """Each transition's loss, ``L(Phi^t(x[r, m]), y[r, m + 1])``, without any update."""
    key = jax.random.key(0) if key is None else key
    predicted = model.advance(states, steps_between_frames, key=key if model.stochastic else None)
    compare = on_lattice(get_loss(loss), model.dimensions)
    return compare(model.observable(predicted), model.observable(targets))


def rollout_score(
    model: NCA,
    y: Float[Array, "R frames H W obs"],
    steps_between_frames: int,
    loss: str = "euclidean",
    *,
    key: PRNGKeyArray | None = None,
) -> Array:
    """The mean loss of a free rollout from frame 0 against every later frame of ``y``.

    No restarts: the model runs ``M t`` steps from each trajectory's first frame (hidden
    channels zero), in the model's units, and each frame ``m t`` is compared with ``y[m]``.
    This is what model selection by ``"rollout"`` minimises.
    """
    loss_fn = on_lattice(get_loss(loss), model.dimensions)
    frames = y.shape[1] - 1
    key = jax.random.key(0) if key is None else key
    rollout = _trajectory.trajectory(
        lambda s, k: model(s, key=k),
        model.initial_state(y[:, 0]),
        frames * steps_between_frames,
        every=steps_between_frames,
        key=key if model.stochastic else None,
        dims=model.dimensions,
    )
    frames_axis = -2 - model.dimensions
    predicted = model.observable(jnp.moveaxis(rollout, frames_axis, 0)[1:])  # (M, R, H, W, obs)
    each = loss_fn(predicted, model.observable(jnp.moveaxis(y[:, 1:], 1, 0)))
    return jnp.mean(each)
