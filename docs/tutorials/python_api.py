"""Tutorial: the everyday commands as Python calls: import, train, rollout, evaluate and
extract. Each section does what one ``stnca`` command does, with the library call that the
command is a thin shell over.

    python docs/tutorials/python_api.py [FOLDER]

works in FOLDER (default ``tutorial-python-api``): about 5 minutes on 2 CPU cores. With
``STNCA_TUTORIAL_TINY=1`` it runs the same steps at toy sizes in seconds (the test suite
does this).
"""

import json
import os
import sys
from pathlib import Path

import jax
import numpy as np
import tifffile

import stnca
from stnca.analysis import write_evaluation
from stnca.analysis.extraction import extract_equation
from stnca.data.importers import Selection, read_sources
from stnca.train import config_from_dict, train

SIZE, STEPS, T, EPOCHS = 32, 512, 32, 400  # about 3 minutes of training on 2 CPU cores
SAMPLES, ROLLOUTS = 200_000, 4  # the equation is fitted on samples of 4 rollouts
if os.environ.get("STNCA_TUTORIAL_TINY") == "1":  # toy sizes, for the test suite
    SIZE, STEPS, T, EPOCHS, SAMPLES, ROLLOUTS = 16, 32, 16, 2, 2_000, 1

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial-python-api")
folder.mkdir(parents=True, exist_ok=True)
os.chdir(folder)

# A stand-in for a microscope movie: Gray-Scott from four initial conditions, written as
# one TIFF per movie with axes TCYX (time, channel, rows, columns).
for i, family in enumerate(["smooth", "sparse_noise", "lines", "fourier_mid"]):
    start = stnca.initial_condition(family, SIZE, key=jax.random.key(i))
    frames = np.asarray(stnca.gray_scott.simulate(start, STEPS, every=T))  # (T, H, W, 2)
    movie = np.moveaxis(frames, -1, 1)  # (T, C, H, W)
    tifffile.imwrite(f"movie_{i}.tif", movie, imagej=True, metadata={"axes": "TCYX"})

# --8<-- [start:import]
# stnca import movie_*.tif --out movies.npy
imported = read_sources(sorted(Path(".").glob("movie_*.tif")), Selection())
print(imported.describe())
stnca.save_array("movies.npy", imported.trajectories)  # float32 (R, T, H, W, C)
# --8<-- [end:import]

# --8<-- [start:train]
# stnca train movies.toml --out run
config = config_from_dict(
    {
        "model": {"hidden_channels": 6, "kernels": ["identity", "laplacian"]},
        "data": {"source": "file", "path": "movies.npy"},
        "training": {
            "epochs": EPOCHS,
            "steps_between_frames": T,  # NCA steps between two frames
            "minibatches": 8,
            "learning_rate": 3e-3,
            "lr_decay_rate": 0.1,
            "lr_decay_epochs": EPOCHS,
        },
    },
    base_dir=Path.cwd(),  # where data.path is read from
)
result = train(config, "run", overwrite=True)
print(f"chosen epoch {result.best_epoch}, free-rollout loss {result.best_loss:.4g}")
# --8<-- [end:train]

# --8<-- [start:rollout]
# stnca rollout run/model.eqx --init start.npy --steps 1024 --every 32 --out rollout.npy
model = stnca.load_model("run/model.eqx")
start = np.asarray(stnca.initial_condition("high_frequency", 2 * SIZE, key=jax.random.key(2024)))
frames = stnca.predict(model, start[None], 2 * STEPS, every=T)  # (1, frames, H, W, 2)
stnca.save_array("rollout.npy", frames[0])
# --8<-- [end:rollout]

# --8<-- [start:evaluate]
# stnca evaluate run/model.eqx --truth truth.npy --steps-between-frames 32 --out evaluation
truth = np.asarray(stnca.gray_scott.simulate(start, 2 * STEPS, every=T))  # the PDE itself
evaluation = stnca.evaluate(model, truth, T)
report = write_evaluation(evaluation, truth, "evaluation")  # evaluation.json and .png
final = report["final"]
print(
    f"relative error at step {final['step']}: NCA {final['nca']['relative_error']:.3f}, "
    f"persistence {final['persistence']['relative_error']:.3f}, "
    f"spatial mean {final['spatial_mean']['relative_error']:.3f}"
)
# --8<-- [end:evaluate]

# --8<-- [start:extract]
# stnca extract run/model.eqx --init smooth --rollouts 4 --steps 512 --pde gray-scott --dt 1
#     --out equation
found = extract_equation(
    "run/model.eqx",
    init="smooth",  # the rollouts start from this family ...
    rollouts=ROLLOUTS,  # ... with this many draws ...
    steps=STEPS,  # ... and run this many NCA steps
    pde="gray-scott",  # the truth to compare the coefficients with
    dt=1.0,  # one NCA step is one PDE step here (t NCA steps per t PDE steps)
    samples=SAMPLES,
    out="equation",
)
print(json.dumps(found.equation["channels"], indent=1))
# --8<-- [end:extract]
