"""Small pure loss functions, tested on hand-computed cases."""
from jaxrl.losses.gae import gae_advantages
from jaxrl.losses.hl_gauss import categorical_value, hl_gauss_loss, hl_gauss_sigma, hl_gauss_support, hl_gauss_target
from jaxrl.losses.ppo import clipped_surrogate_loss, normalize, value_loss
from jaxrl.losses.q_lambda import q_lambda_returns

__all__ = ["gae_advantages", "clipped_surrogate_loss", "normalize", "value_loss",
           "categorical_value", "hl_gauss_loss", "hl_gauss_sigma", "hl_gauss_support", "hl_gauss_target",
           "q_lambda_returns"]
