"""Benchmarks of Liaison: ``python -m bench`` runs them all."""
