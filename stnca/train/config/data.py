"""``[data]``: where the training trajectories come from, one dataclass per ``source``."""

from __future__ import annotations

import dataclasses
import itertools

from ..._validate import choice
from ...data.augment import ROTATIONS
from ...data.gray_scott import GrayScottParams
from ...data.initial_conditions import INITIAL_CONDITIONS
from ...scaling import SCALINGS
from ._checks import _check_noise, _non_negative, _positive, _seed


@dataclasses.dataclass(frozen=True)
class GrayScottData:
    """Training trajectories simulated from the Gray-Scott equations.

    ``trajectories`` initial conditions of family ``initial_condition`` are drawn with
    ``seed``; each is integrated for ``steps`` Euler steps and sampled every ``every`` steps
    (default: the training's ``steps_between_frames``), giving ``M = steps / every``
    transitions per trajectory. ``validation_trajectories`` more are simulated from the
    same family with another seed and never trained on: they score the models for
    ``training.select_by = "rollout"``. ``scale`` maps the data to the units the model
    trains in (``minmax``: to [0, 1], one minimum and maximum over the whole data set).
    """

    source: str = "gray_scott"
    """Selects this kind of data: ``"gray_scott"``."""
    size: int = 64
    """Lattice size ``S``: trajectories are ``S x S`` (periodic). Range: >= 3."""
    steps: int = 1024
    """Euler steps per trajectory. Range: >= 1, a multiple of ``every``."""
    every: int | None = None
    """Euler steps between kept frames; unset: ``training.steps_between_frames``. Range: >= 1,
    dividing ``steps``.
    """
    trajectories: int = 4
    """Training trajectories ``R``, each from its own initial condition. Range: >= 1."""
    initial_condition: str | tuple[str, ...] = "smooth"
    """Family of the initial conditions (``stnca.data.initial_conditions``: ``smooth``,
    ``high_frequency``, ``noise``, ``sparse_noise``, ``fourier_low``, ``fourier_mid``,
    ``fourier_high``, ``seeds``, ``lines``, ``mixture``, ``uniform``), or a list of them:
    trajectory ``r`` is drawn from the list's entry ``r`` modulo its length (repeat a name to
    weight it).
    """
    seed: int = 0
    """Seed of the initial conditions and the measurement noise. Range: [0, 2**32)."""
    diffusion_a: float = GrayScottParams.diffusion_a
    """Diffusion constant ``D_A`` of species A. Range: >= 0."""
    diffusion_b: float = GrayScottParams.diffusion_b
    """Diffusion constant ``D_B`` of species B. Range: >= 0."""
    alpha: float = GrayScottParams.alpha
    """Feed rate ``alpha`` of A towards 1 (a finite number)."""
    gamma: float = GrayScottParams.gamma
    """Extra decay rate ``gamma`` of B, which decays at ``gamma + alpha`` (a finite number)."""
    dt: float = GrayScottParams.dt
    """Forward-Euler time step. Range: > 0."""
    noise: float = 0.0
    """Measurement noise ``xi``: the data become ``(1 - xi) y + xi eta``, ``eta ~ U(min y, max y)``,
    drawn once. Range: [0, 1].
    """
    scale: str = "minmax"
    """Units the model trains in: ``minmax`` (one minimum and maximum over the whole data set mapped
    to [0, 1]) or ``none``.
    """
    validation_trajectories: int = 0
    """Extra trajectories (another seed, never trained on) that score the models for
    ``training.select_by = "rollout"``; 0: score on the training ones. Range: >= 0.
    """
    points: tuple[tuple[float, ...], ...] = ()
    """Parameter points for a conditioned model (``model.conditions``): one list of values per
    point, in the order of ``model.conditions`` (``[[0.029, 0.057], [0.055, 0.062]]`` for
    ``conditions = ["alpha", "gamma"]``). ``trajectories`` (and ``validation_trajectories``) are
    simulated at every point, each point from its own initial conditions. Unset: the one point
    of this table's parameters.
    """
    grid: tuple[tuple[float, ...], ...] = ()
    """Instead of ``points``: a list of values per condition, in the order of ``model.conditions``;
    every combination is a point (``[[0.03, 0.05], [0.057, 0.062]]``: four points).
    """

    def __post_init__(self):
        choice(self.scale, "data.scale", SCALINGS)
        _non_negative(self.validation_trajectories, "data.validation_trajectories")
        if self.size < 3:
            raise ValueError(f"data.size must be >= 3, got {self.size}")
        _positive(self.steps, "data.steps")
        _positive(self.trajectories, "data.trajectories")
        if self.every is not None:
            _positive(self.every, "data.every")
            if self.steps % self.every:
                raise ValueError(
                    f"data.steps ({self.steps}) must be a multiple of data.every ({self.every})"
                )
        if not self.families:
            raise ValueError("data.initial_condition must name at least one family")
        for family in self.families:
            choice(family, "data.initial_condition", INITIAL_CONDITIONS)
        _seed(self.seed, "data.seed")
        try:  # the simulator owns the rules for its parameters
            self.params()
        except ValueError as error:
            raise ValueError(f"data.{error}") from None
        _check_noise(self.noise)

        if self.points and self.grid:
            raise ValueError("give data.points or data.grid, not both")
        if self.grid and not all(self.grid):
            raise ValueError("data.grid must give at least one value per condition")

    @property
    def families(self) -> tuple[str, ...]:
        """``initial_condition`` as a tuple of family names."""
        family = self.initial_condition
        return (family,) if isinstance(family, str) else tuple(family)

    def params(self) -> GrayScottParams:
        """The simulator's parameters."""
        return GrayScottParams(self.diffusion_a, self.diffusion_b, self.alpha, self.gamma, self.dt)

    def parameter_points(self, names: tuple[str, ...]) -> list[GrayScottParams]:
        """The simulator's parameters at every point (``points``, the ``grid``'s combinations,
        or this table's own parameters), the values in the order of the condition ``names``."""
        rows = list(self.points)
        if self.grid:
            rows = [tuple(row) for row in itertools.product(*self.grid)]
        if not rows:
            return [self.params()]
        where = "data.points" if self.points else "data.grid"
        if not names:
            raise ValueError(
                f"{where} needs model.conditions naming the Gray-Scott parameters it varies"
            )
        wrong = [name for name in names if name not in GRAY_SCOTT_CONDITIONS]
        if wrong:
            raise ValueError(
                f"model.conditions: {wrong[0]!r} is not a Gray-Scott parameter; Gray-Scott "
                f"data can be conditioned on {', '.join(GRAY_SCOTT_CONDITIONS)}"
            )
        points = []
        for row in rows:
            if len(row) != len(names):
                raise ValueError(
                    f"{where}: each point needs {len(names)} values ({', '.join(names)}), "
                    f"got {list(row)}"
                )
            try:
                values = dict(zip(names, row, strict=True))
                points.append(dataclasses.replace(self.params(), **values))
            except ValueError as error:
                raise ValueError(f"{where} {list(row)}: {error}") from None
        return points


@dataclasses.dataclass(frozen=True)
class FileData:
    """Training trajectories read from a ``.npy`` file of shape (T, H, W, C) or (R, T, H, W, C),
    or from any source ``stnca import`` reads with its defaults (a TIFF stack, ``run.h5:/path``,
    a video, a folder of images, ``fields.npz``; see ``stnca.data.importers``).

    ``path`` is relative to the config file's folder. The file's frames are taken as
    ``steps_between_frames`` NCA steps apart. The last ``validation_trajectories``
    trajectories of the file are held back from training to score the models
    (``training.select_by = "rollout"``). ``scale`` as for ``gray_scott``: the default
    ``minmax`` trains in [0, 1] units; models take and return physical units.
    """

    source: str = "file"
    """Selects this kind of data: ``"file"``."""
    path: str = ""
    """The trajectories, relative to the config's folder: a ``.npy`` of shape (T, H, W, C) or
    (R, T, H, W, C), or a source ``stnca import`` reads (``movie.tif``, ``run.h5:/path``, ...),
    read with that command's defaults. Required.
    """
    noise: float = 0.0
    """Measurement noise ``xi``: the data become ``(1 - xi) y + xi eta``, ``eta ~ U(min y, max y)``,
    drawn once. Range: [0, 1].
    """
    seed: int = 0
    """Seed of the measurement noise. Range: [0, 2**32)."""
    scale: str = "minmax"
    """Units the model trains in: ``minmax`` (one minimum and maximum over the whole data set mapped
    to [0, 1]) or ``none``.
    """
    validation_trajectories: int = 0
    """The file's last trajectories held back from training to score the models for
    ``training.select_by = "rollout"``; 0: score on the training ones. Range: >= 0.
    """

    def __post_init__(self):
        choice(self.scale, "data.scale", SCALINGS)
        _non_negative(self.validation_trajectories, "data.validation_trajectories")
        if not self.path:
            raise ValueError("data.path must name the trajectory file (.npy, TIFF, HDF5, ...)")
        _seed(self.seed, "data.seed")
        _check_noise(self.noise)


@dataclasses.dataclass(frozen=True)
class ImageData:
    """An image sequence to morph through (section 3.2), made into training trajectories.

    ``images`` (paths relative to the config's folder, or ``emoji:NAME`` for the packaged
    emoji) are resized to ``size`` x ``size`` by area averaging (0 keeps their own, common,
    size); the last appears ``final_repeats`` times in all so that it must be held stable.
    The sequence is embedded with ``padding`` empty cells on every side and made into
    ``copies`` trajectories, each (but copy 0) translated by up to ``max_shift`` cells
    (default: ``padding``) and optionally rotated (``rotate``: none, lattice or any) and
    flipped, redrawn every ``redraw_every`` epochs (0: never). Each epoch the data get
    ``augment_noise`` of uniform noise, ``(1 - a) y + a U(0, 1)``. Images are already in
    [0, 1], so ``scale`` defaults to ``none``.
    """

    source: str = "images"
    """Selects this kind of data: ``"images"``."""
    images: tuple[str, ...] = ()
    """The images in order: paths relative to the config's folder (any format Pillow reads) or
    ``emoji:NAME``. At least one.
    """
    size: int = 60
    """Side the images are resized to by area averaging; 0 keeps their own (common) size. Range: 0
    or >= 3.
    """
    final_repeats: int = 2
    """How many times the last image appears in the sequence (2 or more: it must be held). Range: >=
    1, at least 2 frames in all.
    """
    padding: int = 10
    """Empty (zero) cells added on every side of the images. Range: >= 0."""
    copies: int = 8
    """Training trajectories made from the sequence; all but copy 0 are moved at random. Range: >=
    1.
    """
    max_shift: int | None = None
    """Largest random translation of a copy, in cells; unset: ``padding``. Range: 0 to ``padding``.
    """
    redraw_every: int = 64
    """Epochs between new random draws of the copies; 0: never. Range: >= 0."""
    augment_noise: float = 0.001
    """Noise ``a`` added each epoch: the data become ``(1 - a) y + a U(min y, max y)``, drawn
    afresh. Range: [0, 1].
    """
    rotate: str = "none"
    """Random rotation of the copies: ``none``, ``lattice`` (multiples of 90 degrees) or ``any``
    (any angle).
    """
    flip: bool = False
    """Flip each copy left-right with probability 1/2."""
    seed: int = 0
    """Seed of the copies' translations, rotations and flips. Range: [0, 2**32)."""
    scale: str = "none"
    """Units the model trains in: ``none`` (images are already in [0, 1]) or ``minmax``."""

    def __post_init__(self):
        choice(self.scale, "data.scale", SCALINGS)
        if not self.images:
            raise ValueError("data.images must list at least one image")
        if self.size != 0 and self.size < 3:
            raise ValueError(
                f"data.size must be >= 3 (or 0 to keep the images' size), got {self.size}"
            )
        _positive(self.final_repeats, "data.final_repeats")
        _non_negative(self.padding, "data.padding")
        _positive(self.copies, "data.copies")
        if self.max_shift is not None:
            _non_negative(self.max_shift, "data.max_shift")
            if self.max_shift > self.padding:
                raise ValueError(
                    f"data.max_shift ({self.max_shift}) must not exceed data.padding "
                    f"({self.padding}), or shifted images would be cut at the lattice edge"
                )
        _non_negative(self.redraw_every, "data.redraw_every")
        if not 0 <= self.augment_noise <= 1:
            raise ValueError(f"data.augment_noise must be in [0, 1], got {self.augment_noise}")
        choice(self.rotate, "data.rotate", ROTATIONS)
        _seed(self.seed, "data.seed")
        if len(self.images) + self.final_repeats - 1 < 2:
            raise ValueError(
                "an image sequence needs at least 2 frames: give 2 images or set "
                "data.final_repeats >= 2"
            )

    @property
    def shift(self) -> int:
        """The largest translation of a copy, in cells."""
        return self.padding if self.max_shift is None else self.max_shift


@dataclasses.dataclass(frozen=True)
class PdeData:
    """Training trajectories simulated from a system of the zoo (``stnca.data.systems``, as
    ``stnca simulate pde`` does): Gray-Scott, Brusselator, FitzHugh-Nagumo, Swift-Hohenberg,
    Allen-Cahn, Cahn-Hilliard or Fisher-KPP, on exponax's spectral solvers.

    ``trajectories`` initial conditions of family ``initial_condition`` are drawn with
    ``seed``; each is integrated for ``steps`` steps of the system's ``dt`` and sampled every
    ``every`` steps. ``[data.parameters]`` replaces the system's default parameters by name.
    Frames are taken as ``training.steps_between_frames`` NCA steps apart.
    """

    source: str = "pde"
    """Selects this kind of data: ``"pde"``."""
    system: str = ""
    """The system: ``gray_scott``, ``brusselator``, ``fitzhugh_nagumo``, ``swift_hohenberg``,
    ``allen_cahn``, ``cahn_hilliard`` or ``fisher_kpp``. Required."""
    size: int = 64
    """Lattice size ``S``: trajectories are ``S x S`` (periodic; ``S`` cells along every axis of
    the lattice, whose dimension is ``model.dimensions``). Range: >= 4."""
    steps: int | None = None
    """Steps of the system's ``dt`` per trajectory; unset: the system's own. Range: >= 1, a
    multiple of ``every``."""
    every: int | None = None
    """Steps between kept frames; unset: the system's own. Range: >= 1, dividing ``steps``."""
    trajectories: int = 4
    """Training trajectories ``R``, each from its own initial condition. Range: >= 1."""
    initial_condition: str | None = None
    """Family of the initial conditions (``stnca.data.systems.initial``: ``noise``, ``blobs``,
    ``seeds``, ``uniform``; Gray-Scott also any of ``stnca.data.initial_conditions``); unset:
    the system's own."""
    seed: int = 0
    """Seed of the initial conditions and the measurement noise. Range: [0, 2**32)."""
    parameters: dict[str, float] = dataclasses.field(default_factory=dict)
    """The system's parameters by name (``[data.parameters]``, e.g. ``b = 9.0`` for the
    Brusselator), each in its documented range; the others keep their defaults."""
    noise: float = 0.0
    """Measurement noise ``xi``: the data become ``(1 - xi) y + xi eta``, ``eta ~ U(min y, max y)``,
    drawn once. Range: [0, 1].
    """
    scale: str = "minmax"
    """Units the model trains in: ``minmax`` (one minimum and maximum over the whole data set mapped
    to [0, 1]) or ``none``.
    """
    validation_trajectories: int = 0
    """Extra trajectories (another seed, never trained on) that score the models for
    ``training.select_by = "rollout"``; 0: score on the training ones. Range: >= 0.
    """

    def __post_init__(self):
        from ...data import systems

        choice(self.scale, "data.scale", SCALINGS)
        _non_negative(self.validation_trajectories, "data.validation_trajectories")
        if not self.system:
            raise ValueError(f"data.system must name a system: {', '.join(systems.SYSTEMS)}")
        choice(self.system, "data.system", tuple(systems.SYSTEMS))
        if self.size < 4:
            raise ValueError(f"data.size must be >= 4, got {self.size}")
        _positive(self.trajectories, "data.trajectories")
        self.system_parameters()  # checks the parameters
        steps, every = self.frames()
        _positive(steps, "data.steps")
        _positive(every, "data.every")
        if steps % every:
            raise ValueError(f"data.steps ({steps}) must be a multiple of data.every ({every})")
        self.check_family(2)
        _seed(self.seed, "data.seed")
        _check_noise(self.noise)

    def check_family(self, dims: int) -> None:
        """Refuse an initial-condition family the system does not draw in ``dims`` dimensions
        (``model.dimensions``; the config checks it once both tables are read)."""
        from ...data import systems

        family = self.initial_condition or self.system_parameters().initial_condition
        choice(family, "data.initial_condition", systems.families(self.system_parameters(), dims))

    def system_parameters(self):
        """The system (``stnca.data.systems``) with this table's parameters."""
        from ...data import systems

        try:
            return systems.system(self.system, self.parameters)
        except ValueError as error:
            raise ValueError(f"data.parameters.{error}") from None

    def frames(self) -> tuple[int, int]:
        """``(steps, every)``, the system's own where unset."""
        cls = type(self.system_parameters())
        return (
            cls.steps if self.steps is None else self.steps,
            cls.every if self.every is None else self.every,
        )


GRAY_SCOTT_CONDITIONS = ("diffusion_a", "diffusion_b", "alpha", "gamma")
"""The Gray-Scott parameters a conditioned model can take as conditions."""


DATA_SOURCES: dict[str, type] = {
    "gray_scott": GrayScottData,
    "file": FileData,
    "images": ImageData,
    "pde": PdeData,
}
