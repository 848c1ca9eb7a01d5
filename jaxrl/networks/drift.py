"""The learned drift network of LPO / TA-LPO (Lu et al. 2022; Jackson et al. 2024)."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

# Subtracted before the ReLU so that tiny positive outputs from float error at r = 1
# do not count as drift (the reference implementation's offset).
DRIFT_OFFSET = 1e-4


class DriftNet(nn.Module):
    """``features [..., F] -> drift [...]``: Dense(hidden, no bias) -> tanh -> Dense(1, no bias) -> ReLU.

    Without biases the network maps zero features (``r = 1``) to exactly zero, and the
    ReLU makes the drift non-negative: the two conditions of a mirror-learning drift.
    """

    hidden: int = 128

    def setup(self):
        self.hidden_layer = nn.Dense(self.hidden, use_bias=False)
        self.out_layer = nn.Dense(1, use_bias=False)

    def __call__(self, features):
        return nn.relu(self.raw(features) - DRIFT_OFFSET)

    def raw(self, features):
        """The pre-ReLU output ``[...]`` (what an initial fit to a target drift regresses)."""
        return self.out_layer(jnp.tanh(self.hidden_layer(features)))[..., 0]
