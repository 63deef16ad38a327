"""Experiments: what trains many models (peer emulators beside an NCA)."""
