"""Regeneration: the damage (discs erased) of ``stnca.train.damage``, regeneration training
(``training.damage_fraction``) and ``stnca analyse regenerate``."""

import dataclasses
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import leaves, tiny_config
from typer.testing import CliRunner

from stnca import NCA
from stnca.analysis.regeneration import regeneration
from stnca.cli import app
from stnca.conditions import Conditions
from stnca.serialization import save_model
from stnca.train import run_state, train
from stnca.train.algorithm import DAMAGE_STREAM, make_epoch, make_optimizer
from stnca.train.config import TrainingConfig
from stnca.train.damage import damage_start_states as damage_start_states_
from stnca.train.damage import disc_mask, erase

runner = CliRunner()

# --- the damage ------------------------------------------------------------------------------


def test_a_disc_covers_the_cells_within_its_radius_in_any_dimension():
    # centre between cells: offsets +-0.5 and +-1.5, within 2 cells when the squares sum <= 4
    disc = np.asarray(disc_mask((8, 8), (3.5, 3.5), 2.0))
    assert disc.sum() == 12 and disc[2:6, 2:6].sum() == 12 and not disc[2, 2]
    assert np.flatnonzero(disc_mask((10,), (4.0,), 2.0)).tolist() == [2, 3, 4, 5, 6]
    assert int(disc_mask((5, 5, 5), (2.0, 2.0, 2.0), 1.0).sum()) == 7  # the centre and 6 faces


@pytest.mark.parametrize("fill", ["zero", "initial", "noise"])
def test_erase_resets_observable_and_hidden_channels_and_keeps_conditions(key, rng, fill):
    conditions = Conditions(("alpha",), (0.0,), (1.0,))
    model = NCA(2, 3, conditions=conditions, key=key)  # channels: 2 observable, alpha, 3 hidden
    state = jnp.asarray(rng.uniform(0.2, 0.8, (6, 6, 6)).astype(np.float32))
    mask = jnp.asarray(rng.uniform(size=(6, 6)) < 0.4)
    replacement = {
        "zero": 0.0,
        "initial": jnp.full((6, 6, 2), 0.5),
        "noise": jnp.asarray(rng.uniform(size=(6, 6, 2)).astype(np.float32)),
    }[fill]
    erased = np.asarray(erase(model, state, mask, replacement))
    inside, outside = np.asarray(mask), ~np.asarray(mask)
    expected = np.broadcast_to(np.asarray(replacement, np.float32), (6, 6, 2))
    np.testing.assert_array_equal(erased[inside][:, :2], expected[inside])
    np.testing.assert_array_equal(erased[inside][:, 2], np.asarray(state)[inside][:, 2])
    assert not erased[inside][:, 3:].any()
    np.testing.assert_array_equal(erased[outside], np.asarray(state)[outside])


def test_damage_touches_only_propagated_start_states_after_the_first(key, rng):
    model = NCA(2, 1, key=key)
    states = jnp.asarray(rng.uniform(0.5, 1.0, (3, 4, 10, 10, 3)).astype(np.float32))
    damage = eqx.filter_jit(damage_start_states_)  # fraction traced: one program for both
    settings = dict(radius=(0.2, 0.3), fill="initial", bounds=(0.0, 1.0), reinitialised_batches=1)
    damaged = np.asarray(damage(model, states, fraction=jnp.asarray(1.0), **settings, key=key))
    erased = damaged[..., 2] == 0  # the hidden channel, positive before, is zero where erased
    first = np.broadcast_to(np.asarray(states)[:, :1, ..., :2], damaged[..., :2].shape)
    np.testing.assert_array_equal(damaged[..., :2][erased], first[erased])
    for r in range(3):
        for m in range(4):
            if r >= 1 and m >= 1:  # a disc of radius 2-3 cells, whole or cut by the edge
                assert 1 <= erased[r, m].sum() <= math.pi * 3**2 + 4, (r, m)
                kept = ~erased[r, m]
                np.testing.assert_array_equal(damaged[r, m][kept], states[r, m][kept])
            else:
                np.testing.assert_array_equal(damaged[r, m], states[r, m])
    untouched = damage(model, states, fraction=jnp.asarray(0.0), **settings, key=key)
    np.testing.assert_array_equal(untouched, states)


def test_damage_settings_are_validated():
    with pytest.raises(ValueError, match=r"damage_fraction must be in \[0, 1\]"):
        TrainingConfig(damage_fraction=1.5)
    with pytest.raises(ValueError, match="damage_radius must be"):
        TrainingConfig(damage_radius=(0.3, 0.1))
    with pytest.raises(ValueError, match="damage_fill"):
        TrainingConfig(damage_fill="paint")


# --- regeneration training ---------------------------------------------------------------------


def test_the_damaged_epoch_is_the_plain_epoch_on_damaged_start_states(key, rng):
    """Damage changes only the start states (drawn from a stream of the epoch key of its
    own); with damage_fraction = 0 the other damage settings change nothing."""
    model = NCA(2, 1, key=key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.05 * jax.random.normal(key, model.w_out.shape))
    y = jnp.asarray(rng.uniform(size=(2, 4, 6, 6, 2)).astype(np.float32))
    states = model.initial_state(y[:, :-1])
    settings = dict(steps_between_frames=2, update_every="epoch")
    damage = dict(damage_radius=(0.2, 0.4), damage_fill="noise")
    plain = TrainingConfig(**settings)
    damaged = TrainingConfig(**settings, damage_fraction=0.7, **damage)
    off = TrainingConfig(**settings, damage_fraction=0.0, **damage)
    optimizer = make_optimizer(plain)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    lowest = jnp.asarray(jnp.inf)
    epochs = {}

    def run(training, starts):
        if training not in epochs:
            epochs[training] = make_epoch(training, make_optimizer(training), augment_noise=0.01)
        return epochs[training](model, opt_state, starts, y, key, lowest)

    hurt = eqx.filter_jit(damage_start_states_)(
        model,
        states,
        fraction=0.7,
        radius=(0.2, 0.4),
        fill="noise",
        bounds=(0.0, 1.0),
        reinitialised_batches=1,
        key=jax.random.fold_in(key, DAMAGE_STREAM),
    )
    assert not np.array_equal(hurt, states)
    for a, b in zip(leaves(run(damaged, states)), leaves(run(plain, hurt)), strict=True):
        np.testing.assert_array_equal(a, b)
    # off: the very program of a config without the damage settings
    arguments = (model, opt_state, states, y, key, lowest)
    programs = [
        str(eqx.filter_make_jaxpr(make_epoch(t, make_optimizer(t), 0.01))(*arguments)[0])
        for t in (off, plain)
    ]
    assert programs[0] == programs[1]


def test_a_resumed_damage_run_matches_an_uninterrupted_one_exactly(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(run_state.viz, "loss_figure", lambda *_, **__: None)  # 0.3 s each
    quiet = dict(progress=False, log=lambda _: None)
    config = tiny_config(
        tmp_path,
        rng,
        epochs=4,
        minibatches=2,
        checkpoint_every=100,  # saved at the end of each call only
        validate_every=2,  # the part run, ending at 2, scores epoch 2 like the full run
        damage_fraction=0.5,
        damage_radius=[0.2, 0.4],
        damage_fill="noise",
    )
    config = config.replace("model", update_probability=0.5)
    full = train(config, tmp_path / "full", **quiet)
    train(config, tmp_path / "part", epochs=2, **quiet)
    resumed = train(config, tmp_path / "part", epochs=4, resume=True, **quiet)
    for a, b in zip(leaves(full.final_model), leaves(resumed.final_model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in full.metrics] == [r["loss"] for r in resumed.metrics]
    full_state = (tmp_path / "full" / "checkpoint.eqx").read_bytes().split(b"\n", 1)[1]
    part_state = (tmp_path / "part" / "checkpoint.eqx").read_bytes().split(b"\n", 1)[1]
    assert full_state == part_state


def test_damage_needs_propagated_start_states(tmp_path, rng):
    config = tiny_config(tmp_path, rng, epochs=1, damage_fraction=0.5, reinitialised_batches=2)
    with pytest.raises(ValueError, match="damage_fraction > 0 needs propagated start states"):
        train(config, tmp_path / "run", progress=False, log=lambda _: None)
    assert not (tmp_path / "run").exists()


# --- the analysis -------------------------------------------------------------------------------

RATE = 0.5


def relaxing_nca() -> NCA:
    """``x -> x + RATE (1 - x)`` in every cell: any erased part regrows to 1 geometrically."""
    model = NCA(
        1, 0, kernels=("identity",), activation="linear", hidden_width=1, key=jax.random.key(0)
    )
    return eqx.tree_at(
        lambda m: (m.w_in, m.w_out, m.b_out),
        model,
        (jnp.ones((1, 1, 1)), jnp.full((1, 1), -RATE), jnp.full((1,), RATE)),
    )


def test_a_relaxing_rule_recovers_as_computed(key):
    ones = np.ones((8, 8, 1), np.float32)
    result = regeneration(
        relaxing_nca(),
        ones,
        damage_step=2,
        recovery_steps=8,
        sizes=(0.5,),
        positions=((0.5, 0.5),),
        tolerance=0.05,
        target=ones,
        key=key,
    )
    # the pattern is the whole lattice (8 cells); a disc of diameter 4 about its centre
    assert result.pattern_size == 8 and result.damages[0]["erased_cells"] == 12
    # the erased cells are at (1 - RATE)^k after k steps, the others stay at 1
    expected = math.sqrt(12 / 64) * (1 - RATE) ** np.arange(9)
    np.testing.assert_allclose(result.distance[0], expected, rtol=1e-5)
    np.testing.assert_allclose(result.target_error[1], expected, rtol=1e-5)
    assert not result.target_error[0].any()  # the undamaged run is the target throughout
    assert result.noise_floor is None  # a deterministic rule
    # 0.433 * 0.5^k <= 0.05 from k = 4 on
    assert result.recovery_times() == [4]
    # within 1e-3 only after the last step: never, within the run
    assert dataclasses.replace(result, tolerance=1e-3).recovery_times() == [None]


def test_a_stochastic_rule_runs_with_common_random_numbers(key):
    """A damage that restores the very values it erases changes nothing, however random
    the rule's updates: the damaged and undamaged runs share their keys."""
    model = NCA(2, 0, update_probability=0.5, key=key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.1 * jax.random.normal(key, model.w_out.shape))
    initial = jax.random.uniform(key, (8, 8, 2))
    result = regeneration(
        model, initial, damage_step=0, recovery_steps=3, sizes=(0.5,), fill="initial", key=key
    )
    assert not result.distance.any()
    assert result.noise_floor[0] == 0 and result.noise_floor[-1] > 1e-3  # other keys: apart
    assert result.snapshots.shape == (4, 6, 8, 8, 2)  # 4 snapshots of 1 + 5 runs


@pytest.fixture
def relaxing_file(tmp_path):
    np.save(tmp_path / "ones.npy", np.ones((8, 8, 1), np.float32))
    return save_model(tmp_path / "relax.eqx", relaxing_nca())


def invoke(*args):
    return runner.invoke(app, ["analyse", "regenerate", *map(str, args)])


def test_regenerate_writes_figure_json_and_table(tmp_path, relaxing_file):
    out = tmp_path / "out"
    common = ("--init", tmp_path / "ones.npy", "--damage-step", 2, "--recovery-steps", 8)
    result = invoke(relaxing_file, *common, "--size", 0.5, "--position", "0.5,0.5", "--out", out)
    assert result.exit_code == 0, result.output
    assert "| 0.5 | (0.5, 0.5) | 12 | 0.433 |" in result.output and "4 steps" in result.output
    report = json.loads((out / "regenerate.json").read_text())
    assert report["damages"][0]["recovery_steps"] == 4 and report["pattern_size"] == 8
    assert (out / "regenerate.png").stat().st_size > 0
    assert "| size | position |" in (out / "regenerate.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (("MISSING",), "not found"),
        (("--size", "0"), "--size must be in (0, 1]"),
        (("--size", "1.5"), "--size must be a finite number in [0.0, 1.0]"),
        (("--position", "0.5"), "--position must be ROW,COLUMN"),
        (("--position", "0.5,2"), "--position (fractions of the pattern's box) must be"),
        (("--fill", "paint"), "--fill must be one of zero, initial, noise"),
        (("--tolerance", "0"), "--tolerance must be > 0"),
        (("NO_STEP",), "--damage-step: give it"),
        (("NO_INIT",), "--init: give the initial condition"),
    ],
)
def test_regenerate_bad_input(tmp_path, relaxing_file, args, message):
    model = tmp_path / "missing.eqx" if args[0] == "MISSING" else relaxing_file
    init = [] if args[0] == "NO_INIT" else ["--init", tmp_path / "ones.npy"]
    steps = [] if args[0] == "NO_STEP" else ["--damage-step", 2, "--recovery-steps", 3]
    extra = list(args) if args[0].startswith("--") else []
    out = tmp_path / "out"
    result = invoke(model, *init, *steps, *extra, "--out", out)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
