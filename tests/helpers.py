"""Helpers shared by several test modules (no test module imports another): tiny configs
and data, the option set that exercises every stabiliser, a tree's array leaves, and
``made_once`` for session fixtures shared by xdist workers."""

import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from stnca.model import NCA
from stnca.train import config_from_dict

EMOJI = ["emoji:alien_monster", "emoji:microbe", "emoji:rooster"]


def leaves(tree):
    return jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))


def diffusion_data(path, rng, size=12, frames=6, steps=4, diffusion=0.15):
    """A diffusing smooth field (1 channel), frames `steps` Euler steps apart."""
    from stnca.stencils import apply_kernel

    field = rng.uniform(size=(2, size, size, 1)).astype(np.float32)
    x = jnp.asarray(field)
    out = [x]
    for _ in range(frames - 1):
        for _ in range(steps):
            x = x + diffusion * apply_kernel(x, "laplacian", "periodic")
        out.append(x)
    trajectory = np.stack([np.asarray(o) for o in out], axis=1)
    np.save(path, trajectory)
    return trajectory


def tiny_config(tmp_path, rng, **training):
    diffusion_data(tmp_path / "diffusion.npy", rng)
    settings = {
        "epochs": 600,
        "steps_between_frames": 4,
        "learning_rate": 0.02,
        "lr_decay_rate": 0.01,
        "lr_decay_epochs": 600,
        "checkpoint_every": 200,
        **training,
    }
    return config_from_dict(
        {
            "model": {"hidden_channels": 1, "kernels": ["identity", "laplacian"]},
            "data": {"source": "file", "path": "diffusion.npy"},
            "training": settings,
        },
        base_dir=tmp_path,
    )


EVERY_OPTION = dict(
    update_every="minibatch",
    state_penalty=0.01,
    propagate_tolerance=0.05,
    restart_every=3,
    restart_hidden_noise=0.1,
    validate_every=2,
)


def tiny_morph_config(tmp_path, **training):
    return config_from_dict(
        {
            "model": {
                "hidden_channels": 4,
                "kernels": ["identity", "gradient_x", "gradient_y", "laplacian"],
                "update_probability": 0.5,
                "boundary": "fixed",
            },
            "data": {
                "source": "images",
                "images": EMOJI,
                "size": 8,
                "padding": 2,
                "copies": 2,
                "redraw_every": 10,
            },
            "training": {
                "epochs": 300,
                "steps_between_frames": 4,
                "learning_rate": 1e-2,
                "checkpoint_every": 100,
                **training,
            },
        },
        base_dir=tmp_path,
    )


def made_once(folder, name: str, make):
    """``folder / name``, made by ``make(path)`` in the first process that asks for it: the
    others wait on a file lock and reuse it, so a session fixture is built once per run, not
    once per worker. A ``make`` that fails leaves nothing marked done (the next one retries)."""
    from filelock import FileLock

    target, done = folder / name, folder / f"{name}.done"
    with FileLock(str(folder / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            make(target)
            done.touch()
    return target


D = 0.13


def diffusion_nca(hidden_channels=0):
    """A hand-built NCA whose rule is x' = x + D * laplacian(x) on its one observable
    channel: one linear hidden unit that reads the Laplacian alone."""
    model = NCA(1, hidden_channels, activation="linear", hidden_width=1, key=jax.random.key(0))
    w_in = jnp.zeros_like(model.w_in).at[0, 0, 1].set(1.0)  # (unit, channel, laplacian)
    w_out = jnp.zeros_like(model.w_out).at[0, 0].set(D)
    return eqx.tree_at(lambda m: (m.w_in, m.w_out), model, (w_in, w_out))
