"""stnca: spatio-temporal Neural Cellular Automata.

Learn the local update rule of a cellular automaton from time series of images or PDE
trajectories (Richardson et al., "Learning spatio-temporal patterns with Neural Cellular
Automata"). The flat public API::

    stnca.NCA                      the model (perceive -> MLP -> stochastic residual update)
    stnca.perceive, KERNELS        the fixed 3x3 kernels of equation (2), applied depthwise
    stnca.losses                   euclidean (default) and the paper's alternatives
    stnca.gray_scott               the Gray-Scott simulator
    stnca.initial_condition        named Gray-Scott initial conditions
    stnca.load_trajectory, save_array
    stnca.train.train              Algorithm 2 on a TOML config (stnca.train.load_config)
    stnca.load_model, save_model   model files (JSON header + arrays; no pickle)
    stnca.evaluate                 a model against a true trajectory, with baselines
    stnca.predict                  a rollout in physical units (a model's data scaling applied)
    stnca.pretrained_models        the trained models shipped with stnca (load_model("NAME"))
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import boundaries as boundaries
    from . import losses as losses
    from . import stencils as stencils
    from . import train as train
    from .analysis import evaluate as evaluate  # type: ignore[no-redef]
    from .analysis import predict as predict
    from .data import gray_scott as gray_scott
    from .data.initial_conditions import INITIAL_CONDITIONS as INITIAL_CONDITIONS
    from .data.initial_conditions import initial_condition as initial_condition
    from .data.io import load_states as load_states
    from .data.io import load_trajectory as load_trajectory
    from .data.io import save_array as save_array
    from .losses import LOSSES as LOSSES
    from .model import ACTIVATIONS as ACTIVATIONS
    from .model import NCA as NCA
    from .serialization import load_model as load_model
    from .serialization import pretrained_models as pretrained_models
    from .serialization import save_model as save_model
    from .stencils import KERNELS as KERNELS
    from .stencils import perceive as perceive

# The names load on first use (PEP 562), so that `import stnca` and the `stnca` command's
# first instructions (stnca.console: its Ctrl-C guards) come before JAX's import.
_SUBMODULES = ("boundaries", "losses", "stencils", "train")
_NAMES = {
    "evaluate": ".analysis",
    "predict": ".analysis",
    "gray_scott": ".data",
    "INITIAL_CONDITIONS": ".data.initial_conditions",
    "initial_condition": ".data.initial_conditions",
    "load_states": ".data.io",
    "load_trajectory": ".data.io",
    "save_array": ".data.io",
    "LOSSES": ".losses",
    "ACTIVATIONS": ".model",
    "NCA": ".model",
    "load_model": ".serialization",
    "pretrained_models": ".serialization",
    "save_model": ".serialization",
    "KERNELS": ".stencils",
    "perceive": ".stencils",
}
__all__ = [*_SUBMODULES, *_NAMES, "__version__"]


def __getattr__(name: str):
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    if name in _NAMES:
        module = _import_module(_NAMES[name], __name__)
        try:
            value = getattr(module, name)
        except AttributeError:  # a submodule its package does not import
            value = _import_module(f"{_NAMES[name]}.{name}", __name__)
        globals()[name] = value  # once loaded, an ordinary attribute
        return value
    if not name.startswith("_"):  # stnca.train, stnca.analysis, ...: the subpackages
        try:
            return _import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'stnca' has no attribute {name!r}")


def _version() -> str:
    """One source of truth: the installed package's metadata (pyproject.toml)."""
    from importlib import metadata  # (loads email, zipfile, ...: only when asked)

    try:
        return metadata.version("stnca")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
