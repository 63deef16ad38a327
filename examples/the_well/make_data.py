"""Write Gray-Scott trajectories as HDF5 files in The Well's layout, as a user would get them.

The Well (Ohana et al. 2024, https://polymathic-ai.org/the_well/) stores each dataset split as
HDF5 files: scalar fields under ``t0_fields/<name>`` with shape ``(n_traj, n_steps, x, y)``
(float32), the sample times under ``dimensions/time``, the grid under ``dimensions/x`` and
``dimensions/y``, the equation's parameters as ``scalars/<name>`` and root attributes
(``dataset_name``, ``simulation_parameters``, ...). Its own Gray-Scott set has other
parameters and solver; only the layout is copied here. The dynamics are the paper's
(stnca's simulator, forward Euler, dt = 1), stored every ``--store-every`` PDE steps.

    python examples/the_well/make_data.py --out examples/the_well/data

writes ``gray_scott_train.hdf5`` (4 trajectories from smooth blobs, 32 x 32, 512 steps) and
``gray_scott_test.hdf5`` (1 trajectory from an unseen high-frequency initial condition,
64 x 64, 1024 steps: twice the horizon).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import jax
import numpy as np

from stnca.data import gray_scott
from stnca.data.initial_conditions import initial_condition


def write_well(path: Path, trajectories: np.ndarray, store_every: int, params) -> None:
    """``trajectories`` (R, T, H, W, 2) as a Well-layout HDF5 file (fields A and B)."""
    r, t, h, w, _ = trajectories.shape
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "gray_scott_paper"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = r
        names = ["alpha", "gamma", "D_A", "D_B"]
        values = [params.alpha, params.gamma, params.diffusion_a, params.diffusion_b]
        f.attrs["simulation_parameters"] = names
        for name, value in zip(names, values, strict=True):
            f.attrs[name] = value
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims["time"] = np.arange(t, dtype=np.float32) * store_every * params.dt
        dims["x"] = np.arange(h, dtype=np.float32)
        dims["y"] = np.arange(w, dtype=np.float32)
        for dataset in dims.values():
            dataset.attrs["sample_varying"] = False
        bcs = f.create_group("boundary_conditions")
        for axis in ("x", "y"):
            bc = bcs.create_group(f"{axis}_periodic")
            bc.attrs["bc_type"] = "PERIODIC"
            bc.attrs["associated_dims"] = [axis]
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = names
        for name, value in zip(names, values, strict=True):
            scalars[name] = np.float32(value)
        fields = f.create_group("t0_fields")
        fields.attrs["field_names"] = ["A", "B"]
        for c, name in enumerate(("A", "B")):
            fields[name] = trajectories[..., c]
            fields[name].attrs.update(
                dim_varying=[True, True], sample_varying=True, time_varying=True
            )
        for rank in ("t1_fields", "t2_fields"):
            f.create_group(rank).attrs["field_names"] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("examples/the_well/data"))
    parser.add_argument("--store-every", type=int, default=8, help="PDE steps between frames")
    parser.add_argument("--size", type=int, default=32, help="training lattice")
    parser.add_argument("--steps", type=int, default=512, help="training horizon, PDE steps")
    parser.add_argument("--trajectories", type=int, default=4)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    params = gray_scott.GrayScottParams()
    key = jax.random.key(0)
    train = initial_condition("smooth", args.size, key=key, batch=args.trajectories)
    test = initial_condition("high_frequency", 2 * args.size, key=jax.random.fold_in(key, 1))
    for name, initial, steps in (
        ("gray_scott_train.hdf5", train, args.steps),
        ("gray_scott_test.hdf5", test[None], 2 * args.steps),
    ):
        y = np.asarray(gray_scott.simulate(initial, steps, every=args.store_every, params=params))
        write_well(args.out / name, y, args.store_every, params)
        print(f"wrote {args.out / name}: t0_fields/A, B of shape {y.shape[:-1]}")


if __name__ == "__main__":
    main()
