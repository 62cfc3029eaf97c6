"""Multi-worker training: `cluster` (`TF_CONFIG`), `loop` (the strategy, broadcasts from
the chief and the training loop) and `launch` (N workers on this machine over loopback)."""
