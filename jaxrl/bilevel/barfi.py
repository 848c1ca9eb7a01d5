"""BARFI: behaviour alignment by reward-function optimisation (Gupta et al. 2023), and its baselines.

An inner REINFORCE agent (the reference's ``BarfiNeumann`` inner learner) maximises the return of a
parameterised reward and discount,

    r_phi(s, a) = phi_1(s, a) + r_primary(s, a) + phi_2(s, a) * r_aux(s, a),     gamma_phi = sigmoid(w),

and an outer step moves ``phi = (phi_1, phi_2, w)`` so that the inner agent's return *on the primary reward
alone* (discounted with the task's fixed ``gamma``) improves. The outer gradient is the implicit-function
gradient at the inner agent's current parameters ``theta``,

    dJ_p/dphi = - grad_theta J_p . (H_theta theta L)^-1 . d^2 L / d theta d phi,     L = -J_phi,

with the inverse-Hessian-vector product from a Neumann series (:mod:`jaxrl.bilevel.implicit`), or
(``hypergradient="unrolled"``) the gradient of ``J_p`` through ``unroll_steps`` inner steps taken on the same
batch (an importance-weighted surrogate of ``J_p`` after them).

One update of the program (an *outer iteration*):

1. the outer step on the batch ``D_0`` of ``episodes`` episodes played with the current policy (barfi only, after
   ``warmup_iterations``): ``J_p``'s gradient from one half of the episodes, the inner objective's Hessian and
   mixed derivatives (or the unrolled steps) from the other;
2. ``inner_steps`` REINFORCE steps on the (new) shaped reward: the first on ``D_0``, each later one on a fresh
   batch; the batch played after the last step is ``D_0`` of the next iteration (kept in the state).

The baselines run the same inner loop on a fixed reward: ``primary_only`` (``r_primary``, never reads
``r_aux``), ``naive`` (``r_primary + r_aux``) and ``pbrs`` (the reference's potential-based baseline: the
heuristic as the potential of each state-action pair, the naive return minus the current step's potential; see
:func:`potential_shaping`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.agents.base import Agent
from jaxrl.bilevel.implicit import implicit_gradient
from jaxrl.config import option
from jaxrl.evaluation.rollout import make_evaluate
from jaxrl.networks.mlp import MLP
from jaxrl.networks.policy import PolicyNetwork
from jaxrl.training.off_policy import hparams_from_config

METHODS = ("barfi", "naive", "primary_only", "pbrs")
HYPERGRADIENTS = ("implicit", "unrolled")
INITIAL_DISCOUNT_LOGIT = 4.6  # sigmoid(4.6) = 0.990: the reference's initial learned discount
RMS_DECAY = 0.99  # the RMSprop of the reference (PyTorch's default smoothing)
RMS_EPS = 1e-8


@dataclasses.dataclass(frozen=True)
class RewardOptConfig:
    """The inner agent, the learned reward and the outer step (defaults: CartPole, after the reference)."""

    method: str = option("barfi", "how the inner agent's reward is made: learned (barfi), the primary reward only, "
                                  "their naive sum, or potential-based shaping", choices=METHODS)
    hypergradient: str = option("implicit", "barfi's outer gradient: implicit (Neumann series) or through unrolled "
                                            "inner steps", choices=HYPERGRADIENTS)
    episodes: int = option(8, "episodes in each batch the inner agent learns from (one REINFORCE step each)", minimum=1)
    inner_steps: int = option(3, "inner REINFORCE steps per outer iteration", minimum=1)
    horizon: int = option(0, "steps of each episode's scan (0: the environment's time limit)", minimum=0)
    hidden_sizes: tuple = option((32, 32), "hidden layer sizes of the policy")
    reward_hidden_sizes: tuple = option((32,), "hidden layer sizes of the learned reward phi")
    neumann_terms: int = option(5, "terms of the Neumann series of the inverse Hessian-vector product", minimum=0)
    power_iterations: int = option(5, "power iterations estimating the Hessian's largest |eigenvalue|, which caps the "
                                      "Neumann step at its inverse (0: --neumann-alpha as given)", minimum=0)
    unroll_steps: int = option(0, "inner steps differentiated through with --hypergradient unrolled (0: --inner-steps)",
                               minimum=0)
    warmup_iterations: int = option(0, "barfi: outer iterations before the first outer step (the inner agent learns "
                                       "from the initial r_phi = r + r_aux meanwhile; the reference's first_mul)", minimum=0)
    deterministic_eval: bool = option(False, "evaluate the greedy policy (default: the stochastic one, as trained)")
    gamma: float = option(0.99, "discount of the primary objective (and of the fixed-reward baselines)", traced=True,
                          minimum=0.0, maximum=1.0)
    actor_lr: float = option(0.004, "the inner agent's RMSprop step size", traced=True, minimum=0.0)
    reward_lr: float = option(0.05, "RMSprop step size of the learned reward phi", traced=True, minimum=0.0)
    gamma_lr: float = option(0.05, "RMSprop step size of the learned discount's logit", traced=True, minimum=0.0)
    entropy_coef: float = option(0.25, "entropy bonus of the inner agent (the reference's actor_reg)", traced=True,
                                 minimum=0.0)
    neumann_alpha: float = option(0.001, "step of the Neumann series (converges when alpha * eig(H) lies in (0, 2))",
                                  traced=True, positive=True)
    reward_l2: float = option(0.0, "outer penalty on the squared norm of phi's parameters", traced=True, minimum=0.0)
    gamma_l2: float = option(0.0, "outer penalty on the learned discount itself (favours shorter horizons)",
                             traced=True, minimum=0.0)


class RewardOptHParams(NamedTuple):
    """Traced hyperparameters: scalars (``[G*S]`` when vmapped)."""

    gamma: jax.Array
    actor_lr: jax.Array
    reward_lr: jax.Array
    gamma_lr: jax.Array
    entropy_coef: jax.Array
    neumann_alpha: jax.Array
    reward_l2: jax.Array
    gamma_l2: jax.Array


def reward_opt_hparams(cfg: RewardOptConfig) -> RewardOptHParams:
    return hparams_from_config(cfg, RewardOptHParams)


class Episodes(NamedTuple):
    """A batch of ``B`` episodes, each a scan of ``H`` steps from a reset; steps after the episode ended are padding.

    Attributes:
        obs: ``[B, H, D]`` observation acted on; action: ``[B, H]``; reward: ``[B, H]`` primary reward;
        aux: ``[B, H]`` the heuristic's reward; mask: ``[B, H]`` 1.0 where the step belongs to the episode.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    aux: jax.Array
    mask: jax.Array


class RewardNetwork(nn.Module):
    """``obs [..., D] -> (phi_1 [..., A], phi_2 [..., A])``: the learned reward's offset and the heuristic's weight
    for every action. The last layer starts at 0 with biases (0, 1), so ``r_phi`` starts as the naive sum
    ``r_primary + r_aux``, which BARFI then corrects."""

    num_actions: int
    hidden_sizes: tuple = (32,)

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden_sizes, "tanh")(obs) if self.hidden_sizes else obs
        bias = jnp.concatenate([jnp.zeros(self.num_actions), jnp.ones(self.num_actions)])
        out = nn.Dense(2 * self.num_actions, kernel_init=nn.initializers.zeros,
                       bias_init=lambda *_: bias.astype(jnp.float32))(x)
        return out[..., : self.num_actions], out[..., self.num_actions:]


class LearnedReward(NamedTuple):
    """The outer parameters: phi's network and the discount's logit."""

    network: Any
    discount_logit: jax.Array


class RewardOptState(NamedTuple):
    params: Any  # the policy's parameters (theta)
    actor_opt: Any
    reward: LearnedReward
    outer_opt: Any
    batch: Episodes  # played with ``params``: the next outer step's D_0
    iteration: jax.Array  # outer iterations done
    env_state: tuple = ()  # no observation statistics (make_evaluate reads this)


def discounted_returns(rewards: jax.Array, mask: jax.Array, gamma) -> jax.Array:
    """``G_t = r_t + gamma G_{t+1}`` within each episode (padding contributes 0); ``[B, H] -> [B, H]``."""

    def back(carry, x):
        r, m = x
        g = m * (r + gamma * carry)
        return g, g

    _, g = jax.lax.scan(back, jnp.zeros(rewards.shape[0]), (rewards.T, mask.T), reverse=True)
    return g.T


def potential_shaping(batch: Episodes, gamma) -> jax.Array:
    """The reference's potential-based baseline (``REINFORCEPotential``): the heuristic of each step is the
    potential ``Phi_t = r_aux,t`` of the step's state-action pair, and the return from ``t`` is the naive sum's
    minus ``Phi_t``, which is the per-step reward ``r_t + gamma Phi_{t+1}`` (``Phi = 0`` past the episode's end);
    ``[B, H]``. Full look-ahead shaping (``r + gamma Phi' - Phi``, Wiewiora et al. 2003) would make the return
    ``G_t - Phi_t``: with a potential that depends on the action taken, subtracting it from the return of that
    action biases the policy gradient against the actions the heuristic favours, so the reference keeps the
    future potentials and drops only the current one."""
    next_potential = jnp.concatenate([batch.aux[:, 1:] * batch.mask[:, 1:], jnp.zeros_like(batch.aux[:, :1])], axis=1)
    return batch.reward + gamma * next_potential


def policy_objective(logits_fn: Callable, theta, batch: Episodes, returns: jax.Array, entropy_coef) -> jax.Array:
    """The reference's REINFORCE objective (maximised): ``mean_b mean_t mask log pi(a_t|s_t) G_t`` plus the
    entropy bonus averaged over the episodes' steps. ``returns`` ``[B, H]`` are data (no gradient to theta)."""
    logits = logits_fn(theta, batch.obs)  # [B, H, A]
    log_probs = jax.nn.log_softmax(logits)
    log_pi = jnp.take_along_axis(log_probs, batch.action[..., None], axis=-1)[..., 0]
    surrogate = jnp.mean(batch.mask * log_pi * returns)
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, -1)
    return surrogate + entropy_coef * jnp.sum(entropy * batch.mask) / jnp.maximum(batch.mask.sum(), 1.0)


MAX_SCALED_SPAN = 1e3  # observation bounds wider than this (CartPole's velocities: float32 max) are left unscaled


def observation_scaler(env) -> Callable:
    """``obs [..., D] -> [..., D]`` in ``[-1, 1]`` when every bound of the observation space is finite and moderate
    (MountainCar's velocity lives in +-0.07: unscaled, a tanh network barely sees it; the reference gives its
    learners tile-coded or Fourier features of the normalised state); the identity otherwise."""
    space = env.observation_space(env.default_params)
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high - low < MAX_SCALED_SPAN)
            and np.all(high > low)):
        return lambda obs: obs
    centre, half = jnp.asarray((high + low) / 2, jnp.float32), jnp.asarray((high - low) / 2, jnp.float32)
    return lambda obs: (obs - centre) / half


def make_reward_opt(cfg: RewardOptConfig, env, heuristic: Callable, num_updates: int, num_eval_episodes: int) -> Agent:
    """The bi-level program as an :class:`Agent`: one ``update`` is one outer iteration.

    Args:
        env: a jaxrl env with discrete actions (its reward is the primary reward).
        heuristic: ``(obs, action, next_obs, terminated) -> r_aux`` (:mod:`jaxrl.bilevel.tasks`).
        num_updates: outer iterations.
    """
    num_actions = env.action_space(env.default_params).n
    horizon = cfg.horizon or env.max_episode_steps(env.default_params)
    policy = PolicyNetwork(num_actions, True, tuple(cfg.hidden_sizes), "tanh", head_scale=0.01)
    reward_net = RewardNetwork(num_actions, tuple(cfg.reward_hidden_sizes))
    rms = optax.scale_by_rms(decay=RMS_DECAY, eps=RMS_EPS, eps_in_sqrt=True)
    unroll_steps = cfg.unroll_steps or cfg.inner_steps
    obs_shape = env.observation_space(env.default_params).shape

    scale = observation_scaler(env)

    def logits_fn(theta, obs):
        return policy.apply(theta, scale(obs)).logits

    def act(params, obs, key, deterministic):
        logits = logits_fn(params, obs)
        return jnp.where(deterministic, jnp.argmax(logits, -1), jax.random.categorical(key, logits))

    def play_episode(key, theta, env_params):
        key_reset, key_steps = jax.random.split(key)
        state, obs = env.reset(key_reset, env_params)

        def step(carry, k):
            state, obs, alive = carry
            key_act, key_env = jax.random.split(k)
            action = jax.random.categorical(key_act, logits_fn(theta, obs))
            state, ts = env.step(key_env, state, action, env_params)
            aux = heuristic(obs, action, ts.final_obs, ts.terminated)
            out = (obs, action, ts.reward, aux, alive.astype(jnp.float32))
            return (state, ts.obs, alive & ~(ts.terminated | ts.truncated)), out

        _, out = jax.lax.scan(step, (state, obs, jnp.asarray(True)), jax.random.split(key_steps, horizon))
        return Episodes(*out)

    def play(key, theta, env_params) -> Episodes:
        episodes = jax.vmap(play_episode, in_axes=(0, None, None))(jax.random.split(key, cfg.episodes), theta, env_params)
        return episodes._replace(reward=episodes.reward * episodes.mask, aux=episodes.aux * episodes.mask)

    def shaped(reward: LearnedReward, batch: Episodes, hparams):
        """``(rewards [B, H], gamma)`` the inner agent maximises (differentiable in ``reward`` for barfi)."""
        if cfg.method == "primary_only":
            return batch.reward, hparams.gamma
        if cfg.method == "naive":
            return batch.reward + batch.aux, hparams.gamma
        if cfg.method == "pbrs":
            return potential_shaping(batch, hparams.gamma), hparams.gamma
        phi_1, phi_2 = reward_net.apply(reward.network, scale(batch.obs))  # [B, H, A]
        pick = lambda x: jnp.take_along_axis(x, batch.action[..., None], axis=-1)[..., 0]  # noqa: E731
        return pick(phi_1) + batch.reward + pick(phi_2) * batch.aux, jax.nn.sigmoid(reward.discount_logit)

    def inner_objective(theta, reward, batch, hparams):
        rewards, gamma = shaped(reward, batch, hparams)
        return policy_objective(logits_fn, theta, batch, discounted_returns(rewards, batch.mask, gamma), hparams.entropy_coef)

    def primary_returns(batch, hparams):
        return discounted_returns(batch.reward, batch.mask, hparams.gamma)

    def primary_objective(theta, batch, hparams):
        return policy_objective(logits_fn, theta, batch, primary_returns(batch, hparams), 0.0)

    def rms_step(theta, opt, grad, lr):
        """One RMSprop ascent step (differentiable: the unrolled hypergradient goes through it)."""
        direction, opt = rms.update(grad, opt)
        return jax.tree.map(lambda p, d: p + lr * d, theta, direction), opt

    def inner_step(theta, opt, reward, batch, hparams):
        grad = jax.grad(inner_objective)(theta, reward, batch, hparams)
        return rms_step(theta, opt, grad, hparams.actor_lr)

    def halves(batch: Episodes) -> tuple[Episodes, Episodes]:
        """Independent episodes for ``J_p``'s gradient and for the inner objective's derivatives: on one batch the
        product of two REINFORCE estimates carries the covariance of their samples (with positive returns it
        favours whatever lengthens episodes, e.g. a positive ``phi_1``); the reference draws them apart too."""
        half = cfg.episodes // 2
        return jax.tree.map(lambda x: x[:half], batch), jax.tree.map(lambda x: x[half:], batch)

    def implicit_hypergradient(state, hparams):
        outer_batch, inner_batch = halves(state.batch)
        return implicit_gradient(lambda theta, reward: -inner_objective(theta, reward, inner_batch, hparams),
                                 lambda theta: primary_objective(theta, outer_batch, hparams),
                                 state.params, state.reward, hparams.neumann_alpha, cfg.neumann_terms,
                                 cfg.power_iterations)

    def unrolled_hypergradient(state, hparams):
        batch, inner_batch = halves(state.batch)  # J_p after the unrolled steps on one half, the steps on the other
        behaviour = jax.lax.stop_gradient(jax.nn.log_softmax(logits_fn(state.params, batch.obs)))
        behaviour = jnp.take_along_axis(behaviour, batch.action[..., None], axis=-1)[..., 0]
        returns = primary_returns(batch, hparams)

        def after_unroll(reward):
            def one(carry, _):
                return inner_step(*carry, reward, inner_batch, hparams), None

            (theta, _), _ = jax.lax.scan(one, (state.params, state.actor_opt), None, length=unroll_steps)
            log_pi = jnp.take_along_axis(jax.nn.log_softmax(logits_fn(theta, batch.obs)), batch.action[..., None], -1)[..., 0]
            # pi_theta / pi_behaviour: the batch was played before the unrolled steps; the gradient of this
            # surrogate at theta = behaviour is the REINFORCE gradient of J_p
            return jnp.mean(batch.mask * jnp.exp(log_pi - behaviour) * returns)

        return jax.grad(after_unroll)(state.reward)

    def outer_step(state, hparams):
        """Ascent on J_p (minus the penalties) for the learned reward and discount; ``(reward, outer_opt, norm)``."""
        hyper = implicit_hypergradient(state, hparams) if cfg.hypergradient == "implicit" else unrolled_hypergradient(state, hparams)

        def penalty(reward):
            l2 = sum(jnp.sum(x ** 2) for x in jax.tree.leaves(reward.network))
            return hparams.reward_l2 * l2 + hparams.gamma_l2 * jax.nn.sigmoid(reward.discount_logit)

        descent = jax.tree.map(lambda h, p: p - h, hyper, jax.grad(penalty)(state.reward))
        direction, outer_opt = rms.update(descent, state.outer_opt)
        lrs = LearnedReward(jax.tree.map(lambda _: hparams.reward_lr, state.reward.network), hparams.gamma_lr)
        reward = jax.tree.map(lambda p, d, lr: p - lr * d, state.reward, direction, lrs)
        return reward, outer_opt, optax.tree.norm(hyper)

    def init(key, hparams) -> RewardOptState:
        key_policy, key_reward, key_play = jax.random.split(key, 3)
        dummy = jnp.zeros(obs_shape, jnp.float32)
        theta = policy.init(key_policy, dummy)
        reward = LearnedReward(reward_net.init(key_reward, dummy), jnp.float32(INITIAL_DISCOUNT_LOGIT))
        return RewardOptState(theta, rms.init(theta), reward, rms.init(reward), play(key_play, theta, env.default_params),
                              jnp.zeros((), jnp.int32))

    def learned_terms(reward, batch):
        """Means over the batch's steps of phi_1 and phi_2 at the actions taken."""
        phi_1, phi_2 = reward_net.apply(reward.network, scale(batch.obs))
        pick = lambda x: jnp.take_along_axis(x, batch.action[..., None], axis=-1)[..., 0]  # noqa: E731
        steps = jnp.maximum(batch.mask.sum(), 1.0)
        return jnp.sum(pick(phi_1) * batch.mask) / steps, jnp.sum(pick(phi_2) * batch.mask) / steps

    def update(key, state: RewardOptState, env_params, hparams):
        batch = state.batch
        hyper_norm = jnp.float32(0.0)
        reward, outer_opt = state.reward, state.outer_opt
        if cfg.method == "barfi":
            stepped = outer_step(state, hparams)
            warm = state.iteration >= cfg.warmup_iterations
            reward, outer_opt = jax.tree.map(lambda new, old: jnp.where(warm, new, old), stepped[:2], (reward, outer_opt))
            hyper_norm = jnp.where(warm, stepped[2], 0.0)

        def inner(carry, k):
            theta, opt, batch = carry
            theta, opt = inner_step(theta, opt, reward, batch, hparams)
            return (theta, opt, play(k, theta, env_params)), None

        (theta, actor_opt, next_batch), _ = jax.lax.scan(inner, (state.params, state.actor_opt, batch),
                                                         jax.random.split(key, cfg.inner_steps))
        phi_1, phi_2 = learned_terms(reward, batch)
        logits = logits_fn(state.params, batch.obs)
        probs = jax.nn.softmax(logits)
        entropy = -jnp.sum(probs * jax.nn.log_softmax(logits), -1)
        discount = jax.nn.sigmoid(reward.discount_logit) if cfg.method == "barfi" else hparams.gamma
        metrics = {"train_return": batch.reward.sum(-1).mean(), "aux_return": batch.aux.sum(-1).mean(),
                   "episode_length": batch.mask.sum(-1).mean(), "discount": discount,
                   "phi_1": phi_1, "phi_2": phi_2, "hypergradient_norm": hyper_norm,
                   "entropy": jnp.sum(entropy * batch.mask) / jnp.maximum(batch.mask.sum(), 1.0)}
        return RewardOptState(theta, actor_opt, reward, outer_opt, next_batch, state.iteration + 1), metrics

    evaluate = make_evaluate(env, act, num_eval_episodes, cfg.deterministic_eval)
    return Agent(init=init, update=update, evaluate=evaluate, act=act, num_updates=num_updates,
                 env_steps_per_update=cfg.inner_steps * cfg.episodes * horizon, env=env)


def make_reward_values(cfg: RewardOptConfig, env) -> Callable:
    """``(reward, obs [N, D]) -> (phi_1, phi_2)`` ``[N, A]``: a learned reward of ``cfg`` on ``env`` at raw
    observations (for drawing it; the observation scaling is fixed here, on the host)."""
    net = RewardNetwork(env.action_space(env.default_params).n, tuple(cfg.reward_hidden_sizes))
    scale = observation_scaler(env)
    return lambda reward, obs: net.apply(reward.network, scale(obs))
