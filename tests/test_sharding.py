"""Data-parallel training (training.devices): mini-batches split over several devices.

JAX fixes its devices when it starts, so the runs on two (host) devices happen in a fresh
Python process started with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``.
"""

import json
import os
import subprocess
import sys
import textwrap
import types

import pytest

from stnca.train import config_from_dict
from stnca.train.distributed import requested
from stnca.train.sharding import largest_divisor, plan

# The script trains the same tiny config twice, split over the 2 devices and on one, and
# prints the weights' largest difference (relative to their scale), the loss rows and the
# shardings XLA chose for the mini-batches (recorded by a spy around DataParallel.split).
SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from stnca import viz
    from stnca.stencils import apply_kernel
    from stnca.train import config_from_dict, sharding, train, train_seeds

    viz.FIGURE_DPI = 40  # as in the test process (conftest.py)

    seen = []
    split = sharding.DataParallel.split

    def spy(self, x):
        out = split(self, x)
        jax.debug.inspect_array_sharding(out, callback=seen.append)
        return out

    sharding.DataParallel.split = spy
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(2, 8, 8, 1)).astype(np.float32))
    frames = [x]
    for _ in range(4):
        for _ in range(2):
            x = x + 0.15 * apply_kernel(x, "laplacian", "periodic")
        frames.append(x)
    folder = Path(tempfile.mkdtemp())
    np.save(folder / "d.npy", np.stack([np.asarray(f) for f in frames], axis=1))

    def config(devices):
        return config_from_dict(
            {
                "model": {"hidden_channels": 1, "update_probability": 0.7},
                "data": {"source": "file", "path": "d.npy"},
                "training": {"devices": devices, **options},
            },
            base_dir=folder,
        )

    def final(devices, name, seeds):
        quiet = dict(progress=False, log=print)
        if seeds:
            outs = [folder / name / str(s) for s in seeds]
            results = train_seeds(config(devices), outs, seeds, **quiet)
        else:
            results = [train(config(devices), folder / name, **quiet)]
        models = [eqx.filter(r.final_model, eqx.is_array) for r in results]
        return models, [[m["loss"] for m in r.metrics] for r in results]

    reports = []
    for number, options in enumerate(json.loads(sys.argv[1])):  # one process, every case
        seeds = options.pop("seeds", None)
        seen.clear()
        split_models, split_losses = final(0, f"split{number}", seeds)
        split_seen = [str(s) for s in seen]
        devices = [len(s.device_set) for s in seen]
        replicated = [s.is_fully_replicated for s in seen]
        placed = {len(leaf.sharding.device_set) for leaf in jax.tree.leaves(split_models)}
        one_models, one_losses = final(1, f"one{number}", seeds)
        scale = max(float(jnp.abs(leaf).max()) for leaf in jax.tree.leaves(one_models))
        difference = max(
            float(jnp.abs(a - b).max())
            for a, b in zip(jax.tree.leaves(split_models), jax.tree.leaves(one_models))
        )
        reports.append(dict(
            visible=jax.device_count(), seen=split_seen, devices=devices, replicated=replicated,
            placed=sorted(placed), relative=difference / scale, split_losses=split_losses,
            one_losses=one_losses, after_one=len(seen) - len(split_seen),
        ))
    print(json.dumps(reports))
    """
)
TINY = dict(
    epochs=2,
    steps_between_frames=2,
    minibatches=2,  # 2 trajectories x 4 transitions: 2 mini-batches of 4, 2 per device
    select_by="loss",  # no free-rollout scoring: less to compile
    optimizer="sgd",
    gradient_normalisation=False,
    learning_rate=0.002,
)


def run_on_two_devices(*cases: dict) -> list[dict]:
    """Each case's report, from one process with 2 host devices (one JAX start-up)."""
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    environment = dict(os.environ, XLA_FLAGS=flags.strip())
    environment["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(list(cases))],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_split_over_two(report: dict) -> None:
    assert report["visible"] == 2
    # every mini-batch's start states and targets were split over both devices...
    assert report["seen"], "the mini-batches were never split"
    assert set(report["devices"]) == {2}, report["seen"]
    assert not any(report["replicated"]), report["seen"]
    assert all("'data'" in s for s in report["seen"]), report["seen"]
    # ...the trained weights came back replicated on both, and the one-device run split nothing
    assert report["placed"] == [2]
    assert report["after_one"] == 0


def test_split_training_matches_one_device_alone_and_with_seeds():
    # the stochastic updates draw the same masks however the batch is split; SGD keeps
    # the rounding differences of the reordered sums at their own size (see test_seeds).
    # Second case: two seeds as vmapped lanes, each lane's mini-batches split over the two
    # devices (with one update per epoch: the other half of the epoch function)
    alone, lanes = run_on_two_devices(
        TINY, dict(TINY, epochs=1, update_every="epoch", seeds=[1, 2])
    )
    assert_split_over_two(alone)
    assert alone["relative"] <= 1e-5, alone["relative"]
    for split, one in zip(alone["split_losses"][0], alone["one_losses"][0], strict=True):
        assert split == pytest.approx(one, rel=1e-5)
    assert_split_over_two(lanes)
    assert all("None, 'data'" in s for s in lanes["seen"]), lanes["seen"]  # the run axis whole
    assert lanes["relative"] <= 1e-5, lanes["relative"]
    for split, one in zip(lanes["split_losses"], lanes["one_losses"], strict=True):
        assert split == pytest.approx(one, rel=1e-5)


# ---- the plan: how many devices, and the fallback ------------------------------------------


def fake_devices(count, processes=1):
    return [
        types.SimpleNamespace(id=i, platform="cpu", process_index=i * processes // count)
        for i in range(count)
    ]


def test_largest_divisor():
    assert [largest_divisor(12, n) for n in (1, 2, 3, 4, 5, 8, 12, 20)] == [
        1,
        2,
        3,
        4,
        4,
        6,
        12,
        12,
    ]
    assert largest_divisor(7, 4) == 1


def test_one_device_plans_nothing():
    messages = []
    assert plan(0, 8, log=messages.append, available=fake_devices(1)) is None
    assert plan(1, 8, log=messages.append, available=fake_devices(4)) is None
    assert messages == []


def test_an_indivisible_batch_falls_back_and_says_so_once():
    messages = []
    # 5 transitions cannot split over 4 devices (nor 2 or 3): one device, one message
    assert plan(0, 5, log=messages.append, available=fake_devices(4)) is None
    assert len(messages) == 1
    assert "5 transitions" in messages[0] and "one device" in messages[0]


def test_plan_refuses_more_devices_than_visible():
    with pytest.raises(ValueError, match="training.devices is 3 but only 2 devices"):
        plan(3, 8, available=fake_devices(2))


def test_several_processes_must_use_every_device():
    devices = fake_devices(4, processes=2)
    with pytest.raises(ValueError, match="must be 0 or 4"):
        plan(2, 8, available=devices)
    with pytest.raises(ValueError, match="a multiple of\\s+4"):
        plan(0, 6, available=devices)


def test_devices_setting_is_validated():
    with pytest.raises(ValueError, match="training.devices must be >= 0, got -1"):
        config_from_dict({"training": {"devices": -1}})
    assert config_from_dict({}).training.devices == 0


def test_distributed_is_requested_by_flag_or_environment(monkeypatch):
    monkeypatch.delenv("STNCA_DISTRIBUTED", raising=False)
    assert not requested() and requested(True)
    monkeypatch.setenv("STNCA_DISTRIBUTED", "1")
    assert requested()
    monkeypatch.setenv("STNCA_DISTRIBUTED", "0")
    assert not requested()
    monkeypatch.setenv("STNCA_DISTRIBUTED", "maybe")
    with pytest.raises(ValueError, match="STNCA_DISTRIBUTED must be 1 or 0"):
        requested()
