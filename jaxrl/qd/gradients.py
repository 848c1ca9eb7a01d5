"""The learned half of PGA-ME and DCG-ME: a TD3 critic and actor trained from every evaluated policy's
transitions, and policy-gradient variation of elites through that critic.

Both algorithms share the code; DCG-ME conditions everything on a target
descriptor ``d'`` (normalised to ``[-1, 1]``), PGA-ME on nothing (``K = 0``
conditioning features, so the networks see the observation alone and every
similarity is 1):

* critic ``Q(s, a | d')``: TD3's clipped double Q-learning with target-policy
  smoothing (Fujimoto et al. 2018). DCG-ME rescales each reward by the
  similarity of the descriptor the episode reached to the one it was meant
  for, ``S(d, d') = exp(-||d - d'|| / l)`` (Faldor et al. 2023), so
  ``Q(s, a | d')`` values behaviour that both scores well and lands at ``d'``.
* actor ``pi(s | d')``: the greedy TD3 actor (PGA-ME) or the
  descriptor-conditioned actor distilled from the archive (DCG-ME), trained
  every ``policy_delay`` critic steps.
* policy-gradient variation: an elite takes ``pg_steps`` Adam steps on
  ``-Q1(s, pi_theta(s) | d')`` with ``d'`` its own descriptor (DCG-ME), so it
  improves while staying in its cell.

Unlike QDax, a time-limit truncation bootstraps from the true final
observation (QDax drops truncated transitions from the critic loss); a true
termination does not bootstrap.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.buffers.replay import ReplayBuffer, can_sample, init_buffer, sample
from jaxrl.losses.td import polyak_update, td_target


class QDTransition(NamedTuple):
    """A replayed step: ``desc`` is the descriptor its episode reached, ``desc_prime`` the one its policy was
    meant for (both normalised, ``[K]``; ``K = 0`` for PGA-ME)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    desc: jax.Array
    desc_prime: jax.Array


class ActorCritic(NamedTuple):
    critic: Any
    target_critic: Any
    critic_opt: Any
    actor: Any
    target_actor: Any
    actor_opt: Any
    buffer: ReplayBuffer


class TD3Settings(NamedTuple):
    """Static settings of the learned part (the step sizes and length scale are traced, in the hparams)."""

    discount: float
    reward_scaling: float
    policy_noise: float
    noise_clip: float
    tau: float
    policy_delay: int
    critic_steps: int
    batch_size: int
    pg_steps: int
    pg_batch_size: int


def similarity(desc, desc_prime, lengthscale):
    """``exp(-||d - d'||_2 / l)`` over the last axis: ``[..., K], [..., K] -> [...]`` (1 for ``K = 0``)."""
    return jnp.exp(-jnp.linalg.norm(desc - desc_prime, axis=-1) / lengthscale)


def conditioned(obs, desc):
    """The networks' input ``concat(obs, d')``: ``[..., O], [..., K] -> [..., O + K]``."""
    return jnp.concatenate([obs, jnp.broadcast_to(desc, obs.shape[:-1] + desc.shape[-1:])], axis=-1)


def init_actor_critic(key, actor_net, critic_net, obs_dim: int, action_dim: int, cond_dim: int, capacity: int,
                      hp) -> ActorCritic:
    key_actor, key_critic = jax.random.split(key)
    x = jnp.zeros((obs_dim + cond_dim,))
    actor = actor_net.init(key_actor, x)
    critic = critic_net.init(key_critic, x, jnp.zeros((action_dim,)))
    item = QDTransition(jnp.zeros((obs_dim,)), jnp.zeros((action_dim,)), jnp.zeros(()), jnp.zeros((obs_dim,)),
                        jnp.zeros((), bool), jnp.zeros((cond_dim,)), jnp.zeros((cond_dim,)))
    return ActorCritic(critic, critic, optax.adam(hp.critic_lr).init(critic), actor, actor,
                       optax.adam(hp.actor_lr).init(actor), init_buffer(item, capacity))


def make_losses(actor_net, critic_net, settings: TD3Settings) -> tuple[Callable, Callable]:
    """``critic_loss(critic, target_critic, target_actor, batch, key, lengthscale)`` and
    ``actor_loss(actor, critic, batch)``."""

    def critic_loss(critic, target_critic, target_actor, batch: QDTransition, key, lengthscale):
        noise = jnp.clip(jax.random.normal(key, batch.action.shape) * settings.policy_noise,
                         -settings.noise_clip, settings.noise_clip)
        next_x = conditioned(batch.next_obs, batch.desc_prime)
        next_action = jnp.clip(actor_net.apply(target_actor, next_x) + noise, -1.0, 1.0)
        next_q = jnp.min(critic_net.apply(target_critic, next_x, next_action), axis=0)  # [B]
        reward = batch.reward * settings.reward_scaling * similarity(batch.desc, batch.desc_prime, lengthscale)
        target = td_target(reward, batch.terminated, next_q, settings.discount)
        q = critic_net.apply(critic, conditioned(batch.obs, batch.desc_prime), batch.action)  # [2, B]
        return jnp.sum(jnp.mean((q - target) ** 2, axis=-1))

    def actor_loss(actor, critic, batch: QDTransition):
        x = conditioned(batch.obs, batch.desc_prime)
        return -jnp.mean(critic_net.apply(critic, x, actor_net.apply(actor, x))[0])

    return critic_loss, actor_loss


def make_train_actor_critic(actor_net, critic_net, settings: TD3Settings) -> Callable:
    """``train(key, ac, hp) -> (ac, {"critic_loss", "actor_loss"})``: ``critic_steps`` critic steps, an actor step
    after every ``policy_delay`` of them (QDax's packing); nothing while the buffer holds less than a batch."""
    critic_loss, actor_loss = make_losses(actor_net, critic_net, settings)
    delay, batch_size = settings.policy_delay, settings.batch_size

    def train(key, ac: ActorCritic, hp):
        critic_opt, actor_opt = optax.adam(hp.critic_lr), optax.adam(hp.actor_lr)

        def critic_step(carry, inputs):
            critic, target_critic, opt_state, target_actor = carry
            batch, step_key = inputs
            loss, grads = jax.value_and_grad(critic_loss)(critic, target_critic, target_actor, batch, step_key,
                                                          hp.lengthscale)
            updates, opt_state = critic_opt.update(grads, opt_state)
            critic = optax.apply_updates(critic, updates)
            return (critic, polyak_update(target_critic, critic, settings.tau), opt_state, target_actor), loss

        def one_round(ac: ActorCritic, round_key):
            key_sample, key_steps = jax.random.split(round_key)
            batch = sample(key_sample, ac.buffer, batch_size * (delay + 1))
            batch = jax.tree.map(lambda x: x.reshape(delay + 1, batch_size, *x.shape[1:]), batch)
            critic_batches = jax.tree.map(lambda x: x[:-1], batch)
            (critic, target_critic, critic_state, _), losses = jax.lax.scan(
                critic_step, (ac.critic, ac.target_critic, ac.critic_opt, ac.target_actor),
                (critic_batches, jax.random.split(key_steps, delay)))
            a_loss, grads = jax.value_and_grad(actor_loss)(ac.actor, critic, jax.tree.map(lambda x: x[-1], batch))
            updates, actor_state = actor_opt.update(grads, ac.actor_opt)
            actor = optax.apply_updates(ac.actor, updates)
            ac = ActorCritic(critic, target_critic, critic_state, actor, polyak_update(ac.target_actor, actor, settings.tau),
                             actor_state, ac.buffer)
            return ac, (jnp.mean(losses), a_loss)

        def run(ac):
            ac, (c_loss, a_loss) = jax.lax.scan(one_round, ac, jax.random.split(key, max(settings.critic_steps // delay, 1)))
            return ac, {"critic_loss": jnp.mean(c_loss), "actor_loss": jnp.mean(a_loss)}

        def skip(ac):
            return ac, {"critic_loss": jnp.zeros(()), "actor_loss": jnp.zeros(())}

        return jax.lax.cond(can_sample(ac.buffer, batch_size * (delay + 1)), run, skip, ac)

    return train


def make_pg_variation(actor_net, critic_net, settings: TD3Settings) -> Callable:
    """``vary(key, parents [N, ...], targets [N, K], ac, hp) -> offspring [N, ...]``: each parent takes
    ``pg_steps`` Adam steps (fresh optimiser state) on ``-mean Q1(s, pi(s) | target)``; the minibatch of each step
    is shared by the parents (QDax's DCRL emitter)."""

    def policy_loss(params, critic, obs, target):
        return -jnp.mean(critic_net.apply(critic, conditioned(obs, target), actor_net.apply(params, obs))[0])

    def vary(key, parents, targets, ac: ActorCritic, hp):
        opt = optax.adam(hp.policy_lr)

        def one(params, opt_state, target, obs):
            grads = jax.grad(policy_loss)(params, ac.critic, obs, target)
            updates, opt_state = opt.update(grads, opt_state)
            return optax.apply_updates(params, updates), opt_state

        def step(carry, step_key):
            params, opt_state = carry
            obs = sample(step_key, ac.buffer, settings.pg_batch_size).obs
            return jax.vmap(one, in_axes=(0, 0, 0, None))(params, opt_state, targets, obs), None

        (offspring, _), _ = jax.lax.scan(step, (parents, jax.vmap(opt.init)(parents)),
                                         jax.random.split(key, settings.pg_steps))
        return offspring

    return vary
