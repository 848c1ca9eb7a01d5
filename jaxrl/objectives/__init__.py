"""Policy objectives an on-policy agent can take (``--objective``).

An :class:`Objective` is what the policy minimises, separated from the loop so
that later objectives (DPO, learned LPO drift networks, MDPO) plug in without
touching the agent. Its parameters (``meta_params``) are traced inputs of the
training run, so an outer loop can evolve them.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from jaxrl.losses.mdpo import mdpo_loss
from jaxrl.losses.ppo import clipped_surrogate_loss


class PolicyLossInputs(NamedTuple):
    """Everything an objective may look at, for one minibatch of ``N`` samples.

    Attributes:
        log_ratio: ``[N]`` log pi_new(a|s) - log pi_old(a|s).
        advantages: ``[N]`` (already normalised if the agent normalises them).
        kl: ``[N]`` KL(pi_new(.|s) || pi_old(.|s)).
        clip_eps: scalar trust-region size from the agent's hyperparameters.
        progress: scalar in [0, 1), fraction of training done (update n / N).
        num_updates: scalar N, total number of updates of the run.
        kl_coef: scalar weight of a KL(pi_new || pi_old) penalty from the agent's
            hyperparameters, for objectives that have one (mdpo).
    """

    log_ratio: jax.Array
    advantages: jax.Array
    kl: jax.Array
    clip_eps: jax.Array
    progress: jax.Array
    num_updates: jax.Array
    kl_coef: jax.Array = 1.0


class Objective(NamedTuple):
    """``init(key) -> meta_params``; ``loss(meta_params, PolicyLossInputs) -> scalar``."""

    name: str
    init: Callable
    loss: Callable


def _ppo_clip_loss(meta_params, x: PolicyLossInputs):
    return clipped_surrogate_loss(x.log_ratio, x.advantages, x.clip_eps)


PPO_CLIP = Objective(name="ppo_clip", init=lambda key: (), loss=_ppo_clip_loss)


def _mdpo_loss(meta_params, x: PolicyLossInputs):
    return mdpo_loss(x.log_ratio, x.advantages, x.kl, x.kl_coef, x.progress)


# On-policy MDPO: no clipping; KL(pi || pi_old) weighted by kl_coef / t_k, t_k = 1 - n / N.
MDPO = Objective(name="mdpo", init=lambda key: (), loss=_mdpo_loss)

OBJECTIVES = {PPO_CLIP.name: PPO_CLIP, MDPO.name: MDPO}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
