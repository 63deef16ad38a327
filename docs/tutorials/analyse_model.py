"""Tutorial: probe a trained model (the paper's section 3.2.2) and make its web page.

    python docs/tutorials/analyse_model.py [FOLDER]

works in FOLDER (default ``tutorial-analyse``): about 6 minutes on 2 CPU cores, most of it
the adversarial search. With ``STNCA_TUTORIAL_TINY=1`` it runs the same steps at toy sizes
in seconds (the test suite does this). Each ``stnca(...)`` line is the shell command
``stnca ...``, run in this process.
"""

import json
import os
import shlex
import sys
from pathlib import Path

from stnca.cli import run


def stnca_command(command: str) -> None:
    """Run ``stnca COMMAND`` as a shell would; stop at the first failure."""
    print(f"\n$ stnca {command}", flush=True)
    code = run(shlex.split(command))
    if code:
        sys.exit(f"stnca {command.split()[0]} failed (exit code {code})")


# --8<-- [start:settings]
MODEL = "emoji_morph_cpu"  # shipped with stnca; or the path of your own run's model.eqx
INIT = "emoji:alien_monster"  # the first image of its training sequence
STEPS = 96  # n: its training horizon, M t = 4 x 24 steps
STRIDE = 1  # perturb every cell of the 44x44 lattice in turn
ITERATIONS = 200  # optimiser steps of the adversarial search ...
MODE = "both"  # ... for a destroying and a preserving perturbation
# --8<-- [end:settings]
if os.environ.get("STNCA_TUTORIAL_TINY") == "1":  # toy sizes, for the test suite
    STEPS, STRIDE, ITERATIONS, MODE = 2, 11, 2, "destroy"

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial-analyse")
folder.mkdir(parents=True, exist_ok=True)
os.chdir(folder)

# --8<-- [start:perturb]
stnca_command(
    f"analyse perturb {MODEL} --init {INIT} --steps {STEPS} --stride {STRIDE} --out perturb"
)
# --8<-- [end:perturb]

# --8<-- [start:adversarial]
stnca_command(
    f"analyse adversarial {MODEL} --init {INIT} --steps {STEPS} --iterations {ITERATIONS} "
    f"--mode {MODE} --out adversarial"
)
# --8<-- [end:adversarial]

# --8<-- [start:symmetry]
stnca_command(f"analyse symmetry {MODEL} --init {INIT} --steps {STEPS} --out symmetry")
# --8<-- [end:symmetry]

# --8<-- [start:json]
perturb = json.loads(Path("perturb/perturb.json").read_text())
print("\nperturb.json:", sorted(perturb))
symmetry = json.loads(Path("symmetry/symmetry.json").read_text())
for name, error in symmetry["relative_error"].items():
    print(f"{name:12s} {error:.3f}   (noise floor {symmetry['stochastic_noise_floor']:.3f})")
# --8<-- [end:json]

# --8<-- [start:web]
stnca_command(f"export web {MODEL} --out web")
# --8<-- [end:web]
