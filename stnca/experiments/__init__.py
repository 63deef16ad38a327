"""Experiments: what trains many models. Sweeps over config keys and seeds (``sweep``), the
paper's figures (``reproduce``), Fig 12's symmetry experiment (``symmetry_experiment``),
and the generalisation benchmark with its peer emulators (``benchmark``, ``peers``).
``stnca.analysis`` analyses one trained model; this layer sits above it."""
