"""Tutorial: learn Gray-Scott dynamics, then test the rule on an unseen initial condition.

    python docs/tutorials/gray_scott.py [FOLDER]

works in FOLDER (default ``tutorial-gray-scott``): about 4 minutes on 2 CPU cores. With
``STNCA_TUTORIAL_TINY=1`` it runs the same steps at toy sizes in seconds (the test suite
does this). Each ``stnca(...)`` line is the shell command ``stnca ...``, run in this process.
"""

import json
import os
import shlex
import sys
from pathlib import Path

import stnca
from stnca.cli import run


def stnca_command(command: str) -> None:
    """Run ``stnca COMMAND`` as a shell would; stop at the first failure."""
    print(f"\n$ stnca {command}", flush=True)
    code = run(shlex.split(command))
    if code:
        sys.exit(f"stnca {command.split()[0]} failed (exit code {code})")


# --8<-- [start:settings]
SIZE = 32  # the training lattice: SIZE x SIZE cells
STEPS = 512  # PDE steps per training trajectory: the horizon N = M t
T = 32  # steps_between_frames t, so M = STEPS / T = 16 transitions
EPOCHS = 400  # about 3 minutes on 2 CPU cores
TEST_SIZE = 64  # the test lattice is twice as wide ...
TEST_STEPS = 2 * STEPS  # ... and runs for twice the training horizon
# --8<-- [end:settings]
if os.environ.get("STNCA_TUTORIAL_TINY") == "1":  # toy sizes, for the test suite
    SIZE, STEPS, T, EPOCHS, TEST_SIZE, TEST_STEPS = 16, 64, 16, 3, 16, 128

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial-gray-scott")
folder.mkdir(parents=True, exist_ok=True)
os.chdir(folder)

# --8<-- [start:config]
Path("gray_scott.toml").write_text(f"""
[model]
hidden_channels = 6                  # C = 2 observable (A, B) + 6 hidden channels
kernels = ["identity", "laplacian"]  # isotropic perception, like diffusion
activation = "relu"

[data]
source = "gray_scott"                # simulate the training data
size = {SIZE}
steps = {STEPS}
trajectories = 4                     # R = 4 trajectories
# one trajectory from each of four families of initial conditions
initial_condition = ["smooth", "sparse_noise", "lines", "fourier_mid"]

[training]
epochs = {EPOCHS}
steps_between_frames = {T}
minibatches = 8                      # 8 mini-batches, one optimiser update each
learning_rate = 3e-3
lr_decay_rate = 0.1                  # decays to 3e-4 over the run
lr_decay_epochs = {EPOCHS}
""")
# --8<-- [end:config]

# --8<-- [start:train]
stnca_command("train gray_scott.toml --out run")
# --8<-- [end:train]

# --8<-- [start:test-data]
stnca_command(
    f"simulate gray-scott --size {TEST_SIZE} --steps {TEST_STEPS} --every {T} "
    "--init high_frequency --seed 2024 --out test.npy --png"
)
# --8<-- [end:test-data]

# --8<-- [start:evaluate]
stnca_command(
    f"evaluate run/model.eqx --truth test.npy --steps-between-frames {T} "
    "--out evaluation --video evaluation/evaluation.mp4"
)
# --8<-- [end:evaluate]

# --8<-- [start:results]
report = json.loads(Path("evaluation/evaluation.json").read_text())
print("\nrelative error ||x - y|| / ||y|| on the unseen initial condition")
print(" step     NCA  persistence  spatial mean")
for row in report["frames"]:
    if row["step"] in (STEPS, TEST_STEPS):
        errors = [row[who]["relative_error"] for who in ("nca", "persistence", "spatial_mean")]
        print(f"{row['step']:5d}  {errors[0]:6.3f}  {errors[1]:11.3f}  {errors[2]:12.3f}")
# --8<-- [end:results]

# --8<-- [start:python]
model = stnca.load_model("run/model.eqx")
truth = stnca.load_trajectory("test.npy")  # (1, frames, TEST_SIZE, TEST_SIZE, 2)
evaluation = stnca.evaluate(model, truth, T)
last = evaluation.at_frame(truth.shape[1] - 1)
print(f"\nfrom Python: relative error at step {TEST_STEPS}: {last['nca']['relative_error']:.3f}")
prediction = evaluation.prediction  # the NCA's frames, physical units, like truth
# --8<-- [end:python]
