"""The methods of robust adversarial RL compared here, as (adversary kind, temperature context) pairs.

=====================  ============================  ===============================================
method                 adversary                     each episode's temperature
=====================  ============================  ===============================================
``qarl``               tempered SAC                  ``Gamma(k, rate)``, ``k`` from the self-paced teacher
``linear_schedule``    tempered SAC                  ``Gamma(k(t), rate)``, ``k`` linear in env steps
``fixed_temperature``  tempered SAC                  the constant ``--temperature``
``rarl``               SAC, learned temperature      0 (the input feature; the adversary is fully rational)
``none``               none (force budget 0)         0
=====================  ============================  ===============================================
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.adversarial.teacher import linear_concentration, teacher_init, teacher_record, teacher_step
from jaxrl.envs.adversarial import fixed_temperature, gamma_temperature
from jaxrl.training.off_policy import Context

METHODS = ("qarl", "rarl", "none", "fixed_temperature", "linear_schedule")
ADVERSARY_OF = {"qarl": "tempered", "linear_schedule": "tempered", "fixed_temperature": "tempered",
                "rarl": "autotuned", "none": "none"}


class RationalityHParams(NamedTuple):
    """Traced curriculum hyperparameters (scalars)."""

    initial_concentration: jax.Array
    target_concentration: jax.Array
    rate: jax.Array
    max_kl: jax.Array
    performance_threshold: jax.Array
    temperature: jax.Array  # fixed_temperature's constant


def make_context(method: str, env, total_timesteps: int, min_samples: int, capacity: int) -> Context:
    """The temperature :class:`~jaxrl.training.off_policy.Context` of ``method`` on ``env`` (an
    :class:`~jaxrl.envs.adversarial.AdversaryTemperature` env). Its hyperparameters are ``hp.curriculum``
    (:class:`RationalityHParams`); its state is a :class:`~jaxrl.adversarial.teacher.TeacherState` for every
    method (only ``qarl`` updates it), so every method's metrics have the same rows."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    def concentration(ctx, env_steps, hp):
        if method == "linear_schedule":
            return linear_concentration(hp.initial_concentration, hp.target_concentration, env_steps / total_timesteps)
        return ctx.concentration

    def init(hp):
        return teacher_init(jnp.asarray(hp.curriculum.initial_concentration, jnp.float32), capacity)

    def env_params(ctx, env_steps, hp):
        c = hp.curriculum
        if method in ("qarl", "linear_schedule"):
            source = gamma_temperature(concentration(ctx, env_steps, c), c.rate)
        elif method == "fixed_temperature":
            source = fixed_temperature(c.temperature)
        else:
            source = fixed_temperature(0.0)
        return env.with_temperature(source)

    def update(ctx, traj, env_steps_after, hp):
        c = hp.curriculum
        if method == "qarl":
            ctx = teacher_record(ctx, traj.info["episode_temperature"], traj.info["episode_discounted_return"],
                                 traj.info["episode_done"])
            ctx = teacher_step(ctx, c.target_concentration, c.rate, c.max_kl, c.performance_threshold, min_samples)
        metrics = {"concentration": concentration(ctx, env_steps_after, c),
                   "temperature": jnp.mean(traj.obs[..., -1]),  # of the steps collected
                   "teacher_updates": ctx.updates.astype(jnp.float32)}
        return ctx, metrics

    return Context(init, env_params, update)
