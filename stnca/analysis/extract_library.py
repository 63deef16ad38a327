"""The library of candidate terms an equation is extracted from (``stnca.analysis.extract``):
monomials of the observable channels up to a degree and stencil derivatives of each channel
(``stnca.analysis.equations``), or an explicit list of terms."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .._validate import count
from .equations import OPERATORS, Term, parse_term
from .equations import library as term_library

MAX_TERMS = 500
"""The most terms a library may have (a degree-3 library of 2 channels has 16)."""


@dataclasses.dataclass(frozen=True)
class Library:
    """The candidate terms: their names (canonical) and channel names.

    Args:
        channels: the observable channels' names, in state order.
        terms: the candidate term names.
    """

    channels: tuple[str, ...]
    terms: tuple[str, ...]

    @classmethod
    def build(
        cls,
        channels: Sequence[str],
        degree: int = 3,
        operators: Sequence[str] = tuple(OPERATORS),
        terms: Sequence[str] | None = None,
    ) -> Library:
        """Monomials up to ``degree`` and ``operators`` of each channel, or exactly ``terms``
        (names in any order of factors; repeats are refused)."""
        channels = tuple(channels)
        if terms is None:
            names = term_library(channels, count(degree, "degree", 0), operators)
        else:
            names = [parse_term(t, channels).name(channels) for t in terms]
            if not names:
                raise ValueError("the list of terms is empty")
        if len(names) > MAX_TERMS:  # the regression's cost grows with the square of this
            made = f"degree {degree} in {len(channels)} channels" if terms is None else "listed"
            raise ValueError(
                f"the library would have {len(names):_} terms ({made}), more than {MAX_TERMS}: "
                "too many for the sparse regression (its time and memory grow with the square "
                "of the terms); lower the degree or give fewer terms"
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"the library repeats the term(s) {repeated}")
        return cls(channels, tuple(names))

    def parsed(self) -> tuple[Term, ...]:
        return tuple(parse_term(t, self.channels) for t in self.terms)
