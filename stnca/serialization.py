"""Saving and loading models (and other pytrees) without pickle.

A file is one line of JSON (the header: format name, version, what it holds, and the
hyperparameters needed to rebuild the structure), then the array leaves as written by
``equinox.tree_serialise_leaves`` (NumPy ``.npy`` records, read back with pickle off).
Files are written atomically: a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from ._files import json_safe, write_bytes
from .model import NCA, parameter_count

FORMAT = "stnca"
VERSION = 1
_MAX_HEADER = 1 << 20
PRETRAINED_DIR = Path(__file__).with_name("models")
"""Trained models shipped with stnca (``NAME.eqx``; see its README.md)."""


def pretrained_models() -> list[str]:
    """Names of the models shipped with stnca, usable wherever a model path is asked for."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.eqx"))


def resolve_model(path_or_name: str | os.PathLike) -> Path:
    """A model file: ``path_or_name`` itself if it exists, else the shipped model of that name.

    Raises:
        ValueError: neither a file nor a shipped model's name.
    """
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = PRETRAINED_DIR / f"{path.name.removesuffix('.eqx')}.eqx"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    if path.is_dir():
        inside = " (a training run: give its model.eqx)" if (path / "model.eqx").is_file() else ""
        raise ValueError(f"{path} is a folder, not a model file{inside}")
    names = ", ".join(pretrained_models()) or "none"
    raise ValueError(f"model file not found: {path} (shipped models: {names})")


def save_tree(path: str | os.PathLike, tree: Any, header: dict[str, Any]) -> Path:
    """Write ``header`` (JSON) and the array leaves of ``tree`` to ``path`` atomically."""
    header = json_safe({"format": FORMAT, "version": VERSION, **header})
    buffer = io.BytesIO()
    text = json.dumps(header, sort_keys=True, allow_nan=False)  # strict JSON, readable anywhere
    buffer.write(text.encode("utf-8") + b"\n")
    eqx.tree_serialise_leaves(buffer, tree)
    write_bytes(path, buffer.getvalue())
    return Path(path)


def header_float(header: dict[str, Any], name: str, default: float = math.inf) -> float:
    """A float from a header: ``None`` (non-finite when written) or absent -> ``default``."""
    value = header.get(name)
    return default if value is None else float(value)


def read_header(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Read and check the JSON header of an stnca file.

    Args:
        path: the file.
        kind: the ``kind`` the header must declare (e.g. ``"model"``), if any.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    with open(path, "rb") as handle:
        line = handle.readline(_MAX_HEADER)
    try:
        header = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not an stnca file (no stnca header)")
    if header.get("version") != VERSION:
        raise ValueError(
            f"{path} has stnca format version {header.get('version')}; "
            f"this stnca reads version {VERSION}"
        )
    if kind is not None and header.get("kind") != kind:
        raise ValueError(f"{path} holds a {header.get('kind')!r}, not a {kind!r}")
    return header


def load_tree(path: str | os.PathLike, like: Any) -> Any:
    """Read the leaves of a file written by ``save_tree`` into the structure of ``like``."""
    path = Path(path)
    with open(path, "rb") as handle:
        handle.readline(_MAX_HEADER)
        try:
            tree = eqx.tree_deserialise_leaves(handle, like)
        except (ValueError, OSError, EOFError, RuntimeError, TypeError) as error:
            raise ValueError(f"{path} is damaged or does not match its header ({error})") from None
        if handle.read(1):
            raise ValueError(f"{path} is damaged: unexpected bytes after the arrays")
    return tree


def model_skeleton(hyperparameters: dict[str, Any]) -> NCA:
    """An NCA with the structure given by ``hyperparameters`` (weights arbitrary)."""
    try:
        return NCA(**hyperparameters, key=jax.random.key(0))
    except (TypeError, ValueError) as error:
        raise ValueError(f"bad model hyperparameters in file header: {error}") from None


def save_model(path: str | os.PathLike, model: NCA, **extra: Any) -> Path:
    """Save an NCA to ``path`` (conventionally ``model.eqx``); ``extra`` goes in the header."""
    return save_tree(
        path, model, {"kind": "model", "hyperparameters": model.hyperparameters(), **extra}
    )


def load_model(path: str | os.PathLike) -> NCA:
    """Load an NCA saved by ``save_model``; the result is bit-identical to what was saved.

    ``path`` may also name a model shipped with stnca (``pretrained_models()``), e.g.
    ``load_model("gray_scott_paper")``.
    """
    path = resolve_model(path)
    header = read_header(path, kind="model")
    hyperparameters = header.get("hyperparameters")
    if not isinstance(hyperparameters, dict):
        raise ValueError(f"{path} has no model hyperparameters in its header")
    # a header can claim any size: check it against the file before building anything
    claimed = 4 * _parameter_count(hyperparameters)
    if claimed > path.stat().st_size:
        raise ValueError(
            f"{path} is damaged: its header describes {claimed:_} bytes of weights but the "
            f"file holds {path.stat().st_size:_}"
        )
    return load_tree(path, model_skeleton(hyperparameters))


def _parameter_count(hyperparameters: dict[str, Any]) -> int:
    """The number of weights the hyperparameters describe (a ``ValueError`` if malformed)."""
    try:
        return parameter_count(
            int(hyperparameters["observable_channels"]),
            int(hyperparameters["hidden_channels"]),
            len(hyperparameters["kernels"]),
            int(hyperparameters.get("hidden_width") or 0) or None,
            bool(hyperparameters.get("hidden_bias")),
            len((hyperparameters.get("conditions") or {}).get("names", ())),
            int(hyperparameters.get("learnable_kernels") or 0),
            str(hyperparameters.get("learnable_kernel_symmetry") or "none"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"bad model hyperparameters in file header: {error!r}") from None
