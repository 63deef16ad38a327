"""Interrupt `stnca train --overwrite` of a finished run at random moments; the folder must
always hold a loadable model.eqx.

    python benchmarks/overwrite_kill_test.py [--tries 20] [--signals INT,KILL] [--seed 0]

A tiny config (diffusion data from a file, 60 epochs, a checkpoint every 20) is trained once
to the end. Then, ``--tries`` times for each signal, `stnca train CONFIG --out RUN
--overwrite` is started on that finished run and sent the signal (SIGINT is Ctrl-C, SIGKILL
is kill -9) after a random delay between half the start-up time (imports, data, compiling,
measured on the first run) and the end of a run. After each: model.eqx must load (the old
run's or the new one's), no ``.replaced`` folder may be left without a reason (after a
SIGKILL it may stay until the next run puts it back), and the exit code is recorded: a
negative one other than the signal's own, or 139, is a crash. Prints one line per try and a
summary; exits 1 if any model was lost or any process crashed.
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

import numpy as np

from stnca.serialization import load_model

CONFIG = """[model]
hidden_channels = 2
[data]
source = "file"
path = "data.npy"
[training]
epochs = 60
steps_between_frames = 2
checkpoint_every = 20
"""


def start(folder: Path, overwrite: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "stnca", "train", str(folder / "c.toml")]
    command += ["--out", str(folder / "run")] + (["--overwrite"] if overwrite else [])
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--signals", default="INT,KILL")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # started in the background (`cmd &`), this script and the commands it starts would
    # ignore SIGINT (the last stop's Ctrl-C tries all ran to the end for that reason):
    # restore Ctrl-C's default, as in a terminal
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        data = np.random.default_rng(0).uniform(size=(2, 5, 10, 10, 1)).astype(np.float32)
        np.save(folder / "data.npy", data)
        (folder / "c.toml").write_text(CONFIG)
        begin = time.perf_counter()
        first = start(folder, overwrite=False)
        startup = None
        while first.poll() is None:
            if startup is None and (folder / "run" / "checkpoint.eqx").exists():
                startup = time.perf_counter() - begin
            time.sleep(0.05)
        if first.returncode != 0:
            sys.exit(f"the first run failed: {first.stderr.read().decode()}")
        whole = time.perf_counter() - begin
        startup = startup or whole / 2
        print(f"a whole run: {whole:.1f} s, first checkpoint after {startup:.1f} s")
        lost = crashed = 0
        for signame in args.signals.split(","):
            number = getattr(signal, f"SIG{signame}")
            for i in range(args.tries):
                process = start(folder, overwrite=True)
                time.sleep(rng.uniform(0.5 * startup, whole))
                process.send_signal(number)
                code = process.wait()
                crash = code in (139, -signal.SIGSEGV) or (code < 0 and code != -number)
                crashed += crash
                try:
                    epoch = load_model(folder / "run" / "model.eqx").__class__.__name__
                    state = f"model.eqx loads ({epoch})"
                except (OSError, ValueError) as error:
                    lost += 1
                    state = f"MODEL LOST: {error}"
                kept = (folder / "run" / ".replaced").exists()
                print(
                    f"SIG{signame} {i + 1}: exit {code}{' CRASH' if crash else ''}; {state}; "
                    f".replaced left: {kept}",
                    flush=True,
                )
        print(f"{lost} models lost, {crashed} crashes")
        if lost or crashed:
            sys.exit(1)


if __name__ == "__main__":
    main()
