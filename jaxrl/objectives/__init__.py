"""Policy objectives an on-policy agent can take (``--objective``).

An :class:`Objective` is what the policy minimises, separated from the loop so
that other objectives (MDPO, DPO, learned LPO / TA-LPO drift networks) plug in
without touching the agent. Its parameters (``meta_params``) are traced inputs of
the training run (``PPOHParams.objective_params``), so an outer loop can evolve
them: a whole PPO run is a function of the objective's parameters.

Learned objectives are saved as a directory (``objective.json`` + ``params.msgpack``,
see :mod:`jaxrl.objectives.store`) and ``--objective DIR`` trains with one.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.losses.drift import dpo_drift, drift_policy_loss, lpo_features, ppo_clip_drift, ta_lpo_features
from jaxrl.losses.mdpo import mdpo_loss
from jaxrl.losses.ppo import clipped_surrogate_loss
from jaxrl.networks.drift import DriftNet


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
        dpo_alpha, dpo_beta: DPO's drift constants for positive / negative advantages.
    """

    log_ratio: jax.Array
    advantages: jax.Array
    kl: jax.Array
    clip_eps: jax.Array
    progress: jax.Array
    num_updates: jax.Array
    kl_coef: jax.Array = 1.0
    dpo_alpha: jax.Array = 2.0
    dpo_beta: jax.Array = 0.6


class Objective(NamedTuple):
    """A policy objective.

    Attributes:
        name: ``ppo_clip``, ``mdpo``, ``dpo``, ``lpo`` or ``ta_lpo``.
        init: ``key -> meta_params`` (``()`` for fixed objectives).
        loss: ``(meta_params, PolicyLossInputs) -> scalar`` to minimise.
        drift: ``(meta_params, PolicyLossInputs) -> [N]`` drift of a mirror-learning
            objective (``loss = -mean(r A - drift)``), or ``None`` (mdpo).
        spec: static settings that rebuild the objective (saved with learned ones).
    """

    name: str
    init: Callable
    loss: Callable
    drift: Callable | None = None
    spec: tuple = ()


def _ratio(x: PolicyLossInputs):
    return jnp.exp(x.log_ratio)


def _drift_loss(drift_fn):
    def loss(meta_params, x: PolicyLossInputs):
        return drift_policy_loss(_ratio(x), x.advantages, drift_fn(meta_params, x))

    return loss


def _no_params(key):
    return ()


def _ppo_drift(meta_params, x):
    return ppo_clip_drift(_ratio(x), x.advantages, x.clip_eps)


def _ppo_clip_loss(meta_params, x: PolicyLossInputs):
    return clipped_surrogate_loss(x.log_ratio, x.advantages, x.clip_eps)


PPO_CLIP = Objective(name="ppo_clip", init=_no_params, loss=_ppo_clip_loss, drift=_ppo_drift)


def _mdpo_loss(meta_params, x: PolicyLossInputs):
    return mdpo_loss(x.log_ratio, x.advantages, x.kl, x.kl_coef, x.progress)


# On-policy MDPO: no clipping; KL(pi || pi_old) weighted by kl_coef / t_k, t_k = 1 - n / N.
MDPO = Objective(name="mdpo", init=_no_params, loss=_mdpo_loss)


def _dpo_drift(meta_params, x):
    return dpo_drift(_ratio(x), x.advantages, x.dpo_alpha, x.dpo_beta)


# Discovered Policy Optimisation: the closed form distilled from a learned LPO drift.
DPO = Objective(name="dpo", init=_no_params, loss=_drift_loss(_dpo_drift), drift=_dpo_drift)

FIXED_OBJECTIVES = {o.name: o for o in (PPO_CLIP, MDPO, DPO)}
LEARNED_OBJECTIVES = ("lpo", "ta_lpo")
OBJECTIVES = (*FIXED_OBJECTIVES, *LEARNED_OBJECTIVES)
DRIFT_INITS = ("ppo", "random")


def drift_features(name: str, x: PolicyLossInputs, log_horizon: bool):
    """``[N, F]`` inputs of the learned drift network of ``lpo`` or ``ta_lpo``."""
    ratio = _ratio(x)
    if name == "lpo":
        return lpo_features(ratio, x.advantages)
    return ta_lpo_features(ratio, x.advantages, x.progress, jnp.log(x.num_updates) if log_horizon else None)


def _sample_drift_inputs(key, n: int) -> PolicyLossInputs:
    """Ratios, advantages and training progress where a PPO run's objective is evaluated:
    ``log r ~ N(0, 0.3^2)`` (most mass in PPO's trust region, tails beyond it),
    ``A ~ N(0, 1)`` (normalised advantages), progress uniform, horizons 10 to 10^4 updates."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    zeros = jnp.zeros((n,))
    return PolicyLossInputs(
        log_ratio=0.3 * jax.random.normal(k1, (n,)),
        advantages=jax.random.normal(k2, (n,)),
        kl=zeros,
        clip_eps=jnp.float32(0.2),
        progress=jax.random.uniform(k3, ()),
        num_updates=10.0 ** jax.random.uniform(k4, (), minval=1.0, maxval=4.0),
    )


@functools.partial(jax.jit, static_argnames=("name", "hidden", "log_horizon", "steps"))
def fit_drift_to_ppo(key, name: str, hidden: int, log_horizon: bool, steps: int = 3000):
    """Drift-network parameters regressed onto PPO-clip's drift (``clip_eps = 0.2``).

    The pre-ReLU output is fitted (mean squared error, Adam), so regions where the target
    is zero are learned as zero rather than left in the ReLU's dead zone.
    """
    net = DriftNet(hidden)
    key_init, key_data = jax.random.split(key)
    probe = _sample_drift_inputs(key_data, 8)
    params = net.init(key_init, drift_features(name, probe, log_horizon))
    opt = optax.adam(optax.cosine_decay_schedule(3e-3, steps))

    def loss(p, x):
        pred = net.apply(p, drift_features(name, x, log_horizon), method=DriftNet.raw)
        return jnp.mean((pred - ppo_clip_drift(_ratio(x), x.advantages, x.clip_eps)) ** 2)

    def step(carry, k):
        p, s = carry
        grads = jax.grad(loss)(p, _sample_drift_inputs(k, 1024))
        updates, s = opt.update(grads, s)
        return (optax.apply_updates(p, updates), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key_data, steps))
    return params


_FITTED: dict = {}


def fitted_drift(key, name: str, hidden: int, log_horizon: bool):
    """:func:`fit_drift_to_ppo`, remembered per concrete key: the 3,000-step fit runs once per process
    however many runs build the same objective (a traced key, inside a compiled init, is fitted in place)."""
    try:
        tag = (name, hidden, log_horizon, np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                                                      else key).tobytes())
    except jax.errors.TracerArrayConversionError:
        return fit_drift_to_ppo(key, name, hidden, log_horizon)
    if tag not in _FITTED:
        _FITTED[tag] = fit_drift_to_ppo(key, name, hidden, log_horizon)
    return _FITTED[tag]


def make_learned_objective(name: str, hidden: int = 128, init: str = "ppo", log_horizon: bool = False) -> Objective:
    """LPO (``name="lpo"``) or TA-LPO (``"ta_lpo"``): ``loss = -mean(r A - DriftNet(features))``.

    Args:
        hidden: width of the drift network's hidden layer (static).
        init: ``ppo``: ``init(key)`` fits the network to PPO-clip's drift, so meta-training
            starts at PPO; ``random``: flax's default initialisation.
        log_horizon: TA-LPO also sees ``log N`` (leave off when meta-training at one horizon).
    """
    if name not in LEARNED_OBJECTIVES:
        raise ValueError(f"unknown learned objective {name!r}; choose from {', '.join(LEARNED_OBJECTIVES)}")
    if init not in DRIFT_INITS:
        raise ValueError(f"unknown drift initialisation {init!r}; choose from {', '.join(DRIFT_INITS)}")
    net = DriftNet(hidden)
    log_horizon = bool(log_horizon) and name == "ta_lpo"

    def drift(meta_params, x: PolicyLossInputs):
        return net.apply(meta_params, drift_features(name, x, log_horizon))

    def init_params(key):
        if init == "ppo":
            return fitted_drift(key, name, hidden, log_horizon)
        return net.init(key, drift_features(name, _sample_drift_inputs(key, 8), log_horizon))

    spec = (("objective", name), ("drift_hidden", int(hidden)), ("ta_log_horizon", log_horizon))
    return Objective(name=name, init=init_params, loss=_drift_loss(drift), drift=drift, spec=spec)


def make_objective(name: str, drift_hidden: int = 128, drift_init: str = "ppo", ta_log_horizon: bool = False) -> Objective:
    """The objective called ``name``; the drift options apply to the learned ones only."""
    if name in FIXED_OBJECTIVES:
        return FIXED_OBJECTIVES[name]
    if name in LEARNED_OBJECTIVES:
        return make_learned_objective(name, drift_hidden, drift_init, ta_log_horizon)
    raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)} or a saved objective directory")


def get_objective(name: str) -> Objective:
    """A fixed objective by name, or a learned one with default settings."""
    return make_objective(name)


from jaxrl.objectives.store import (  # noqa: E402  (store builds objectives with make_objective)
    is_saved_objective,
    load_objective,
    resolve_objective,
    save_objective,
)

__all__ = [
    "DPO", "DRIFT_INITS", "FIXED_OBJECTIVES", "LEARNED_OBJECTIVES", "MDPO", "OBJECTIVES", "Objective", "PPO_CLIP",
    "PolicyLossInputs", "drift_features", "fit_drift_to_ppo", "get_objective", "is_saved_objective", "load_objective",
    "make_learned_objective", "make_objective", "resolve_objective", "save_objective",
]


def drift_curve(objective: Objective, meta_params, ratios, advantage: float, progress: float = 0.0,
                num_updates: float = 1000.0, clip_eps: float = 0.2):
    """``[K]`` drift of ``objective`` at ``ratios [K]`` for one advantage value and training
    progress (the papers' figures: drift against r for a positive and a negative advantage)."""
    ratios = jnp.asarray(ratios, jnp.float32)
    x = PolicyLossInputs(jnp.log(ratios), jnp.full_like(ratios, advantage), jnp.zeros_like(ratios),
                         jnp.float32(clip_eps), jnp.float32(progress), jnp.float32(num_updates))
    return objective.drift(meta_params, x)


__all__.append("drift_curve")
