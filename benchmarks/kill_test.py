"""Kill training at random moments, resume, and check that nothing is lost.

    python benchmarks/kill_test.py [--kills 15] [--seed 0]

A tiny config (diffusion data from a file, 300 epochs, a checkpoint every epoch, so that
writes of the checkpoint, the models, the metrics and the loss figure are frequent) is
trained once without interruption. Then the same config is started in another folder,
SIGKILLed after a random delay, and resumed with `--resume`, again and again until it
finishes. After every kill: a model.eqx that existed must still load. At the end: the
final weights and the chosen model are bit-identical to the uninterrupted run's, and no
temporary file of an interrupted write is left. Prints one line per kill and a summary.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from stnca.serialization import load_model

CONFIG = """[model]
hidden_channels = 2
[data]
source = "file"
path = "data.npy"
[training]
epochs = 300
steps_between_frames = 2
checkpoint_every = 1
"""


def train(folder: Path, out: Path, resume: bool) -> subprocess.Popen:
    """Start (or resume) the training. A run killed before its first checkpoint left files
    but nothing to resume: it is started afresh with ``--overwrite``, as its refusal says."""
    command = [sys.executable, "-m", "stnca", "train", str(folder / "c.toml"), "--out", str(out)]
    if resume:
        command.append("--resume")
    elif out.exists() and any(out.iterdir()):
        command.append("--overwrite")
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def leaves(path: Path) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(load_model(path))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        data = np.random.default_rng(0).uniform(size=(2, 5, 10, 10, 1)).astype(np.float32)
        np.save(folder / "data.npy", data)
        (folder / "c.toml").write_text(CONFIG)
        start = time.perf_counter()
        reference = train(folder, folder / "reference", resume=False)
        # the start-up (imports, data, compiling) before the first checkpoint: kills are timed
        # after it, so that they land while checkpoints and models are being written
        first_checkpoint = None
        while reference.poll() is None:
            if first_checkpoint is None and (folder / "reference" / "checkpoint.eqx").exists():
                first_checkpoint = time.perf_counter() - start
            time.sleep(0.05)
        if reference.returncode != 0:
            sys.exit(f"the reference run failed: {reference.stderr.read().decode()}")
        uninterrupted = time.perf_counter() - start
        startup = first_checkpoint or 3.0
        print(f"reference run: {uninterrupted:.1f} s (first checkpoint after {startup:.1f} s)")
        out, kills, lost = folder / "killed", 0, 0
        while True:
            process = train(folder, out, resume=(out / "checkpoint.eqx").is_file())
            if kills < args.kills:
                # mostly after the start-up (during the writes), sometimes just before it
                time.sleep(rng.uniform(0.8 * startup, startup + 5.0))
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    kills += 1
                    model_ok = "no model yet"
                    if (out / "model.eqx").exists():
                        try:
                            load_model(out / "model.eqx")
                            model_ok = "model.eqx loads"
                        except ValueError as error:
                            lost += 1
                            model_ok = f"MODEL LOST: {error}"
                    temporaries = (
                        sorted(p.name for p in out.glob(".*.tmp*")) if out.exists() else []
                    )
                    print(f"kill {kills}: {model_ok}; temporaries left by the kill: {temporaries}")
                    continue
            code = process.wait()
            if code != 0:
                sys.exit(f"the resumed run failed: {process.stderr.read().decode()}")
            break
        same = all(
            all(
                np.array_equal(a, b)
                for a, b in zip(leaves(folder / "reference" / f), leaves(out / f), strict=True)
            )
            for f in ("final.eqx", "model.eqx")
        )
        left = sorted(p.name for p in out.glob(".*.tmp*"))
        print(
            f"{kills} kills, {lost} models lost; final and chosen weights bit-identical to the "
            f"uninterrupted run: {same}; temporary files left at the end: {left or 'none'}"
        )
        if lost or not same or left:
            sys.exit(1)


if __name__ == "__main__":
    main()
