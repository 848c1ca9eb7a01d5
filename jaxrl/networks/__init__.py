"""Flax (linen) networks and action distributions."""
from jaxrl.networks.distributions import Categorical, DiagGaussian, EpsilonGreedy, TanhGaussian
from jaxrl.networks.mlp import ACTIVATIONS, MLP, ActorCritic, orthogonal_dense
from jaxrl.networks.policy import PolicyNetwork
from jaxrl.networks.q import QNetwork

__all__ = ["Categorical", "DiagGaussian", "EpsilonGreedy", "TanhGaussian", "ACTIVATIONS", "MLP", "ActorCritic", "orthogonal_dense", "PolicyNetwork", "QNetwork"]
