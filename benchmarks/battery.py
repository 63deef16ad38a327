"""A hostile-input battery over every command: each case runs `stnca ...` in a fresh copy of a
small workspace and is classified as one of

    clean        bad input: exit 2 (130 for an interrupt), one line on stderr that says the
                 expected word, nothing written, nothing changed; good input: exit 0 and the
                 right result
    traceback    a Python traceback, or a crash (a signal other than the one sent, exit 139)
    hang         still running at the case's time limit
    partial      a failed command left a new file behind, or an interrupted training left
                 no loadable model
    overwrite    a file that existed before changed without --overwrite
    wrong result bad input accepted (exit 0), or a result that is not what was asked
    unclear      refused, but not in one line, or without naming the problem

    python benchmarks/battery.py [--only TEXT,TEXT] [--workers 2] [--list]

Prints one line per case and the count per outcome; exits 1 unless every case is clean. The
first 29 cases are the ones the second hardening battery found (issue 26); the rest are new.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from battery_cases import CASES, Case

from stnca.console import BEFORE_START

OUTCOMES = ("clean", "traceback", "hang", "partial", "overwrite", "wrong result", "unclear")


# --- the workspace ----------------------------------------------------------------------------

CONFIG = """[model]
hidden_channels = 2
[data]
source = "file"
path = "{path}"
[training]
epochs = {epochs}
steps_between_frames = 2
checkpoint_every = 10
{extra}"""


def forged_npy(path: Path, shape: tuple[int, ...]) -> None:
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": "<f4", "fortran_order": False, "shape": shape}
        )
        file.write(np.zeros(16, np.float32).tobytes())


def make_workspace(folder: Path) -> None:
    """Small inputs of every kind: a trained tiny model, data, images, broken files."""
    import equinox as eqx
    import h5py
    import jax
    import jax.numpy as jnp
    import tifffile
    from PIL import Image

    from stnca import NCA
    from stnca.conditions import Conditions
    from stnca.serialization import save_model

    rng = np.random.default_rng(0)
    data = rng.uniform(size=(2, 5, 10, 10, 1)).astype(np.float32)
    np.save(folder / "data.npy", data)
    np.save(folder / "traj.npy", data[0])
    np.save(folder / "one_frame.npy", data[0, :1])
    np.save(folder / "init.npy", data[0, 0])
    np.save(folder / "init2.npy", rng.uniform(size=(10, 10, 2)).astype(np.float32))
    np.save(folder / "traj2.npy", rng.uniform(size=(5, 10, 10, 2)).astype(np.float32))
    np.save(folder / "wide.npy", rng.uniform(size=(4, 8, 8, 40)).astype(np.float32))
    np.save(folder / "ints.npy", rng.integers(0, 255, size=(5, 10, 10, 1)))
    nan = data[0].copy()
    nan[2, 3, 3] = np.nan
    np.save(folder / "nan_traj.npy", nan)
    np.save(folder / "nan_init.npy", nan[2])
    np.save(folder / "empty.npy", np.zeros((0,), np.float32))
    np.save(folder / "field64.npy", np.full((10, 10), 1e300))
    np.save(folder / "existing.npy", np.zeros((2, 2), np.float32))
    (folder / "garbage.npy").write_text("not an array\n")
    (folder / "file.xyz").write_text("?")
    (folder / "existing.gif").write_bytes(b"GIF89a existing")
    (folder / "existing.html").write_text("<p>existing</p>")
    (folder / "existing.json").write_text("{}")
    (folder / "a_folder").mkdir()
    (folder / "web").mkdir()
    (folder / "web" / "m.html").write_text("<p>existing</p>")
    forged_npy(folder / "forged.npy", (10**6, 10**6, 10))
    forged = folder / "A.npy"
    forged_npy(forged, (10**6, 10**6, 10))
    import zipfile

    with zipfile.ZipFile(folder / "forged.npz", "w") as archive:
        archive.write(forged, "A.npy")
    forged.unlink()
    stack = rng.uniform(size=(4, 3, 8, 8)).astype(np.float32)
    tifffile.imwrite(folder / "z.tif", stack, imagej=True, metadata={"axes": "TZYX"})
    tifffile.imwrite(folder / "flat.tif", rng.uniform(size=(16, 16)).astype(np.float32))
    with h5py.File(folder / "d.h5", "w") as file:
        file["x"] = rng.uniform(size=(5, 8, 8)).astype(np.float32)
        file["link"] = h5py.SoftLink("/missing")
    for name, colour in (("a.png", (255, 0, 0, 255)), ("b.png", (0, 0, 255, 255))):
        image = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
        image.paste(colour, (4, 4, 12, 12))
        image.save(folder / name)

    extra = {
        "c": ("data.npy", 20, ""),
        "long": ("data.npy", 300, ""),
        "bad_key": ("data.npy", 20, "[model]\n"),  # repeated table: a TOML error
        "missing_data": ("nope.npy", 20, ""),
        "garbage_data": ("garbage.npy", 20, ""),
        "nan_data": ("nan_traj.npy", 20, ""),
        "one_frame": ("one_frame.npy", 20, ""),
    }
    for name, (path, epochs, more) in extra.items():
        (folder / f"{name}.toml").write_text(CONFIG.format(path=path, epochs=epochs, extra=more))
    c = (folder / "c.toml").read_text()
    (folder / "typo.toml").write_text(c.replace("hidden_channels", "hiden_channels"))
    (folder / "huge.toml").write_text(c.replace("= 2\n", "= 1000000000\n", 1))
    (folder / "neg_lr.toml").write_text(c + "learning_rate = -1.0\n")
    (folder / "text_epochs.toml").write_text(c.replace("epochs = 20", 'epochs = "ten"'))
    (folder / "syntax.toml").write_text("[model\nhidden = ")
    gray_scott = '[model]\nhidden_channels = 2\n[data]\nsource = "gray_scott"\nsize = 8\n'
    gray_scott += "steps = 16\nevery = 8\n[training]\nsteps_between_frames = 4\n"
    (folder / "gs.toml").write_text(gray_scott + "epochs = 4\n")
    (folder / "gs_long.toml").write_text(gray_scott + "epochs = 300\n")
    subprocess.run(
        [sys.executable, "-m", "stnca", "train", "c.toml", "--out", "run"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    shutil.copy(folder / "run" / "model.eqx", folder / "m.eqx")

    key = jax.random.key(0)
    model = NCA(1, 2, key=key)
    nan_model = jax.tree_util.tree_map(
        lambda leaf: jnp.full_like(leaf, jnp.nan) if eqx.is_inexact_array(leaf) else leaf, model
    )
    save_model(folder / "nan.eqx", nan_model)
    conditioned = NCA(1, 2, conditions=Conditions(("alpha",), (0.03,), (0.02,)), key=key)
    w_out = 0.1 * jax.random.normal(key, conditioned.w_out.shape)
    save_model(folder / "cond.eqx", eqx.tree_at(lambda m: m.w_out, conditioned, w_out))


# --- running and classifying ------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stnca(args: str, folder: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "stnca", *shlex.split(args)]
    environment = dict(os.environ, COLUMNS="100")
    return subprocess.Popen(
        command,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )


def run_case(case: Case, base: Path, startup: float) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "w"
        shutil.copytree(base, folder, symlinks=True)
        if case.prepare:
            case.prepare(folder)
        before = snapshot(folder)
        process = stnca(case.args, folder)
        if case.delay is not None:
            time.sleep(startup * case.delay)
            if process.poll() is None:
                process.send_signal(case.signal)
        try:
            stdout, stderr = process.communicate(timeout=case.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return "hang", f"still running after {case.timeout:.0f} s"
        code = process.returncode
        output = stdout.decode(errors="replace") + stderr.decode(errors="replace")
        if case.then and not (case.expect == "interrupt" and code == 0):
            # (a command that finished before its signal leaves nothing to go on from)
            second = stnca(case.then, folder)
            out, err = second.communicate(timeout=case.timeout)
            if second.returncode != 0:
                tail = (out + err).decode(errors="replace").strip().splitlines()[-1:]
                return "wrong result", f"then `{case.then}` exited {second.returncode}: {tail}"
        return classify(case, folder, before, code, output, stderr.decode(errors="replace"))


def classify(case, folder, before, code, output, stderr) -> tuple[str, str]:
    first = (stderr.strip().splitlines() or [""])[-1][:160]
    if "Traceback (most recent call last)" in output:
        return "traceback", output.strip().splitlines()[-1][:160]
    sent = -case.signal if case.delay is not None else None
    if code == 139 or (code < 0 and code != sent):
        return "traceback", f"crashed with exit {code}"
    after = snapshot(folder)
    changed = [p for p in before if p in after and before[p] != after[p]]
    changed = [p for p in changed if not any(p.startswith(m) for m in case.may_change)]
    if changed:
        return "overwrite", f"changed {changed[:3]}"
    created = [p for p in after if p not in before]
    if case.expect == "interrupt":
        if code not in (130, 0):
            return "unclear", f"exit {code}: {first}"
        why = case.check(folder, output) if case.check else ""
        if why:
            return "partial", why
        if code == 130 and created == [] and stderr.strip() == f"error: {BEFORE_START}":
            return "clean", "exit 130 before the command started"
        if code == 130 and (case.says not in stderr or len(stderr.strip().splitlines()) != 1):
            return "unclear", f"interrupt message: {stderr.strip()[:160]}"
        return "clean", f"exit {code}"
    if case.expect == "either" and code == 0:
        return "clean", "accepted"
    if case.expect in ("error", "either"):
        if code == 0:
            return "wrong result", "accepted (exit 0)"
        if created:
            return "partial", f"left {created[:3]}"
        lines = stderr.strip().splitlines()
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error:"):
            return "unclear", f"exit {code}, {len(lines)} lines: {stderr.strip()[:160]}"
        if case.says.lower() not in lines[0].lower():
            return "unclear", f"does not say {case.says!r}: {first}"
        if case.avoid and case.avoid in output:
            return "unclear", f"says {case.avoid!r}: {first}"
        return "clean", first
    if code != 0:
        return "wrong result", f"refused good input (exit {code}): {first}"
    if case.says and case.says not in output:
        return "wrong result", f"output does not say {case.says!r}"
    if case.avoid and case.avoid in output:
        return "wrong result", f"output says {case.avoid!r}"
    why = case.check(folder, output) if case.check else ""
    return ("wrong result", why) if why else ("clean", "ok")


def measure_startup(folder: Path) -> float:
    """Seconds from `stnca train long.toml` to its first checkpoint (imports, data,
    compiling): the interrupt cases' delays are fractions of it. Measured twice, the second
    kept: the first run of a fresh clone also compiles every module to bytecode (seconds),
    which would put the later interrupts after their commands have finished."""
    _probe(folder)
    return _probe(folder)


def _probe(folder: Path) -> float:
    begin = time.perf_counter()
    process = stnca("train long.toml --out probe", folder)
    while not (folder / "probe" / "checkpoint.eqx").exists():
        if process.poll() is not None:
            sys.exit(f"the probe run failed: {process.communicate()[1].decode()}")
        time.sleep(0.02)
    startup = time.perf_counter() - begin
    process.kill()
    process.communicate()
    shutil.rmtree(folder / "probe")
    return startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default="", help="cases whose names hold one of these, comma-separated"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    cases = [c for c in CASES if any(part in c.name for part in args.only.split(","))]
    # a battery started in the background (`cmd &`) ignores SIGINT and its commands would
    # inherit that: restore Ctrl-C's default, as in a terminal
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.list:
        for case in cases:
            print(f"{case.name}: stnca {case.args}")
        return
    with tempfile.TemporaryDirectory() as name:
        base = Path(name)
        begin = time.perf_counter()
        make_workspace(base)
        startup = measure_startup(base)
        print(
            f"{len(cases)} cases; workspace {time.perf_counter() - begin:.0f} s, "
            f"start-up {startup:.1f} s",
            flush=True,
        )

        def one(case: Case) -> tuple[Case, str, str]:
            return (case, *run_case(case, base, startup))

        counts: Counter[str] = Counter()
        with ThreadPoolExecutor(args.workers) as pool:
            for case, outcome, detail in pool.map(one, cases):
                counts[outcome] += 1
                print(f"{outcome:12} {case.name}: {detail}", flush=True)
    print(
        f"{len(cases)} cases in {time.perf_counter() - begin:.0f} s: "
        + ", ".join(f"{o} {counts[o]}" for o in OUTCOMES)
    )
    if counts["clean"] != len(cases):
        sys.exit(1)


if __name__ == "__main__":
    main()
