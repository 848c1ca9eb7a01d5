"""Action-value networks for value-based agents (DQN, PQN)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from jaxrl.networks.mlp import MLP, orthogonal_dense


class QNetwork(nn.Module):
    """``obs [..., obs_dim] -> q [..., action_dim]`` or, with ``num_bins > 0``,
    logits ``[..., action_dim, num_bins]`` of a categorical value distribution
    per action (classification value losses, e.g. HL-Gauss).

    ``layer_norm`` puts LayerNorm after every hidden layer (PQN relies on it
    in place of a target network).
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (120, 84)
    activation: str = "relu"
    layer_norm: bool = False
    num_bins: int = 0

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden_sizes, self.activation, self.layer_norm)(obs)
        outputs = self.action_dim * max(self.num_bins, 1)
        out = orthogonal_dense(outputs, 1.0)(x)
        if self.num_bins:
            return out.reshape(out.shape[:-1] + (self.action_dim, self.num_bins))
        return out
