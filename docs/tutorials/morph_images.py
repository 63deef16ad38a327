"""Tutorial: train an NCA that morphs through your own images and holds the last one.

    python docs/tutorials/morph_images.py [FOLDER]

works in FOLDER (default ``tutorial-morph``): about 10 minutes on 2 CPU cores. With
``STNCA_TUTORIAL_TINY=1`` it runs the same steps at toy sizes in seconds (the test suite
does this). Each ``stnca(...)`` line is the shell command ``stnca ...``, run in this process.
"""

import os
import shlex
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from stnca.cli import run


def stnca_command(command: str) -> None:
    """Run ``stnca COMMAND`` as a shell would; stop at the first failure."""
    print(f"\n$ stnca {command}", flush=True)
    code = run(shlex.split(command))
    if code:
        sys.exit(f"stnca {command.split()[0]} failed (exit code {code})")


# --8<-- [start:settings]
SIZE = 32  # images are resized to SIZE x SIZE ...
PADDING = 6  # ... and embedded with this many empty cells around them
COPIES = 4  # randomly shifted copies of the sequence: the R training trajectories
T = 24  # NCA steps from one image to the next
HIDDEN = 12  # hidden channels (plus 4 observable: red, green, blue, alpha)
EPOCHS = 1300  # about 10 minutes on 2 CPU cores
# --8<-- [end:settings]
if os.environ.get("STNCA_TUTORIAL_TINY") == "1":  # toy sizes, for the test suite
    SIZE, PADDING, COPIES, T, HIDDEN, EPOCHS = 8, 2, 2, 4, 4, 3

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial-morph")
folder.mkdir(parents=True, exist_ok=True)
os.chdir(folder)


# --8<-- [start:images]
def picture(name: str, draw) -> None:
    """A 64x64 RGBA image: one shape on a transparent background."""
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw(ImageDraw.Draw(image))
    image.save(name)


picture("disc.png", lambda d: d.ellipse((12, 12, 52, 52), fill=(220, 50, 40, 255)))
picture("square.png", lambda d: d.rectangle((14, 14, 50, 50), fill=(40, 90, 220, 255)))
picture("ring.png", lambda d: d.ellipse((8, 8, 56, 56), outline=(30, 150, 60, 255), width=9))
# --8<-- [end:images]

# --8<-- [start:config]
Path("shapes.toml").write_text(f"""
[model]
hidden_channels = {HIDDEN}
kernels = ["identity", "gradient_x", "gradient_y", "laplacian"]
activation = "relu"
update_probability = 0.5       # stochastic updates, as in the paper's image models
boundary = "fixed"             # zero outside the lattice

[data]
source = "images"
images = ["disc.png", "square.png", "ring.png"]
size = {SIZE}
final_repeats = 3              # the ring appears 3 times: it must stay a ring
padding = {PADDING}
copies = {COPIES}
redraw_every = 32              # new random shifts every 32 epochs
augment_noise = 0.01           # a little noise on the data each epoch

[training]
epochs = {EPOCHS}
steps_between_frames = {T}
minibatches = 4
hold_final = true              # train ever longer rollouts that must hold the ring
restart_every = 0
learning_rate = 2e-3
lr_decay_rate = 0.1
lr_decay_epochs = {EPOCHS}
""")
# --8<-- [end:config]

# --8<-- [start:train]
stnca_command("train shapes.toml --out shapes")
# --8<-- [end:train]

# --8<-- [start:web]
stnca_command("export web shapes/model.eqx --out web")
# --8<-- [end:web]
