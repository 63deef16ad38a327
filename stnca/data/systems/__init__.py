"""A zoo of pattern-forming PDEs as data sources, in 1-D, 2-D and 3-D on periodic lattices.

Each system is a frozen dataclass of its documented parameters (``SYSTEMS[name]()`` gives
the defaults; ranges are checked on construction). The solvers are exponax's Fourier
pseudo-spectral ETDRK2 steppers: exponax's own for Gray-Scott, Allen-Cahn, Cahn-Hilliard,
Fisher-KPP and Swift-Hohenberg, and exponax's ETDRK with our reaction terms for the
Brusselator and FitzHugh-Nagumo (``_stepper.ReactionDiffusion``). The paper's
finite-difference Gray-Scott stays the reference (``stnca.data.gray_scott``).

    >>> from stnca.data.systems import simulate_system
    >>> y = simulate_system("brusselator", dims=1, size=64, steps=8, every=4)
    >>> y.shape  # (T, X, C)
    (3, 64, 2)

See ``README.md`` beside this file for the table of systems.
"""

from ._base import DIMENSIONS as DIMENSIONS
from ._base import Range as Range
from ._base import System as System
from .initial import FAMILIES as FAMILIES
from .initial import families as families
from .phase_field import AllenCahn as AllenCahn
from .phase_field import CahnHilliard as CahnHilliard
from .phase_field import SwiftHohenberg as SwiftHohenberg
from .reaction_diffusion import Brusselator as Brusselator
from .reaction_diffusion import FisherKPP as FisherKPP
from .reaction_diffusion import FitzHughNagumo as FitzHughNagumo
from .reaction_diffusion import GrayScott as GrayScott
from .simulate import check_dims as check_dims
from .simulate import simulate_system as simulate_system
from .simulate import simulate_system_to_file as simulate_system_to_file
from .simulate import simulate_systems as simulate_systems
from .simulate import system as system

SYSTEMS: dict[str, type[System]] = {
    cls.name: cls
    for cls in (
        GrayScott,
        Brusselator,
        FitzHughNagumo,
        SwiftHohenberg,
        AllenCahn,
        CahnHilliard,
        FisherKPP,
    )
}
"""Registry name -> system class (its defaults: ``SYSTEMS[name]()``)."""
