"""Generate an NCA training/test dataset from the Brusselator reaction-diffusion PDE.

The PDE is integrated by the independent library py-pde (https://github.com/zwicker-group/py-pde),
not by any code of this project. Run with an interpreter that has py-pde installed, e.g.

    python3 -m venv /tmp/pdeenv && /tmp/pdeenv/bin/pip install py-pde==0.59.0 matplotlib
    /tmp/pdeenv/bin/python examples/other_pde/make_data.py --out examples/other_pde

Brusselator (u: activator, v: inhibitor), periodic square grid, spacing DX:

    du/dt = DU * lap(u) + A - (B + 1) * u + u^2 * v
    dv/dt = DV * lap(v) + B * u - u^2 * v

Homogeneous steady state (u*, v*) = (A, B / A). With A=3, B=9 it is stable without diffusion
(Hopf needs B > 1 + A^2 = 10) but Turing-unstable for DV/DU = 5 (threshold
B > (1 + A*sqrt(DU/DV))^2 ~ 5.5); the fastest-growing wavelength is ~8 grid cells.

Outputs (float32, channel-last, frame 0 = initial state, frames FRAME_DT apart):
    train.npy  (4, 21, 32, 32, 2)  smooth random perturbations of the steady state, seeds 0..3
    test.npy   (1, 41, 64, 64, 2)  structured perturbation (rectangles, a stripe, disks),
                                   twice as long
    data.png   u of train trajectory 0 and of the test trajectory at 6 frames each
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pde

# --- physics -----------------------------------------------------------------------------------
A, B = 3.0, 9.0
DU, DV = 3.0, 15.0
DX = 1.0  # physical grid spacing (same for train and test)
U0, V0 = A, B / A  # homogeneous steady state

# --- sampling ----------------------------------------------------------------------------------
FRAME_DT = 0.25  # physical time between stored frames
SOLVER_DT = 0.005  # fixed step of py-pde's explicit Runge-Kutta 5(4) solver (DV*dt/dx^2 = 0.075);
# halving it changes the data by < 1e-7, so the stored frames are converged in time
TRAIN_N, TRAIN_FRAMES, TRAIN_SEEDS = 32, 21, (0, 1, 2, 3)
TEST_N, TEST_FRAMES = 64, 41
NOISE_AMP = 0.1  # std of the smooth random perturbation of u (v gets an independent one)
NOISE_CORR = 3.0  # Gaussian correlation length of the random perturbation, in grid cells


def make_pde() -> pde.PDE:
    return pde.PDE(
        {
            "u": "DU * laplace(u) + A - (B + 1) * u + u**2 * v",
            "v": "DV * laplace(v) + B * u - u**2 * v",
        },
        consts={"A": A, "B": B, "DU": DU, "DV": DV},
    )


def make_grid(n: int) -> pde.CartesianGrid:
    return pde.CartesianGrid([(0.0, n * DX), (0.0, n * DX)], [n, n], periodic=True)


def smooth_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Periodic Gaussian-smoothed white noise with unit standard deviation."""
    white = rng.standard_normal((n, n))
    k = 2 * np.pi * np.fft.fftfreq(n)  # per cell
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    field = np.fft.ifft2(np.fft.fft2(white) * np.exp(-0.5 * k2 * NOISE_CORR**2)).real
    return field / field.std()


def random_ic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = U0 + NOISE_AMP * smooth_noise(n, rng)
    v = V0 + NOISE_AMP * smooth_noise(n, rng)
    return u, v


def structured_ic(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Steady state plus a few sharp-edged shapes: two rectangles, a thin stripe and two disks."""
    y, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    u = np.full((n, n), U0)
    v = np.full((n, n), V0)
    u[8:20, 10:30] += 1.0  # wide rectangle, u raised
    v[40:56, 6:14] -= 0.5  # tall rectangle, v lowered
    u[:, 44:46] += 1.0  # thin vertical stripe across the whole (periodic) domain
    for cy, cx, r, du in ((44, 34, 5, -1.0), (18, 50, 3, 1.5)):
        u[(y - cy) ** 2 + (x - cx) ** 2 <= r * r] += du
    return u, v


def simulate(u: np.ndarray, v: np.ndarray, frames: int) -> np.ndarray:
    """Integrate with py-pde and return (frames, H, W, 2) float32 sampled every FRAME_DT."""
    n = u.shape[0]
    grid = make_grid(n)
    state = pde.FieldCollection(
        [pde.ScalarField(grid, u, label="u"), pde.ScalarField(grid, v, label="v")]
    )
    storage = pde.MemoryStorage()
    t_end = (frames - 1) * FRAME_DT
    make_pde().solve(
        state,
        t_range=t_end,
        dt=SOLVER_DT,
        solver="runge-kutta",
        adaptive=False,
        backend="numpy",  # tiny grids: numpy is faster here than numba's per-solve compilation
        tracker=[storage.tracker(FRAME_DT)],
    )
    data = np.stack([np.stack([f[0].data, f[1].data], axis=-1) for f in storage])
    times = np.asarray(storage.times)
    assert data.shape[0] == frames, (data.shape, times)
    assert np.allclose(times, FRAME_DT * np.arange(frames), atol=1e-6), times
    assert np.isfinite(data).all()
    return data.astype(np.float32)


def summarize(name: str, arr: np.ndarray) -> None:
    print(f"{name}: shape {arr.shape} dtype {arr.dtype}")
    for c, label in enumerate("uv"):
        ch = arr[..., c]
        print(f"  {label}: min {ch.min():.3f} max {ch.max():.3f}")
    # per-frame spatial std of u and relative frame-to-frame change (trajectory 0)
    u = arr[0, ..., 0]
    std = u.std(axis=(1, 2))
    du = np.abs(np.diff(u, axis=0)).mean(axis=(1, 2))
    print("  std(u) per frame:", " ".join(f"{s:.2f}" for s in std))
    print("  mean|u[t+1]-u[t]|:", " ".join(f"{d:.3f}" for d in du))


def save_figure(path: str, train: np.ndarray, test: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("train[0]", train[0, ..., 0], np.linspace(0, train.shape[1] - 1, 6).round().astype(int)),
        ("test", test[0, ..., 0], np.linspace(0, test.shape[1] - 1, 6).round().astype(int)),
    ]
    vmin = min(train[..., 0].min(), test[..., 0].min())
    vmax = max(train[..., 0].max(), test[..., 0].max())
    fig, axes = plt.subplots(2, 6, figsize=(9, 3.4))
    for r, (name, u, idx) in enumerate(rows):
        for c, t in enumerate(idx):
            ax = axes[r, c]
            im = ax.imshow(u[t], cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_title(f"{name} f{t}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="u")
    fig.suptitle(f"Brusselator u (py-pde), frame dt = {FRAME_DT:.2f}", fontsize=9)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--no-png", action="store_true", help="skip writing data.png")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(f"py-pde {pde.__version__}; Brusselator A={A} B={B} DU={DU} DV={DV} dx={DX}")

    t0 = time.time()
    train = np.stack([simulate(*random_ic(TRAIN_N, s), TRAIN_FRAMES) for s in TRAIN_SEEDS])
    test = simulate(*structured_ic(TEST_N), TEST_FRAMES)[None]
    print(f"simulated in {time.time() - t0:.1f} s")

    np.save(os.path.join(args.out, "train.npy"), train)
    np.save(os.path.join(args.out, "test.npy"), test)
    summarize("train", train)
    summarize("test", test)
    if not args.no_png:
        save_figure(os.path.join(args.out, "data.png"), train, test)


if __name__ == "__main__":
    main()
