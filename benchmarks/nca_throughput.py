"""NCA forward+backward throughput on the paper's Gray-Scott setting.

C = 8 channels (2 observable, 6 hidden), identity + Laplacian kernels, relu, 64x64 lattice,
32 NCA steps per transition, 32 states in a batch, Euclidean loss on the observable channels.
Prints cell-updates per second of one jitted value-and-gradient call (the unit of Algorithm
2's inner loop), the median over repeats, after a compile/warm-up call.

    python benchmarks/nca_throughput.py [--size 64] [--steps 32] [--batch 32] [--repeats 10]
                                        [--no-checkpoint]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp

import stnca


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--no-checkpoint",
        dest="checkpoint",
        action="store_false",
        help="keep every step's activations instead of rematerialising them (the training "
        "default, training.checkpoint_rollout = true, rematerialises)",
    )
    args = parser.parse_args()

    k_model, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    model = stnca.NCA(2, args.channels - 2, kernels=("identity", "laplacian"), key=k_model)
    # non-zero output layer so the backward pass does real work
    model = eqx.tree_at(lambda m: m.w_out, model, 0.01 * jnp.ones_like(model.w_out))
    shape = (args.batch, args.size, args.size)
    x = jax.random.uniform(k_x, shape + (args.channels,))
    y = jax.random.uniform(k_y, shape + (2,))

    @eqx.filter_jit
    def value_and_grad(m, x, y):
        def loss(m):
            final = m.advance(x, args.steps, checkpoint=args.checkpoint)
            return jnp.mean(stnca.losses.euclidean(final[..., :2], y))

        return eqx.filter_value_and_grad(loss)(m)

    start = time.perf_counter()
    jax.block_until_ready(value_and_grad(model, x, y))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(value_and_grad(model, x, y))
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    updates = args.batch * args.steps * args.size * args.size
    print(
        f"device          {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"jax             {jax.__version__}")
    print(
        f"setting         C={args.channels}, identity+laplacian, {args.size}x{args.size}, "
        f"{args.steps} steps, batch {args.batch}, checkpoint={args.checkpoint}"
    )
    print(f"compile+first   {compile_s:.2f} s")
    print(
        f"median call     {median * 1e3:.1f} ms (min {min(times) * 1e3:.1f}, "
        f"max {max(times) * 1e3:.1f}, {args.repeats} repeats)"
    )
    print(f"throughput      {updates / median / 1e6:.3f} M cell-updates/s (forward+backward)")


if __name__ == "__main__":
    main()
