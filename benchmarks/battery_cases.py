"""The cases of benchmarks/battery.py: (name, the command after `stnca`, what must happen),
and the checks of a good result. This module is the "what"; battery.py (the workspace, the
runs and the classification) imports it, never the other way round.

Files in the workspace (see battery.make_workspace): c.toml (a tiny config, data.npy, 20
epochs), run/ (c.toml trained to the end), m.eqx (its model: 1 channel), traj.npy (5, 10, 10,
1), init.npy (10, 10, 1), init2.npy (2 channels), wide.npy (40 channels), nan.eqx (all NaN
weights), cond.eqx (conditioned on alpha), a.png / b.png, z.tif (3 slices), flat.tif (2-D),
d.h5 (x, and a broken link), forged.npy / forged.npz:A (headers claiming 36 TiB), garbage.npy,
empty.npy, ints.npy, nan_traj.npy, existing.{npy,gif,html,json}, a_folder/.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    args: str  # after `stnca`, run in the case's workspace
    expect: str = "error"  # error | ok | either | interrupt
    says: str = ""  # a word the error (or, for ok, the output) must hold
    avoid: str = ""  # a word the output must not hold
    check: Callable[[Path, str], str] | None = None  # "" if the result is right, else why
    delay: float | None = None  # interrupt: when, as a multiple of the first checkpoint's time
    signal: int = signal.SIGINT
    then: str = ""  # a command run after the interrupt, which must succeed
    prepare: Callable[[Path], None] | None = None
    timeout: float = 90.0
    may_change: tuple[str, ...] = ()  # files an interrupted or successful case may change


def E(name, args, says="", **kwargs):  # noqa: N802 - a case table reads better with short names
    return Case(name, args, "error", says, **kwargs)


def OK(name, args, check=None, **kwargs):  # noqa: N802
    return Case(name, args, "ok", check=check, **kwargs)


# --- checks on results ------------------------------------------------------------------------


def npy(name: str, shape: tuple[int, ...]) -> Callable[[Path, str], str]:
    def check(folder: Path, output: str) -> str:
        array = np.load(folder / name)
        if array.dtype != np.float32 or array.shape != shape:
            return f"{name} is {array.dtype} {array.shape}, expected float32 {shape}"
        return "" if np.isfinite(array).all() else f"{name} holds non-finite values"

    return check


def loads(name: str) -> Callable[[Path, str], str]:
    def check(folder: Path, output: str) -> str:
        from stnca.serialization import load_model

        try:
            load_model(folder / name)
        except (OSError, ValueError) as error:
            return f"{name} does not load: {error}"
        return ""

    return check


def exists(*names: str) -> Callable[[Path, str], str]:
    def check(folder: Path, output: str) -> str:
        missing = [n for n in names if not (folder / n).exists()]
        return f"missing {missing}" if missing else ""

    return check


def no_temporaries(folder: Path, output: str) -> str:
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".") and p.is_file()]
    return f"temporaries left: {hidden}" if hidden else ""


def big_npy(folder: Path) -> None:
    np.lib.format.open_memmap(folder / "big.npy", "w+", np.float32, (100, 256, 256, 4)).flush()


RERUN = "run the same command again"
R = "rollout m.eqx --init init.npy --out o.npy"
GS = "simulate gray-scott --out g.npy --size 16 --steps 8 --every 4"
P = "analyse perturb m.eqx --init init.npy --out pa --steps 4"
X = "extract --data traj.npy --dt 1"
EV = "evaluate m.eqx --steps-between-frames 2 --out ev --truth"
XM = "extract m.eqx --init init.npy"

# --- the 29 cases of the second battery (issue 26) ---------------------------------------------
ISSUE = [
    Case(
        "i01 Ctrl-C during train --overwrite keeps a model",
        "train long.toml --out run --overwrite",
        "interrupt",
        "--resume",
        check=loads("run/model.eqx"),
        delay=1.3,
        may_change=("run/",),
    ),
    Case(
        "i02 Ctrl-C during train: no crash",
        "train long.toml --out fresh",
        "interrupt",
        "--resume",
        delay=1.2,
    ),
    Case(
        "i03 Ctrl-C before the first checkpoint, then the same command",
        "train long.toml --out fresh",
        "interrupt",
        "--resume",
        delay=0.7,
        then="train long.toml --out fresh",
    ),
    E("i04 import a .npz member claiming 36 TiB", "import forged.npz:A --out o.npy", "claims"),
    E("i05 import a broken HDF5 link", "import d.h5:/link --out o.npy", "broken link"),
    E(
        "i06 adversarial --iterations 1e12",
        "analyse adversarial m.eqx --init init.npy --out ad --iterations 1000000000000",
        "iterations",
    ),
    E(
        "i07 extract --degree 50",
        "extract --data traj2.npy --dt 1 --degree 50",
        "terms",
        timeout=60,
    ),
    E("i08 extract a 40-channel trajectory", "extract --data wide.npy --dt 1", "terms", timeout=60),
    E(
        "i09 perturb --image-size 0",
        "analyse perturb emoji_morph_cpu --init emoji:microbe --out pe --image-size 0",
        "image_size",
    ),
    E("i10 rollout of an all-NaN model", "rollout nan.eqx --init init.npy --out o.npy", "finite"),
    E("i11 export web of an all-NaN model", "export web nan.eqx --init init.npy --out page", "NaN"),
    E(
        "i12 a condition of 3e38",
        "rollout cond.eqx --init init.npy --out o.npy --condition alpha=3e38",
        "finite",
    ),
    E("i13 import --z -1", "import z.tif --z -1 --out o.npy", "Z slices"),
    E("i14 extract --rollouts 0", f"{XM} --rollouts 0", "rollouts"),
    E(
        "i15 sweep refused for memory leaves no sweep.json",
        "sweep gs.toml --vary model.hidden_channels=1000000000 --out D",
        "memory",
    ),
    OK(
        "i16 kill -9 during import leaves no temporary after the next import",
        "import traj.npy --out k.npy",
        check=no_temporaries,
        prepare=lambda folder: _killed_import(folder),
    ),
    E("i17 import --out an existing file", "import traj.npy --out existing.npy", "--overwrite"),
    E(
        "i18 evaluate --video an existing file",
        "evaluate m.eqx --truth traj.npy --steps-between-frames 2 --out ev --video existing.gif",
        "--overwrite",
    ),
    E(
        "i19 export web over an existing page",
        "export web m.eqx --init init.npy --out web",
        "--overwrite",
    ),
    Case(
        "i20 Ctrl-C in sweep says how to go on",
        "sweep gs_long.toml --vary training.seed=1,2 --out S",
        "interrupt",
        RERUN,
        delay=1.3,
    ),
    Case(
        "i21 Ctrl-C in reproduce says how to go on",
        "reproduce fig4 --out R",
        "interrupt",
        RERUN,
        delay=1.3,
    ),
    Case(
        "i22 Ctrl-C in the symmetry experiment says how to go on",
        "analyse symmetry-experiment --out SE",
        "interrupt",
        RERUN,
        delay=1.3,
    ),
    OK(
        "i23 train --epochs 0 reports the untrained model",
        "train c.toml --out e0 --epochs 0",
        says="trained 0 epochs",
        avoid="inf",
        check=loads("e0/model.eqx"),
    ),
    E("i24 train --images with one image", "train --images a.png --out im", "two images"),
    E("i25 extract --terms lap,curl names curl", f"{XM} --terms lap,curl", "curl"),
    E("i26 extract --dt 1e300", "extract --data traj.npy --dt 1e300", "dt", avoid="0000000000"),
    E("i27 import a 2-D TIFF with --axes TYX", "import flat.tif --axes TYX --out o.npy", "axes"),
    E("i28 rollout of a folder", "rollout run --init init.npy --out o.npy", "folder"),
    E(
        "i29 a condition field of 1e300",
        "rollout cond.eqx --init init.npy --out o.npy --condition alpha=field64.npy",
        "finite",
        avoid="RuntimeWarning",
    ),
]


def _killed_import(folder):
    import subprocess
    import sys
    import time

    big_npy(folder)
    process = subprocess.Popen(
        [sys.executable, "-m", "stnca", "import", "big.npy", "--out", "k0.npy"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (folder / "big.npy").unlink()


def _extract_report(folder):
    (folder / "ex").mkdir()
    (folder / "ex" / "equation.json").write_text("{}")


# --- new cases, every command -------------------------------------------------------------------
TRAIN = [
    E("train a config that does not exist", "train missing.toml", "missing.toml"),
    E("train a config that is not TOML", "train syntax.toml --out t", "syntax.toml"),
    E("train a config that repeats a table", "train bad_key.toml --out t", "bad_key.toml"),
    E("train a config with a misspelt key", "train typo.toml --out t", "hiden_channels"),
    E("train --epochs -1", "train c.toml --out t --epochs -1", "epochs"),
    E("train over a finished run", "train c.toml --out run", "--overwrite"),
    E("train a model too large for memory", "train huge.toml --out t", "memory"),
    E("train on data that does not exist", "train missing_data.toml --out t", "nope.npy"),
    E("train on a file that is not an array", "train garbage_data.toml --out t", "garbage.npy"),
    E("train on data with a NaN", "train nan_data.toml --out t", "finite"),
    E("train on one frame", "train one_frame.toml --out t", "frame"),
    E("train --out a file", "train c.toml --out existing.npy", "existing.npy"),
    E(
        "train --images of a missing file",
        "train --images a.png missing.png --out t",
        "missing.png",
    ),
    E("train --resume with nothing to resume", "train c.toml --out t --resume", "resume"),
    E(
        "train --resume to fewer epochs than done",
        "train c.toml --out run --resume --epochs 5",
        "epochs",
    ),
    E("train a negative learning rate", "train neg_lr.toml --out t", "learning_rate"),
    E("train epochs given as text", "train text_epochs.toml --out t", "epochs"),
    E("train no config", "train --out t", "config"),
    E("train a config and --images", "train c.toml --images a.png b.png --out t", "image"),
    E("train --epochs text", "train c.toml --epochs ten", "--epochs"),
]

ROLLOUT = [
    E("rollout a missing model", "rollout missing.eqx --init init.npy --out o.npy", "missing.eqx"),
    E("rollout an image as a model", "rollout a.png --init init.npy --out o.npy", "a.png"),
    E(
        "rollout an unknown shipped model",
        "rollout gray_scot --init init.npy --out o.npy",
        "gray_scot",
    ),
    E("rollout an init with 2 channels", "rollout m.eqx --init init2.npy --out o.npy", "(H, W, 1)"),
    E("rollout a missing init", "rollout m.eqx --init missing.npy --out o.npy", "missing.npy"),
    E(
        "rollout an init that is not an array",
        "rollout m.eqx --init garbage.npy --out o.npy",
        "garbage.npy",
    ),
    E("rollout an empty init", "rollout m.eqx --init empty.npy --out o.npy", "empty.npy"),
    E("rollout an init with a NaN", "rollout m.eqx --init nan_init.npy --out o.npy", "finite"),
    E("rollout an init claiming 36 TiB", "rollout m.eqx --init forged.npy --out o.npy", "forged"),
    E(
        "rollout --out an existing file",
        "rollout m.eqx --init init.npy --out existing.npy",
        "--overwrite",
    ),
    E(
        "rollout --out onto its own init",
        "rollout m.eqx --init init.npy --out init.npy --overwrite",
        "init",
    ),
    E("rollout --steps -5", f"{R} --steps -5", "steps"),
    E("rollout --every 0", f"{R} --every 0", "every"),
    E("rollout --every not dividing --steps", f"{R} --steps 10 --every 3", "every"),
    E("rollout --out .txt", "rollout m.eqx --init init.npy --out o.txt", ".npy"),
    E("rollout --video .xyz", f"{R} --video v.xyz", "xyz"),
    E("rollout 1e12 steps", f"{R} --steps 1000000000000", "steps"),
    E("rollout --condition on an unconditioned model", f"{R} --condition alpha=0.05", "condition"),
    E(
        "rollout a conditioned model without --condition",
        "rollout cond.eqx --init init.npy --out o.npy",
        "alpha",
    ),
    E(
        "rollout an unknown condition",
        "rollout cond.eqx --init init.npy --out o.npy --condition alpha=0.05 --condition beta=1",
        "beta",
    ),
    E(
        "rollout a condition that is not a number",
        "rollout cond.eqx --init init.npy --out o.npy --condition alpha=abc",
        "abc",
    ),
    E(
        "rollout a condition field of the wrong size",
        "rollout cond.eqx --init init.npy --out o.npy --condition alpha=init2.npy",
        "(H, W)",
    ),
    E(
        "rollout gray_scott_paper from a 1-channel init",
        "rollout gray_scott_paper --init init.npy --out o.npy",
        "(H, W, 2)",
    ),
    E("rollout --steps text", f"{R} --steps many", "--steps"),
    OK("rollout, good input", R, check=npy("o.npy", (65, 10, 10, 1))),
    OK(
        "rollout a conditioned model",
        "rollout cond.eqx --init init.npy --out o.npy --steps 8 --condition alpha=0.04",
        check=npy("o.npy", (9, 10, 10, 1)),
    ),
    OK(
        "rollout --every 4 --video",
        f"{R} --steps 8 --every 4 --video v.gif",
        check=lambda f, o: npy("o.npy", (3, 10, 10, 1))(f, o) or exists("v.gif")(f, o),
    ),
]

EVALUATE = [
    E("evaluate a missing truth", f"{EV} missing.npy", "missing.npy"),
    E("evaluate a truth that is not an array", f"{EV} garbage.npy", "garbage.npy"),
    E("evaluate a 40-channel truth", f"{EV} wide.npy", "(T, H, W, 1)"),
    E(
        "evaluate --steps-between-frames 0",
        "evaluate m.eqx --truth traj.npy --out ev --steps-between-frames 0",
        "steps",
    ),
    E(
        "evaluate --steps-between-frames -1",
        "evaluate m.eqx --truth traj.npy --out ev --steps-between-frames -1",
        "steps",
    ),
    E(
        "evaluate without --steps-between-frames",
        "evaluate m.eqx --truth traj.npy --out ev",
        "--steps-between-frames",
    ),
    E("evaluate a one-frame truth", f"{EV} one_frame.npy", "frame"),
    E(
        "evaluate an all-NaN model",
        "evaluate nan.eqx --steps-between-frames 2 --out ev --truth traj.npy",
        "finite",
    ),
    E("evaluate a truth with a NaN", f"{EV} nan_traj.npy", "finite"),
    E(
        "evaluate --out a file",
        "evaluate m.eqx --truth traj.npy --steps-between-frames 2 --out existing.json",
        "existing",
    ),
    E("evaluate a truth claiming 36 TiB", f"{EV} forged.npy", "forged"),
    OK("evaluate, good input", f"{EV} traj.npy", check=exists("ev/evaluation.json")),
]

BENCHMARK = [
    E("benchmark a 1-channel model without --truth", "benchmark m.eqx --out b", "truth"),
    E("benchmark an unknown suite", "benchmark gray_scott_paper --suite nope --out b", "nope"),
    E("benchmark an unknown family", "benchmark gray_scott_paper --families nope --out b", "nope"),
    E("benchmark --draws 0", "benchmark gray_scott_paper --draws 0 --out b", "draws"),
    E("benchmark --size 2", "benchmark gray_scott_paper --size 2 --out b", "size"),
    E("benchmark an unknown peer", "benchmark gray_scott_paper --peers nope --out b", "nope"),
    E(
        "benchmark --peer-seconds -1",
        "benchmark gray_scott_paper --peers convnet --peer-seconds -1 --out b",
        "peer",
    ),
    E("benchmark a missing truth", "benchmark m.eqx --truth missing.npy --out b", "missing.npy"),
    E("benchmark --out a file", "benchmark gray_scott_paper --out existing.npy", "existing.npy"),
]

DEMO = [
    E("demo --epochs -1", "demo --epochs -1 --out dm", "epochs"),
    E("demo --out a file", "demo --out existing.npy", "existing.npy"),
    E("demo over a finished run", "demo --out run", "--overwrite"),
]

IMPORT = [
    E("import a missing file", "import missing.npy --out o.npy", "missing.npy"),
    E("import a file that is not an array", "import garbage.npy --out o.npy", "garbage.npy"),
    E("import an empty array", "import empty.npy --out o.npy", "empty.npy"),
    E("import an HDF5 path that does not exist", "import d.h5:/nope --out o.npy", "nope"),
    E("import --z 99", "import z.tif --z 99 --out o.npy", "Z slices"),
    E("import --channels beyond the data", "import traj.npy --channels 5 --out o.npy", "channel"),
    E("import --every 0", "import traj.npy --every 0 --out o.npy", "every"),
    E("import --frames backwards", "import traj.npy --frames 4:1 --out o.npy", "frame"),
    E("import --crop outside", "import traj.npy --crop 50:60,50:60 --out o.npy", "crop"),
    E("import --resize 0", "import traj.npy --resize 0 --out o.npy", "resize"),
    E("import --normalise nope", "import traj.npy --normalise nope --out o.npy", "nope"),
    E("import a .npy claiming 36 TiB", "import forged.npy --out o.npy", "claims"),
    E("import an unknown format", "import file.xyz --out o.npy", "xyz"),
    E("import --out .txt", "import traj.npy --out o.txt", ".npy"),
    E("import --out onto its source", "import traj.npy --out traj.npy --overwrite", "traj.npy"),
    E("import --axes of unknown letters", "import z.tif --axes QXY --out o.npy", "axes"),
    E("import data with a NaN", "import nan_traj.npy --out o.npy", "finite"),
    OK("import, good input", "import traj.npy --out o.npy", check=npy("o.npy", (5, 10, 10, 1))),
    OK(
        "import integers become float32",
        "import ints.npy --out o.npy",
        check=npy("o.npy", (5, 10, 10, 1)),
    ),
    OK("import a z-stack slice", "import z.tif --z 0 --out o.npy", check=exists("o.npy")),
    OK(
        "import --overwrite replaces",
        "import traj.npy --out existing.npy --overwrite",
        check=npy("existing.npy", (5, 10, 10, 1)),
        may_change=("existing.npy",),
    ),
]

EXTRACT = [
    E("extract with neither model nor data", "extract", "data"),
    OK(
        "extract --data without --dt (1, documented)",
        "extract --data traj.npy",
        check=exists("extract/equation.json"),
    ),
    E("extract --dt 0", "extract --data traj.npy --dt 0", "dt"),
    E("extract --dt -1", "extract --data traj.npy --dt -1", "dt"),
    Case("extract --degree 0", f"{X} --degree 0", "either", "degree"),
    E("extract --derivative nope", f"{X} --derivative nope", "nope"),
    E("extract --boundary nope", f"{X} --boundary nope", "nope"),
    E("extract --tolerance -1", f"{X} --tolerance -1", "tolerance"),
    E("extract --samples 0", f"{X} --samples 0", "samples"),
    E("extract an all-NaN model", "extract nan.eqx --init init.npy", "finite"),
    E("extract missing data", "extract --data missing.npy --dt 1", "missing.npy"),
    E("extract data with a NaN", "extract --data nan_traj.npy --dt 1", "finite"),
    E("extract --out a file", f"{X} --out existing.json", "existing.json"),
    E("extract over an existing report", f"{X} --out ex", "--overwrite", prepare=_extract_report),
    E("extract --steps 0", f"{XM} --steps 0", "steps"),
    E("extract an unknown --pde", f"{XM} --pde nope", "nope"),
    E("extract a one-frame trajectory", "extract --data one_frame.npy --dt 1", "frame"),
]

SWEEP = [
    E("sweep an unknown key", "sweep gs.toml --vary nope.key=1,2 --out D", "nope"),
    E(
        "sweep a key without values",
        "sweep gs.toml --vary training.epochs --out D",
        "training.epochs",
    ),
    E("sweep --seeds 0", "sweep gs.toml --vary training.seed=1,2 --seeds 0 --out D", "seeds"),
    E("sweep --shard 5/2", "sweep gs.toml --vary training.seed=1,2 --shard 5/2 --out D", "shard"),
    E("sweep --shard text", "sweep gs.toml --vary training.seed=1,2 --shard a/b --out D", "shard"),
    E(
        "sweep a missing config",
        "sweep missing.toml --vary training.seed=1 --out D",
        "missing.toml",
    ),
    E(
        "sweep --test-size 0",
        "sweep gs.toml --vary training.seed=1,2 --test-size 0 --out D",
        "test",
    ),
    E(
        "sweep a value of the wrong type",
        "sweep gs.toml --vary model.hidden_channels=a,b --out D",
        "hidden_channels",
    ),
    E(
        "sweep --collect of nothing",
        "sweep gs.toml --vary training.seed=1,2 --collect --out D",
        "D",
    ),
    E(
        "sweep --out a file",
        "sweep gs.toml --vary training.seed=1,2 --out existing.npy",
        "existing.npy",
    ),
]

REPRODUCE = [
    E("reproduce an unknown figure", "reproduce fig99 --out R", "fig99"),
    E("reproduce an unknown scale", "reproduce fig4 --scale huge --out R", "huge"),
    E("reproduce --shard 0/0", "reproduce fig4 --shard 0/0 --out R", "shard"),
    E("reproduce a missing sweep file", "reproduce missing.toml --out R", "missing.toml"),
]

SIMULATE = [
    E("simulate --size 0", "simulate gray-scott --out g.npy --size 0", "size"),
    E("simulate --steps -1", "simulate gray-scott --out g.npy --steps -1", "steps"),
    E("simulate --every 0", f"{GS} --every 0", "every"),
    E("simulate an unknown --init", f"{GS} --init nope", "nope"),
    E("simulate a missing --init-file", f"{GS} --init-file missing.npy", "missing.npy"),
    E("simulate --dt that blows up", f"{GS} --dt 100000", "finite"),
    E("simulate --alpha nan", f"{GS} --alpha nan", "alpha"),
    E(
        "simulate --out an existing file",
        "simulate gray-scott --out existing.npy --size 16",
        "--overwrite",
    ),
    E("simulate --batch 0", f"{GS} --batch 0", "batch"),
    E("simulate a 1-channel --init-file", f"{GS} --init-file init.npy", "(H, W, 2)"),
    E("simulate 1e12 steps", "simulate gray-scott --out g.npy --steps 1000000000000", "steps"),
    OK("simulate, good input", GS, check=npy("g.npy", (3, 16, 16, 2))),
]

ANALYSE = [
    E("perturb --size 0", f"{P} --size 0", "size"),
    E("perturb --stride 0", f"{P} --stride 0", "stride"),
    E("perturb --threshold -1", f"{P} --threshold -1", "threshold"),
    E("perturb --kind nope", f"{P} --kind nope", "nope"),
    E(
        "perturb an unknown emoji",
        "analyse perturb emoji_morph_cpu --init emoji:nope --out pa",
        "nope",
    ),
    E("perturb a missing init", "analyse perturb m.eqx --init missing.npy --out pa", "missing.npy"),
    E(
        "perturb an all-NaN model",
        "analyse perturb nan.eqx --init init.npy --out pa --steps 4",
        "finite",
    ),
    E(
        "adversarial --mode nope",
        "analyse adversarial m.eqx --init init.npy --out ad --mode nope",
        "nope",
    ),
    E(
        "adversarial --budget -1",
        "analyse adversarial m.eqx --init init.npy --out ad --budget -1",
        "budget",
    ),
    E(
        "adversarial --learning-rate 0",
        "analyse adversarial m.eqx --init init.npy --out ad --learning-rate 0",
        "learning",
    ),
    E("symmetry --steps -1", "analyse symmetry m.eqx --init init.npy --out sy --steps -1", "steps"),
    E(
        "symmetry --padding -3",
        "analyse symmetry emoji_morph_cpu --init emoji:microbe --out sy --padding -3",
        "padding",
    ),
    E(
        "symmetry-experiment --epochs -1",
        "analyse symmetry-experiment --out SE --epochs -1",
        "epochs",
    ),
    E(
        "symmetry-experiment a missing config",
        "analyse symmetry-experiment --out SE --config missing.toml",
        "missing.toml",
    ),
    E(
        "analyse a conditioned model",
        "analyse perturb cond.eqx --init init.npy --out pa",
        "condition",
    ),
    OK("perturb, good input", f"{P} --size 3", check=exists("pa/perturb.json")),
]

EXPORT = [
    E("export web a missing model", "export web missing.eqx --out page", "missing.eqx"),
    E(
        "export web --image-size 0",
        "export web emoji_morph_cpu --init emoji:microbe --image-size 0 --out page",
        "image_size",
    ),
    E("export web a missing init", "export web m.eqx --init missing.npy --out page", "missing.npy"),
    E(
        "export web --out a file",
        "export web m.eqx --init init.npy --out existing.html",
        "existing.html",
    ),
    OK(
        "export web, good input",
        "export web m.eqx --init init.npy --out page",
        check=exists("page/m.html"),
    ),
]

GENERAL = [
    E("an unknown command", "nope", "nope"),
    E("an unknown option", "rollout m.eqx --init init.npy --out o.npy --bogus", "--bogus"),
    E("a missing required option", "rollout m.eqx --out o.npy", "--init"),
    E("an analyse without a subcommand's name", "analyse nope", "nope"),
]

CASES = (
    ISSUE
    + TRAIN
    + ROLLOUT
    + EVALUATE
    + BENCHMARK
    + DEMO
    + IMPORT
    + EXTRACT
    + SWEEP
    + REPRODUCE
    + SIMULATE
    + ANALYSE
    + EXPORT
    + GENERAL
)
