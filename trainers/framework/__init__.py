"""The experiment framework: configs, the command line, the runner, engines, reports.

`experiment` (the hooks an experiment declares), `config` (dataclass configs whose fields
are every knob), `cli` (flags, presets, `main`), `runner` (the resumable loop over
combinations), `strategy` and `engines` (how a process trains: one process or one worker
of several; `multiworker/` has `TF_CONFIG`, the loop and the loopback launcher),
`callbacks`, `backup` (atomic training backups), `artifacts` (the run directory's files),
`summary` (the end of a run: results, then `--push-to`), `registry` (the experiments and
the push, found by name: the framework imports neither), `test_sets` (the grid test
set), `evaluators` and `reports`.
"""
