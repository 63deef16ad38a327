"""``[model]``: the NCA's structure (observable channels come from the data)."""

from __future__ import annotations

import dataclasses

from ..._validate import choice
from ...boundaries import BOUNDARIES
from ...conditions import check_names
from ...learnable_kernels import check_learnable
from ...model import ACTIVATIONS
from ...stencils import DIMENSIONS, check_kernels
from ._checks import _non_negative, _positive


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The NCA's structure (see ``stnca.NCA``); observable channels are set by the data."""

    hidden_channels: int = 6
    """Hidden channels appended to the observable ones; they start at zero and the rule uses them as
    it likes. Range: >= 0.
    """
    kernels: tuple[str, ...] = ("identity", "laplacian")
    """Perception kernels applied to every channel: a non-empty subset, without repeats, of
    ``identity``, ``average``, ``gradient_x``, ``gradient_y``, ``laplacian`` and
    ``gradient_magnitude`` (may be empty, ``[]``, when ``learnable_kernels`` >= 1).
    """
    learnable_kernels: int = 0
    """Learnable 3x3 perception kernels after the named ones (the paper's "arbitrary kernels"),
    trained with the rest of the rule from a small random start; ``stnca inspect`` reports the
    fixed stencil each is closest to. 0: none, the paper's model. 2-D lattices only. Range:
    >= 0.
    """
    learnable_kernel_symmetry: str = "none"
    """Constraint on the learnable kernels: ``none`` (nine free weights each) or ``d4`` (three:
    the centre, edge and corner weights, so that each kernel is unchanged by the square's four
    rotations and four reflections, isotropic like the Laplacian; such kernels are the
    combinations of ``identity``, ``average`` and ``laplacian``). ``d4`` needs
    ``learnable_kernels`` >= 1.
    """
    activation: str = "relu"
    """Activation ``u`` of the hidden layer: ``relu``, ``linear``, ``tanh``, ``silu``, ``swish``,
    ``gelu`` or ``sigmoid``.
    """
    hidden_width: int | None = None
    """Width ``H`` of the hidden layer; unset: ``4 C`` (``C`` = observable + hidden channels), as in
    the paper. Range: >= 1.
    """
    update_probability: float = 1.0
    """Probability ``1 - p`` that a cell-channel is updated in a step; 1 is deterministic. Range:
    (0, 1].
    """
    boundary: str = "periodic"
    """Lattice boundary: ``periodic`` (wrap around), ``fixed`` (zero outside) or ``reflect``."""
    dimensions: int = 2
    """The lattice's dimension: 2 (images, the paper), 1 (lines: data ``(T, X, C)``) or 3
    (volumes: data ``(T, D, H, W, C)``). In 1-D the kernels are ``identity``, ``average``,
    ``gradient_x``, ``laplacian``; in 3-D also ``gradient_y`` and ``gradient_z``
    (``stnca.stencils.kernels_for``). Range: 1, 2 or 3.
    """
    hidden_bias: bool = False
    """Add a bias to the hidden layer (equation 3 has none)."""
    init_scale: float = 0.1
    """Standard deviation of the random input-layer weights ``W2`` (the output layer starts at
    zero). Range: >= 0.
    """
    conditions: tuple[str, ...] = ()
    """Names of parameters the rule is conditioned on (e.g. ``["alpha", "gamma"]``): one constant
    input channel each, normalised, read but never updated and never compared with data. The
    data carry them as trailing channels: Gray-Scott data simulate them at ``data.points`` or
    ``data.grid`` (names of Gray-Scott parameters); a file's last channels hold them, one per
    name. Empty: an unconditioned model.
    """

    def __post_init__(self):
        _non_negative(self.hidden_channels, "model.hidden_channels")
        if isinstance(self.dimensions, bool) or self.dimensions not in DIMENSIONS:
            raise ValueError(f"model.dimensions must be 1, 2 or 3, got {self.dimensions!r}")
        try:
            check_learnable(self.learnable_kernels, self.learnable_kernel_symmetry, self.dimensions)
        except ValueError as error:
            raise ValueError(f"model.{error}") from None
        if self.kernels or not self.learnable_kernels:
            try:
                check_kernels(self.kernels, self.dimensions)
            except ValueError as error:
                raise ValueError(f"model.kernels: {error}") from None
        choice(self.activation, "model.activation", ACTIVATIONS)
        choice(self.boundary, "model.boundary", BOUNDARIES)
        if self.hidden_width is not None:
            _positive(self.hidden_width, "model.hidden_width")
        if not 0 < self.update_probability <= 1:
            raise ValueError(
                f"model.update_probability must be in (0, 1], got {self.update_probability}"
            )
        _non_negative(self.init_scale, "model.init_scale")
        check_names(self.conditions, "model.conditions")
