"""Learned Policy Gradient (Oh et al. 2020): an agent whose whole update rule is a network, and TA-LPG.

The agent has a policy ``pi(a|s)`` and a categorical *prediction* ``y(s)`` (no
value function: what ``y`` means is up to the rule). Its update rule
(:class:`UpdateRule`) reads a trajectory ``[T, B]`` *backward in time*, step by
step: reward, episode end, discount, ``pi(a_t|s_t)``, and embeddings of
``y(s_t)`` and ``y(s_{t+1})``, with a recurrent core whose state is reset where
an episode ended (the future of another episode never reaches a step). It
emits a policy target ``pi_hat_t`` and a prediction target ``y_hat_t``, and the
agent follows

    grad = E[ grad log pi(a_t|s_t) * pi_hat_t ] - alpha_y * grad KL(y(s_t) || y_hat_t)

(the LPG paper's update; the GROOVE reference descends ``log pi * pi_hat``, the
opposite sign convention for ``pi_hat``). The rule's parameters are a traced
hyperparameter of the inner training (``LPGHParams.rule_params``), so a
population of rules trains a population of agents in one vmapped program, as
learned objectives do.

TA-LPG (Jackson et al. 2024) is the same rule that also sees the agent's
progress through its lifetime: ``update_step / lifetime`` and ``log lifetime``.

Deviations from the GROOVE reference (where it departs from the paper): the
rule also sees the discount (the LPG paper's input; the reference drops it),
TA-LPG's inputs are the normalised step and the log lifetime (the reference
feeds raw counts), and truncation is kept apart from termination: ``y(s_{t+1})``
of a time-limit step is the true final observation's, masked only at a
terminal state.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl.agents.base import Agent
from jaxrl.config import option
from jaxrl.envs import make_vec_env
from jaxrl.envs.core import Discrete, Env
from jaxrl.evaluation.rollout import make_evaluate
from jaxrl.losses.gae import gae_advantages
from jaxrl.losses.ppo import normalize
from jaxrl.networks.distributions import Categorical
from jaxrl.networks.mlp import MLP, orthogonal_dense
from jaxrl.training.optim import global_norm
from jaxrl.training.rollout import collect_rollout

RULES = ("lpg", "ta_lpg")
AGENT_OPTIMIZERS = ("sgd", "adam")


class RuleInputs(NamedTuple):
    """What an update rule reads at every step of a trajectory; leaves ``[T, B]`` unless noted.

    Attributes:
        reward: ``r_t``.
        done: the episode ended at step ``t`` (terminated or truncated): the backward core is reset here.
        discount: ``gamma * (1 - terminated_t)``.
        pi: ``pi(a_t | s_t)`` under the current policy (no gradient).
        y: ``[T, B, m]`` the prediction at ``s_t`` (no gradient).
        y_next: ``[T, B, m]`` the prediction at the true next state (``final_obs`` at a time limit).
        progress: ``[]`` the agent's update step divided by its lifetime (TA-LPG).
        log_lifetime: ``[]`` ``log`` of the lifetime in updates (TA-LPG).
    """

    reward: jax.Array
    done: jax.Array
    discount: jax.Array
    pi: jax.Array
    y: jax.Array
    y_next: jax.Array
    progress: jax.Array
    log_lifetime: jax.Array


class UpdateRule(NamedTuple):
    """A (learned or hand-set) update rule.

    Attributes:
        name: ``lpg``, ``ta_lpg`` or a hand-set rule's name.
        init: ``key -> params``.
        apply: ``(params, RuleInputs) -> (pi_hat [T, B], y_hat [T, B, m])``, ``y_hat`` a distribution.
        spec: JSON-able facts that rebuild it (``make_rule(**spec)``); empty for a hand-set rule.
    """

    name: str
    init: Callable
    apply: Callable
    spec: dict


class _BackwardStep(nn.Module):
    """One step of the backward core: reset where the episode ended at ``t``, then a GRU cell."""

    hidden: int

    @nn.compact
    def __call__(self, carry, inputs):
        x, done = inputs
        carry = jnp.where(done[:, None], 0.0, carry)
        return nn.GRUCell(self.hidden)(carry, x)


class LPGNetwork(nn.Module):
    """The LPG network: ``RuleInputs -> (pi_hat [T, B], y_hat [T, B, m])``.

    ``phi`` (Dense(embed) -> ReLU -> Dense(1), shared by ``y_t`` and ``y_{t+1}``)
    embeds the predictions; per-step features ``[r, done, discount, pi, phi(y_t),
    phi(y_{t+1}) (0 at a terminal state)]`` (+ ``[progress, log lifetime]`` for TA-LPG)
    run through a GRU backward in time (carry 0 after the trajectory's last step
    and reset where an episode ended), then ReLU and two linear heads: ``pi_hat``
    and ``y_hat = softmax(.)``. The LPG paper uses an LSTM with 256 units; the
    GROOVE reference a GRU, as here.
    """

    hidden: int = 256
    embed: int = 16
    y_dim: int = 8
    lifetime_aware: bool = False

    def setup(self):
        self.phi_torso = MLP((self.embed,), activation="relu")
        self.phi_head = nn.Dense(1)
        self.core = nn.scan(_BackwardStep, variable_broadcast="params", split_rngs={"params": False}, reverse=True)(self.hidden)
        self.pi_head = nn.Dense(1)
        self.y_head = nn.Dense(self.y_dim)

    def __call__(self, inputs: RuleInputs):
        phi = lambda y: self.phi_head(self.phi_torso(y))  # noqa: E731
        terminal = inputs.discount == 0.0
        phi_y, phi_next = phi(inputs.y)[..., 0], jnp.where(terminal, 0.0, phi(inputs.y_next)[..., 0])
        features = [inputs.reward, inputs.done.astype(jnp.float32), inputs.discount, inputs.pi, phi_y, phi_next]
        if self.lifetime_aware:
            features += [jnp.broadcast_to(inputs.progress, inputs.reward.shape),
                         jnp.broadcast_to(inputs.log_lifetime, inputs.reward.shape)]
        x = jnp.stack(features, axis=-1)  # [T, B, F]
        carry = jnp.zeros((x.shape[1], self.hidden), jnp.float32)
        _, h = self.core(carry, (x, inputs.done))
        h = nn.relu(h)
        return self.pi_head(h)[..., 0], jax.nn.softmax(self.y_head(h))


def make_rule(rule: str = "lpg", hidden: int = 256, embed: int = 16, y_dim: int = 8) -> UpdateRule:
    """The learned rule ``lpg`` or ``ta_lpg`` (the same network, TA-LPG also seeing its lifetime)."""
    if rule not in RULES:
        raise ValueError(f"unknown update rule {rule!r}; choose from {', '.join(RULES)}")
    net = LPGNetwork(hidden, embed, y_dim, lifetime_aware=rule == "ta_lpg")

    def init(key):
        dummy = RuleInputs(*(jnp.zeros((1, 1)),) * 4, jnp.zeros((1, 1, y_dim)), jnp.zeros((1, 1, y_dim)),
                           jnp.zeros(()), jnp.zeros(()))
        return net.init(key, dummy)

    return UpdateRule(rule, init, net.apply, {"rule": rule, "hidden": hidden, "embed": embed, "y_dim": y_dim})


def discounted_returns(reward, done, discount):
    """``G_t = r_t + discount_t * G_{t+1}`` within an episode (``G = r_t`` where it ended), backward over ``[T, B]``;
    0 after the window's last step (no bootstrap)."""

    def body(g_next, x):
        r, d, disc = x
        g = r + disc * jnp.where(d, 0.0, g_next)
        return g, g

    _, g = jax.lax.scan(body, jnp.zeros_like(reward[0]), (reward, done, discount), reverse=True)
    return g


def reinforce_rule() -> UpdateRule:
    """A hand-set rule: ``pi_hat_t`` the discounted return to the episode's (or window's) end and
    ``y_hat = y`` (no prediction learning): the agent update it encodes is REINFORCE's."""

    def apply(params, inputs: RuleInputs):
        return discounted_returns(inputs.reward, inputs.done, inputs.discount), inputs.y

    return UpdateRule("reinforce", lambda key: {}, apply, {})


@dataclasses.dataclass(frozen=True)
class LPGAgentConfig:
    """The inner agent trained by an update rule (GROOVE reference's tabular defaults)."""

    num_envs: int = option(64, "parallel environments per agent", minimum=1)
    rollout_len: int = option(20, "steps per rollout (the rule's trajectory length T)", minimum=1)
    hidden_sizes: tuple = option((), "agent MLP hidden sizes (empty: linear, LPG's tabular agent)")
    y_dim: int = option(8, "size of the categorical prediction y(s)", minimum=2)
    optimizer: str = option("sgd", "agent optimiser (sgd with grad-norm clipping: LPG's tabular agents)", choices=AGENT_OPTIMIZERS)
    policy_lr: float = option(40.0, "policy learning rate (large: a linear map of one-hot states, mean over T x B)",
                              traced=True, positive=True)
    y_lr: float = option(4.0, "prediction learning rate", traced=True, positive=True)
    y_coef: float = option(0.5, "alpha_y: weight of KL(y || y_hat)", traced=True, minimum=0.0)
    gamma: float = option(0.99, "discount the rule sees", traced=True, minimum=0.0, maximum=1.0)
    max_grad_norm: float = option(0.5, "global gradient-norm clip of the agent", traced=True, positive=True)
    value_lr: float = option(4.0, "learning rate of the value critic kept beside the agent for meta-gradients and PVL "
                                  "scores (never part of the rule's update)", traced=True, positive=True)
    gae_lambda: float = option(0.95, "GAE lambda of that critic's targets and advantages", traced=True, minimum=0.0,
                               maximum=1.0)


class LPGHParams(NamedTuple):
    """Traced settings of one inner agent; ``rule_params`` is the update rule being meta-learned."""

    rule_params: Any
    policy_lr: jax.Array
    y_lr: jax.Array
    y_coef: jax.Array
    gamma: jax.Array
    max_grad_norm: jax.Array
    lifetime: jax.Array  # agent updates this agent lives for (progress = update_step / lifetime); -1: the whole run
    value_lr: jax.Array
    gae_lambda: jax.Array


def lpg_hparams(cfg: LPGAgentConfig, rule_params, lifetime) -> LPGHParams:
    f = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    return LPGHParams(rule_params, f(cfg.policy_lr), f(cfg.y_lr), f(cfg.y_coef), f(cfg.gamma), f(cfg.max_grad_norm),
                      jnp.asarray(lifetime, jnp.int32), f(cfg.value_lr), f(cfg.gae_lambda))


class LPGAgentState(NamedTuple):
    params: Any  # {"policy": ..., "y": ...}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    update_step: jax.Array
    critic: Any = ()  # value-critic parameters when the agent keeps one (``with_critic``), else ()


class _Head(nn.Module):
    """MLP torso (ReLU) then a linear output layer (gain ``scale``)."""

    hidden_sizes: tuple
    features: int
    scale: float

    @nn.compact
    def __call__(self, x):
        return orthogonal_dense(self.features, self.scale)(MLP(tuple(self.hidden_sizes), "relu")(x))


class LPGNets(nn.Module):
    """Policy logits ``[.., A]`` and prediction logits ``[.., m]`` from two separate MLPs (linear when no hidden layer)."""

    hidden_sizes: tuple
    num_actions: int
    y_dim: int

    @nn.compact
    def __call__(self, obs):
        return (_Head(self.hidden_sizes, self.num_actions, 0.01, name="policy")(obs),
                _Head(self.hidden_sizes, self.y_dim, 1.0, name="y")(obs))


class ValueNet(nn.Module):
    """``V(s)``: the same torso as the agent's heads and one linear output (a linear map when no hidden layer)."""

    hidden_sizes: tuple

    @nn.compact
    def __call__(self, obs):
        return _Head(self.hidden_sizes, 1, 1.0)(obs)[..., 0]


def critic_advantages(value_apply, critic, traj, gamma, gae_lambda):
    """``(advantages [T, B], value targets [T, B])`` of a trajectory under a value critic: GAE, bootstrapping
    through a time limit from the true final observation, none across a terminal state."""
    values, next_values = value_apply(critic, traj.obs), value_apply(critic, traj.final_obs)
    return gae_advantages(traj.reward, values, next_values, traj.terminated, traj.terminated | traj.truncated, gamma,
                          gae_lambda)


def kl_categorical(p, q, eps: float = 1e-8):
    """``KL(p || q)`` over the last axis of two probability vectors."""
    return jnp.sum(p * (jnp.log(p + eps) - jnp.log(q + eps)), axis=-1)


def agent_loss(params, apply_nets, rule: UpdateRule, hp: LPGHParams, traj, progress):
    """The agent's loss on a trajectory ``[T, B]`` whose gradient is the LPG update (and the rule's outputs).

    ``-mean(log pi(a_t|s_t) * pi_hat_t) + y_coef * mean(KL(y(s_t) || y_hat_t))``; the rule's inputs carry no
    gradient to the agent, the rule's parameters do (meta-gradients flow through ``pi_hat`` and ``y_hat``).
    """
    logits, y_logits = apply_nets(params, traj.obs)
    _, y_next_logits = apply_nets(params, traj.final_obs)
    log_pi = Categorical(logits).log_prob(traj.action)
    y, y_next = jax.nn.softmax(y_logits), jax.nn.softmax(y_next_logits)
    sg = jax.lax.stop_gradient
    inputs = RuleInputs(traj.reward, traj.terminated | traj.truncated, hp.gamma * (1.0 - traj.terminated.astype(jnp.float32)),
                        sg(jnp.exp(log_pi)), sg(y), sg(y_next), progress,
                        jnp.log(jnp.maximum(hp.lifetime, 1).astype(jnp.float32)))
    pi_hat, y_hat = rule.apply(hp.rule_params, inputs)
    kl = kl_categorical(y, y_hat)
    loss = -jnp.mean(log_pi * pi_hat) + hp.y_coef * jnp.mean(kl)
    return loss, {"pi_hat_sq": jnp.mean(pi_hat ** 2), "y_hat_sq": jnp.mean(jnp.sum(y_hat ** 2, -1)),
                  "policy_entropy": jnp.mean(Categorical(logits).entropy()),
                  "y_entropy": jnp.mean(-jnp.sum(y * jnp.log(y + 1e-8), -1)), "kl_y": jnp.mean(kl)}


def make_agent_optimizer(cfg: LPGAgentConfig, hp: LPGHParams) -> optax.GradientTransformation:
    """Clip, then SGD or Adam with separate learning rates for the policy and the prediction."""
    base = optax.identity() if cfg.optimizer == "sgd" else optax.scale_by_adam()
    return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), base)


def sgd_step(params, updates, lr):
    return jax.tree.map(lambda p, u: p - lr * u, params, updates)


def make_lpg_agent(cfg: LPGAgentConfig, env: Env, rule: UpdateRule, num_updates: int, num_eval_episodes: int = 16,
                   deterministic_eval: bool = False, with_critic: bool = False) -> Agent:
    """An agent trained by ``rule`` for ``num_updates`` updates (static: the scan length).

    An agent whose ``hp.lifetime`` is shorter stops learning after ``lifetime`` updates
    (its parameters frozen; GROOVE's per-level lifetimes inside one fixed-length program).
    Evaluation samples actions by default (LPG and GROOVE evaluate the stochastic policy).
    ``with_critic``: the agent also fits a value critic ``V(s)`` by TD(lambda) on every rollout
    (``state.critic``); the rule never sees it. Meta-gradients take their advantages from it
    and PLR's positive value loss (metric ``positive_value_loss``, mean ``max(GAE, 0)`` of the
    rollout) is read from it.
    """
    if not isinstance(env.action_space(env.default_params), Discrete):
        raise ValueError("LPG agents need a discrete action space")
    nets = LPGNets(tuple(cfg.hidden_sizes), env.action_space(env.default_params).n, cfg.y_dim)
    vec_env = make_vec_env(env, cfg.num_envs)
    obs_shape = tuple(env.observation_space(env.default_params).shape)
    value_net = ValueNet(tuple(cfg.hidden_sizes))

    def run_lifetime(lifetime):
        """``hp.lifetime``, where -1 means the whole run (``num_updates``: a training run of ``train.py``)."""
        return jnp.where(lifetime < 0, num_updates, lifetime)

    def act(params, obs, key, deterministic: bool = False):
        dist = Categorical(nets.apply(params, obs)[0])
        return dist.mode() if deterministic else dist.sample(key)

    def init(key, hp: LPGHParams) -> LPGAgentState:
        key_net, key_env = jax.random.split(key)
        params = nets.init(key_net, jnp.zeros((1,) + obs_shape, jnp.float32))
        opt_state = make_agent_optimizer(cfg, hp).init(params)
        env_state, obs = vec_env.reset(key_env, env.default_params)
        critic = value_net.init(jax.random.fold_in(key_net, 1), jnp.zeros((1,) + obs_shape, jnp.float32)) if with_critic else ()
        return LPGAgentState(params, opt_state, env_state, obs, jnp.zeros((), jnp.int32), critic)

    def fit_critic(critic, traj, hp: LPGHParams):
        """One clipped SGD step of the critic towards its GAE targets; ``(critic, positive value loss)``."""
        def loss(c):
            advantages, targets = critic_advantages(value_net.apply, c, traj, hp.gamma, hp.gae_lambda)
            values = value_net.apply(c, traj.obs)
            return jnp.mean((jax.lax.stop_gradient(targets) - values) ** 2), advantages

        grads, advantages = jax.grad(loss, has_aux=True)(critic)
        scale = jnp.minimum(1.0, hp.max_grad_norm / (global_norm(grads) + 1e-6))
        return sgd_step(critic, grads, hp.value_lr * scale), jnp.mean(jnp.maximum(advantages, 0.0))

    def update(key, state: LPGAgentState, env_params, hp: LPGHParams):
        behaviour = jax.lax.stop_gradient(state.params)  # acting carries no (meta-)gradient; the loss below does
        env_state, obs, traj, _ = collect_rollout(key, lambda o: Categorical(nets.apply(behaviour, o)[0]), vec_env,
                                                  env_params, state.env_state, state.obs, cfg.rollout_len)
        lifetime = run_lifetime(hp.lifetime)
        progress = state.update_step.astype(jnp.float32) / jnp.maximum(lifetime, 1).astype(jnp.float32)
        grads, aux = jax.grad(agent_loss, has_aux=True)(state.params, nets.apply, rule, hp._replace(lifetime=lifetime), traj,
                                                        progress)
        updates, opt_state = make_agent_optimizer(cfg, hp).update(grads, state.opt_state, state.params)
        stepped = {"params": {"policy": sgd_step(state.params["params"]["policy"], updates["params"]["policy"], hp.policy_lr),
                              "y": sgd_step(state.params["params"]["y"], updates["params"]["y"], hp.y_lr)}}
        alive = state.update_step < lifetime
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(alive, n, o), new, old)  # noqa: E731
        metrics = {**aux, "grad_norm": global_norm(grads), "train_return": jnp.mean(traj.info["episode_return"]),
                   "episodes_done": jnp.sum(traj.info["episode_done"]).astype(jnp.float32)}
        critic = state.critic
        if with_critic:
            fitted, metrics["positive_value_loss"] = fit_critic(critic, traj, hp)
            critic = keep(fitted, critic)
        return LPGAgentState(keep(stepped, state.params), keep(opt_state, state.opt_state), env_state, obs,
                             state.update_step + 1, critic), metrics

    return Agent(init=init, update=update, evaluate=make_evaluate(env, act, num_eval_episodes, deterministic_eval),
                 act=act, num_updates=int(num_updates), env_steps_per_update=cfg.num_envs * cfg.rollout_len, env=vec_env)


def make_policy_gradient_objective(cfg: LPGAgentConfig, env: Env):
    """The meta-objective of LPG's meta-gradient: how well an (updated) agent does on fresh experience.

    Returns ``objective(key, state, env_params, hp) -> (pg_loss, policy_entropy, y_entropy, (env_state, obs))``:
    a rollout ``[T, B]`` of the agent's policy from where it stands, advantages from its value critic
    (``state.critic``, no gradient), normalised over the rollout, and
    ``pg_loss = -mean(log pi(a_t|s_t) * A_t)``; the entropies are the policy's and ``y``'s on the
    rollout's states. Differentiable in ``state.params`` (and through them in the rule that updated them).
    """
    nets = LPGNets(tuple(cfg.hidden_sizes), env.action_space(env.default_params).n, cfg.y_dim)
    value_net = ValueNet(tuple(cfg.hidden_sizes))
    vec_env = make_vec_env(env, cfg.num_envs)

    def objective(key, state: LPGAgentState, env_params, hp: LPGHParams):
        sg = jax.lax.stop_gradient
        behaviour = sg(state.params)
        env_state, obs, traj, _ = collect_rollout(key, lambda o: Categorical(nets.apply(behaviour, o)[0]), vec_env,
                                                  env_params, state.env_state, state.obs, cfg.rollout_len)
        advantages, _ = critic_advantages(value_net.apply, state.critic, traj, hp.gamma, hp.gae_lambda)
        advantages = sg(normalize(advantages))
        logits, y_logits = nets.apply(state.params, traj.obs)
        dist = Categorical(logits)
        y = jax.nn.softmax(y_logits)
        pg_loss = -jnp.mean(dist.log_prob(traj.action) * advantages)
        return pg_loss, jnp.mean(dist.entropy()), jnp.mean(-jnp.sum(y * jnp.log(y + 1e-8), -1)), (env_state, obs)

    return objective


@dataclasses.dataclass(frozen=True)
class LPGTrainConfig(LPGAgentConfig):
    """``train.py --algo lpg``: a fresh agent trained by a saved (meta-learned) update rule."""

    rule: str = option("", "saved update rule: a meta_train.py run's best/ or final/ directory (lpg, ta_lpg)")


def load_rule(directory: str):
    """``(UpdateRule, params)`` of a rule saved by ``meta_train.py --objective lpg|ta_lpg``."""
    from jaxrl.objectives.store import is_saved_objective, load_objective, read_spec

    if not directory or not is_saved_objective(directory) or "rule" not in read_spec(directory):
        raise ValueError(f"--rule: {directory!r} is not a saved update rule (a meta_train.py --objective lpg run's best/)")
    return load_objective(directory)


def make_lpg_from_config(cfg: LPGTrainConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16,
                         deterministic_eval: bool = False) -> Agent:
    rule, _ = load_rule(cfg.rule)
    if rule.spec["y_dim"] != cfg.y_dim:
        raise ValueError(f"--y-dim: the rule was meta-trained with y_dim {rule.spec['y_dim']}, got {cfg.y_dim}")
    num_updates = max(1, int(total_timesteps) // (cfg.num_envs * cfg.rollout_len))
    return make_lpg_agent(cfg, env, rule, num_updates, num_eval_episodes, deterministic_eval)


def lpg_train_hparams(cfg: LPGTrainConfig) -> LPGHParams:
    return lpg_hparams(cfg, load_rule(cfg.rule)[1], -1)


def validate_lpg(cfg: LPGTrainConfig, env: Env, total_timesteps: int) -> str | None:
    try:
        rule, _ = load_rule(cfg.rule)
    except ValueError as e:
        return str(e)
    if not isinstance(env.action_space(env.default_params), Discrete):
        return "--algo lpg: LPG agents need a discrete action space"
    if rule.spec["y_dim"] != cfg.y_dim:
        return f"--y-dim: the rule was meta-trained with y_dim {rule.spec['y_dim']}, got {cfg.y_dim}"
    if total_timesteps < cfg.num_envs * cfg.rollout_len:
        return f"--total-timesteps: {total_timesteps} is less than one update of {cfg.num_envs * cfg.rollout_len} steps"
    return None
