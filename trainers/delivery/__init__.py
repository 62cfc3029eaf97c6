"""Delivery: the validated push of an export into a serving directory (TFX's
InfraValidator, Evaluator and Pusher in one command) and `--push-to` after a run.

`push` (validate, then copy as the next version with a lineage record), `validate`
(infra validation in a separate process), `evaluate` (model validation: data, metrics,
thresholds), `store` (versions, lock, lineage hashes, retiring), `run_exports` (a run's
exports through `push`) and `cli` (`python -m trainers.push`).
"""
