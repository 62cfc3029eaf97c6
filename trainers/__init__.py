"""Runnable experiments and their framework.

`framework/` (runner, engines, config, command line, evaluators, reports), one package
per experiment (`python -m trainers.channelwise`, `trainers.attack`,
`trainers.shift_invariance`), `delivery/` (the validated push, `python -m
trainers.push`), and the thin entry modules `launch` (multi-worker on loopback) and
`push`.
"""
