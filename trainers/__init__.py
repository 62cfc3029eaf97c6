"""Runnable experiments, one per paper table: `python -m trainers.<name>`."""
