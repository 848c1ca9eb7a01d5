"""Flax (linen) networks and action distributions."""
from jaxrl.networks.distributions import Categorical, DiagGaussian
from jaxrl.networks.mlp import ACTIVATIONS, MLP, ActorCritic, orthogonal_dense

__all__ = ["Categorical", "DiagGaussian", "ACTIVATIONS", "MLP", "ActorCritic", "orthogonal_dense"]
