"""``stnca benchmark`` as one library call: load a model, train (or reuse) its peer
emulators, run the generalisation benchmark and write its report."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import choice
from ..analysis.benchmark import (
    SUITES,
    Benchmark,
    Suite,
    families_argument,
    model_and_config,
    run_benchmark,
)
from ..analysis.benchmark_report import write_benchmark
from ..model import require_plane

PEER_COLUMNS: tuple[str, ...] = ("name", "parameters", "seconds", "updates", "learning_rate")
PEER_COLUMNS += ("unroll", "validation_error")


def training_seconds(model: str | os.PathLike) -> float | None:
    """How long the model's run trained (the last ``elapsed_seconds`` of the run folder's
    ``metrics.csv``), ``None`` if unknown (e.g. a shipped model)."""
    from ..serialization import resolve_model

    metrics = resolve_model(model).parent / "metrics.csv"
    if not metrics.is_file():
        return None
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    try:
        return float(rows[-1]["elapsed_seconds"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def peer_emulators(
    names: tuple[str, ...],
    config,
    folder: Path,
    *,
    seconds: float,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Callable], list[dict[str, Any]]]:
    """Each named peer trained on the config's training data for ``seconds`` (tuning
    included twice over: see ``stnca.experiments.peers``), or read from ``folder/NAME.eqx``
    when one was trained there on the same data with the same budget."""
    from ..train.dataset import training_data, validation_data
    from .peers import check_lattice, load_peer, save_peer, train_peer

    data = training_data(config)
    for name in names:
        check_lattice(name, data.shape[2], data.shape[3])
    held = validation_data(config)
    if held is None and config.data.source == "gray_scott":  # two more from another seed
        held = validation_data(config.replace("data", validation_trajectories=2))
    if held is None:  # a file with no trajectory held back: its last training trajectory
        held = data[-1:]
    fingerprint = hashlib.sha256(data.tobytes()).hexdigest()[:16] + f"/{seconds:g}/{seed}"
    emulators: dict[str, Callable] = {}
    table: list[dict[str, Any]] = []
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / f"{name}.eqx"
        peer, header = None, dict[str, Any]()
        if path.is_file():
            peer, header = load_peer(path)
            if header.get("fingerprint") != fingerprint:
                peer = None
        if peer is None:
            if log is not None:
                log(f"training the {name} peer ({seconds:.0f} s, after tuning)")
            result = train_peer(name, data, held, seconds=seconds, seed=seed, log=log)
            save_peer(path, result, fingerprint=fingerprint)
            peer, header = load_peer(path)
        emulators[name] = _emulator(peer)
        table.append({key: header[key] for key in PEER_COLUMNS})
    return emulators, table


def _emulator(peer) -> Callable:
    import jax.numpy as jnp

    from .peers import _rollout

    return lambda initial, frames: np.asarray(_rollout(peer, jnp.asarray(initial), frames))


def benchmark_model(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    suite: str = "default",
    families: str | tuple[str, ...] | None = None,
    draws: int | None = None,
    size: int | None = None,
    large_size: int | None = None,
    truth: str | os.PathLike | None = None,
    steps_between_frames: int | None = None,
    seed: int = 0,
    peers: str | tuple[str, ...] = (),
    peer_seconds: float | None = None,
    progress: Callable | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Benchmark, dict[str, Path]]:
    """Load a model (a file or a shipped name) and its training config, train or reuse the
    ``peers`` (``stnca.experiments.peers.PEERS``; cached in ``out/peers``, each given
    ``peer_seconds``, default the model's own training time), run the benchmark
    (``stnca.analysis.benchmark.run_benchmark``: the named ``suite`` with any of
    ``families``, ``draws``, ``size`` and ``large_size`` changed) and write its report in
    ``out``. ``truth`` is a trajectory file (``.npy``) for a model without a PDE behind it.
    """
    from ..data.io import load_trajectory
    from .peers import parameter_count

    chosen = _suite(suite, families, draws, size, large_size)
    names = _peer_names(peers)
    loaded, config = model_and_config(model)
    require_plane(loaded, "benchmark")
    data = None
    if truth is not None:
        data = load_trajectory(truth, channels=loaded.observable_channels, what="truth")
    emulators: dict[str, Callable] = {}
    table: list[dict[str, Any]] = []
    if names:
        seconds = _check_peers(names, model, loaded, config, chosen, data, peer_seconds)
        emulators, table = peer_emulators(
            names, config, Path(out) / "peers", seconds=seconds, seed=seed, log=log
        )
    benchmark = run_benchmark(
        loaded,
        config=config,
        truth=data,
        steps_between_frames=steps_between_frames,
        suite=chosen,
        seed=seed,
        emulators=emulators,
        progress=progress,
    )
    meta = {
        "model": str(model),
        "suite": suite,
        "seed": seed,
        "truth": truth and str(truth),
        "nca_parameters": parameter_count(loaded),
        "peers": table,
    }
    title = f"Generalisation benchmark: {Path(str(model)).stem}"
    return benchmark, write_benchmark(
        benchmark, out, title=title, meta=meta, extra=_peer_table(table, loaded)
    )


def _suite(suite: str, families, draws, size, large_size) -> Suite:
    """The named suite with any of its families, draws and lattice sizes changed."""
    chosen = SUITES[choice(suite, "suite", SUITES)]
    changes: dict[str, Any] = {}
    if families is not None:
        changes["families"] = families_argument(families)
        changes["large_families"] = tuple(
            f for f in chosen.large_families if f in changes["families"]
        )
    for name, value in (("draws", draws), ("size", size), ("large_size", large_size)):
        if value is not None:
            changes[name] = value
    return dataclasses.replace(chosen, **changes)


def _peer_names(peers: str | tuple[str, ...]) -> tuple[str, ...]:
    """``"convnet,unet"`` or a tuple of names -> the names, each checked."""
    from .peers import PEERS

    names = (
        tuple(p.strip() for p in peers.split(",") if p.strip())
        if isinstance(peers, str)
        else tuple(peers)
    )
    for name in names:
        choice(name, "peers", PEERS)
    return names


def _check_peers(names, model, loaded, config, suite, data, peer_seconds) -> float:
    """Refuse peers that cannot be trained or run here; their training budget in seconds
    (default: the model's own training time)."""
    from .._validate import real
    from .peers import check_lattice

    if loaded.conditions is not None:
        raise ValueError("peers are not trained for conditioned models")
    if config is None:
        raise ValueError(
            "peers train on the model's training data: the model has no training config"
        )
    if peer_seconds is None:
        peer_seconds = training_seconds(model)
        if peer_seconds is None:
            raise ValueError("give peer_seconds: the model's training time is not recorded")
    sides = [suite.size] + ([suite.large_size] if suite.large_size else [])
    for name in names:
        for side in sides if data is None else [data.shape[2], data.shape[3]]:
            check_lattice(name, side, side)
    return real(peer_seconds, "peer_seconds", 1e-3)


def _peer_table(table: list[dict[str, Any]], model) -> str:
    from .peers import parameter_count

    if not table:
        return ""
    lines = [
        "## The models",
        "",
        "| model | parameters | training seconds | updates | learning rate | unroll |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| NCA | {parameter_count(model)} | | | | |",
    ]
    for row in table:
        lines.append(
            f"| {row['name']} | {row['parameters']} | {row['seconds']:.0f} | {row['updates']} | "
            f"{row['learning_rate']:g} | {row['unroll']} |"
        )
    return "\n".join(lines)
