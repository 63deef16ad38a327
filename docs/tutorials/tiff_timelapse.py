"""Tutorial: learn the rule behind a TIFF time-lapse, imported with ``stnca import``.

    python docs/tutorials/tiff_timelapse.py [FOLDER]

works in FOLDER (default ``tutorial-tiff``): about 5 minutes on 2 CPU cores. It needs the
``io`` extra (``pip install -e ".[io]"``) for TIFF files. With ``STNCA_TUTORIAL_TINY=1`` it
runs the same steps at toy sizes in seconds (the test suite does this). Each
``stnca(...)`` line is the shell command ``stnca ...``, run in this process.
"""

import os
import shlex
import sys
from pathlib import Path

import jax
import numpy as np
import tifffile

import stnca
from stnca.cli import run


def stnca_command(command: str) -> None:
    """Run ``stnca COMMAND`` as a shell would; stop at the first failure."""
    print(f"\n$ stnca {command}", flush=True)
    code = run(shlex.split(command))
    if code:
        sys.exit(f"stnca {command.split()[0]} failed (exit code {code})")


# --8<-- [start:settings]
SIZE = 32  # the movies' lattice: SIZE x SIZE pixels
MOVIE_STEPS = 512  # how long each movie runs, in PDE steps ...
MOVIE_EVERY = 16  # ... with one frame every 16 steps: 33 frames
EVERY = 2  # stnca import keeps every 2nd frame: 17 frames, 32 PDE steps apart
T = 32  # so one NCA step stands for one PDE step
EPOCHS = 1000
# --8<-- [end:settings]
if os.environ.get("STNCA_TUTORIAL_TINY") == "1":  # toy sizes, for the test suite
    SIZE, MOVIE_STEPS, MOVIE_EVERY, EVERY, T, EPOCHS = 16, 64, 8, 2, 16, 3

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial-tiff")
folder.mkdir(parents=True, exist_ok=True)
os.chdir(folder)

# --8<-- [start:movies]
# Three movies of a Gray-Scott pattern forming, saved as a microscope would save them:
# 16-bit TIFF stacks with two channels and the axes T, C, Y, X in the ImageJ metadata.
initial = stnca.initial_condition("smooth", SIZE, key=jax.random.key(7), batch=3)
movies = np.asarray(stnca.gray_scott.simulate(initial, MOVIE_STEPS, every=MOVIE_EVERY))
for number, movie in enumerate(movies):  # movie: (T, Y, X, C) with C = (A, B)
    counts = np.round(100 + 4000 * movie).astype(np.uint16)  # "camera counts"
    tifffile.imwrite(
        f"movie_{number}.tif",
        counts.transpose(0, 3, 1, 2),  # (T, C, Y, X)
        imagej=True,
        metadata={"axes": "TCYX"},
    )
# --8<-- [end:movies]

# --8<-- [start:import]
stnca_command(
    f"import movie_0.tif movie_1.tif movie_2.tif --out movies.npy --every {EVERY} "
    "--normalise minmax --png"
)
# --8<-- [end:import]

# --8<-- [start:config]
Path("movies.toml").write_text(f"""
[model]
hidden_channels = 6
kernels = ["identity", "laplacian"]
boundary = "periodic"          # these movies wrap around; for real images use "reflect"

[data]
source = "file"
path = "movies.npy"            # (R, T, H, W, C) = (3, frames, {SIZE}, {SIZE}, 2)
validation_trajectories = 1    # the last movie is held back: it chooses the model

[training]
epochs = {EPOCHS}
steps_between_frames = {T}
minibatches = 2
learning_rate = 3e-3
lr_decay_rate = 0.1
lr_decay_epochs = {EPOCHS}
""")
# --8<-- [end:config]

# --8<-- [start:train]
stnca_command("train movies.toml --out run")
# --8<-- [end:train]

# --8<-- [start:evaluate]
stnca_command("import movies.npy --trajectories 2:3 --out held_out.npy")
stnca_command(
    f"evaluate run/model.eqx --truth held_out.npy --steps-between-frames {T} --out evaluation"
)
# --8<-- [end:evaluate]
