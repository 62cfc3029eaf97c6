"""A stand-in task with `pooled_features`, `ablate` and logits, whose channels are known."""

import numpy as np


class FakeTask:
    """Channel `c` of the feature map is `intensity(image) * patterns[c]`, then ablation.

    `patterns` is `[C, H, W]`; the logits are the pooled channels times `readout`
    (`[C, K]`). Every `ablate` call and every evaluation is recorded.
    """

    def __init__(self, patterns, readout=None):
        self.patterns = np.asarray(patterns, dtype="float64")
        channels = self.patterns.shape[0]
        self.readout = np.eye(channels) if readout is None else np.asarray(readout)
        self.mask = np.ones(channels)
        self.ablate_calls = []

    def pooled_features(self, images, training=False):
        assert training is False
        intensity = np.asarray(images, dtype="float64").mean(axis=-1)
        pooled = np.einsum("bhw,chw->bc", intensity, self.patterns) / intensity[0].size
        return pooled * self.mask

    def __call__(self, images, training=False):
        return self.pooled_features(images, training) @ self.readout

    def ablate(self, channels=()):
        channels = sorted(int(c) for c in channels)
        self.ablate_calls.append(channels)
        self.mask = np.ones_like(self.mask)
        self.mask[channels] = 0.0

    @property
    def ablated_channels(self):
        return [int(c) for c in np.flatnonzero(self.mask == 0)]


def symmetric_patterns(channels, height=8, width=8, seed=0):
    """Random `[C, H, W]` patterns, each equal to its own left-right mirror image."""
    noise = np.random.default_rng(seed).normal(size=(channels, height, width))
    return noise + noise[:, :, ::-1]
