"""Evaluation: scorers, runners over any backend, and reports that compare runs."""
