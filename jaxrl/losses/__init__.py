"""Small pure loss functions, tested on hand-computed cases."""
from jaxrl.losses.gae import gae_advantages
from jaxrl.losses.ppo import clipped_surrogate_loss, normalize, value_loss

__all__ = ["gae_advantages", "clipped_surrogate_loss", "normalize", "value_loss"]
