"""Flax (linen) networks and action distributions."""
from jaxrl.networks.distributions import Categorical, DiagGaussian, EpsilonGreedy
from jaxrl.networks.mlp import ACTIVATIONS, MLP, ActorCritic, orthogonal_dense
from jaxrl.networks.q import QNetwork

__all__ = ["Categorical", "DiagGaussian", "EpsilonGreedy", "ACTIVATIONS", "MLP", "ActorCritic", "orthogonal_dense", "QNetwork"]
