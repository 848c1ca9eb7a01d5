"""PPO (Schulman et al. 2017), discrete and continuous, with a pluggable policy objective
(``--objective ppo_clip | mdpo | dpo | lpo | ta_lpo | DIR``), critic loss (``--value-loss mse | hl_gauss``) and an
optional recurrent core for partially observable tasks (``--recurrent gru | lstm``).

Recurrent PPO carries each env's core state across rollout steps and updates
(reset after every episode end, see :mod:`jaxrl.networks.recurrent`), stores
the state at the rollout's start, and in the update re-runs whole env
sequences from it with the stored done flags, so minibatches are split over
envs, not time.

What is specific to PPO lives here: its config, the rollout's stored fields,
the loss and the epoch x minibatch update. The outer loop (chunks, seeds,
sweeps, evaluation, logging) is shared, see :mod:`jaxrl.training`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.agents.base import Agent
from jaxrl.config import option
from jaxrl.envs import Discrete, make_vec_env
from jaxrl.envs.core import Env
from jaxrl.evaluation import make_evaluate
from jaxrl.losses import categorical_value, gae_advantages, hl_gauss_loss, hl_gauss_sigma, normalize, value_loss
from jaxrl.networks import ActorCritic
from jaxrl.networks.encoders import ENCODERS, maze_view_size
from jaxrl.networks.recurrent import CORES, RecurrentActorCritic, initial_core_state, unroll
from jaxrl.objectives import DRIFT_INITS, OBJECTIVES, PolicyLossInputs, is_saved_objective, resolve_objective
from jaxrl.training.epochs import minibatch_epochs
from jaxrl.training.optim import linear_anneal, make_optimizer
from jaxrl.training.rollout import collect_recurrent_rollout, collect_rollout


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO options. Traced ones can be swept with ``--sweep name=v1,v2``."""

    num_envs: int = option(4, "parallel environments per seed", minimum=1)
    rollout_len: int = option(128, "steps per environment per update", minimum=1)
    num_epochs: int = option(4, "passes over each rollout", minimum=1)
    num_minibatches: int = option(4, "minibatches per epoch (must divide num_envs * rollout_len)", minimum=1)
    hidden_sizes: tuple = option((64, 64), "hidden layer sizes of actor and critic MLPs")
    activation: str = option("tanh", "hidden activation", choices=("tanh", "relu", "gelu", "silu"))
    recurrent: str = option("none", "recurrent core for partial observability: none (feedforward MLPs), or gru / lstm "
                            "(--hidden-sizes torso -> core -> actor and critic heads; num_envs must be divisible by num_minibatches)",
                            choices=("none",) + CORES)
    core_size: int = option(64, "units of the recurrent core and of the heads' hidden layer (--recurrent gru | lstm)", minimum=1)
    head_size: int = option(0, "units of the actor's and critic's hidden layer after a recurrent core (0: --core-size)", minimum=0)
    encoder: str = option("mlp", "observation encoder before the torso: mlp (none), or maze_conv (3x3 conv over the maze's "
                          "egocentric view + direction embedding, the published UED maze policy)", choices=ENCODERS)
    anneal_lr: bool = option(True, "linearly anneal the learning rate to 0 over training")
    normalize_obs: bool = option(False, "running observation normalisation")
    normalize_advantages: bool = option(True, "normalise advantages per minibatch")
    clip_value: bool = option(True, "clip the value loss around the old values (PPO2 style; mse value loss only, ignored by hl_gauss)")
    objective: str = option("ppo_clip", f"policy objective {{{','.join(OBJECTIVES)}}} or a saved objective directory (meta_train.py's best/): "
                            "mdpo = on-policy Mirror Descent Policy Optimization, dpo = Discovered Policy Optimisation, "
                            "lpo / ta_lpo = learned (temporally-aware) drift network")
    drift_hidden: int = option(128, "hidden units of the lpo / ta_lpo drift network", minimum=1)
    drift_init: str = option("ppo", "lpo / ta_lpo parameters when not loaded: fitted to PPO-clip's drift, or random", choices=DRIFT_INITS)
    ta_log_horizon: bool = option(False, "ta_lpo also sees log(number of updates)")
    value_loss: str = option("mse", "critic loss: squared error, or HL-Gauss cross-entropy of a categorical critic", choices=("mse", "hl_gauss"))
    value_bins: int = option(51, "bins of the categorical critic (--value-loss hl_gauss)", minimum=2)
    value_min: float = option(-10.0, "lower end of the categorical critic's support (must cover the returns; targets are clipped into it)")
    value_max: float = option(10.0, "upper end of the categorical critic's support")
    lr: float = option(2.5e-4, "Adam learning rate", traced=True, minimum=0.0)
    gamma: float = option(0.99, "discount factor", traced=True, minimum=0.0)
    gae_lambda: float = option(0.95, "GAE lambda", traced=True, minimum=0.0)
    clip_eps: float = option(0.2, "PPO ratio clip range", traced=True, minimum=0.0)
    vf_clip_eps: float = option(0.2, "value clip range (with --clip-value)", traced=True, minimum=0.0)
    ent_coef: float = option(0.01, "entropy bonus coefficient", traced=True)
    vf_coef: float = option(0.5, "value loss coefficient", traced=True, minimum=0.0)
    max_grad_norm: float = option(0.5, "global gradient-norm clip", traced=True, minimum=0.0)
    kl_coef: float = option(1.0, "weight of the KL(pi || pi_old) penalty of objectives that have one (mdpo: kl_coef / t_k, t_k = 1 - update / num_updates)", traced=True, minimum=0.0)
    value_sigma_ratio: float = option(0.75, "HL-Gauss target width in bin widths (--value-loss hl_gauss)", traced=True, minimum=0.0)
    dpo_alpha: float = option(2.0, "DPO drift constant for positive advantages (--objective dpo)", traced=True, minimum=1e-6)
    dpo_beta: float = option(0.6, "DPO drift constant for negative advantages (--objective dpo)", traced=True, minimum=1e-6)


class PPOHParams(NamedTuple):
    """Traced hyperparameters: every leaf is a float scalar (``[G*S]`` when vmapped)."""

    lr: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    vf_clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array
    kl_coef: jax.Array
    value_sigma_ratio: jax.Array
    dpo_alpha: jax.Array
    dpo_beta: jax.Array
    objective_params: Any = ()
    # Training horizon N in updates, traced: > 0 trains for N updates (later updates change nothing) with the
    # schedule and the objective's n / N over N, so runs of many horizons share one program of
    # ``num_updates`` >= N; <= 0: ``num_updates`` (every run of ``train.py``).
    horizon: Any = -1.0


class PPOState(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [num_envs, obs_dim], observation to act on next
    update_step: jax.Array  # int32, updates done so far


class RecurrentPPOState(NamedTuple):
    """:class:`PPOState` with the recurrent core's state (a separate type keeps feedforward checkpoints unchanged)."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [num_envs, obs_dim], observation to act on next
    core_state: Any  # leaves [num_envs, core_size]: the state to process obs with (already reset after an episode end)
    update_step: jax.Array


def objective_from_config(cfg: PPOConfig):
    """``(Objective, initial meta_params)`` named by ``cfg.objective`` (a name or a saved directory)."""
    return resolve_objective(cfg.objective, cfg.drift_hidden, cfg.drift_init, cfg.ta_log_horizon)


def hparams_from_config(cfg: PPOConfig, objective_params=None) -> PPOHParams:
    """Traced hyperparameters of ``cfg``; ``objective_params`` default to the objective's
    initial (or saved) parameters."""
    values = {f: jnp.asarray(getattr(cfg, f), jnp.float32) for f in PPOHParams._fields if f not in ("objective_params", "horizon")}
    if objective_params is None:
        objective_params = objective_from_config(cfg)[1]
    return PPOHParams(**values, objective_params=objective_params, horizon=jnp.asarray(-1.0, jnp.float32))


def validate_ppo(cfg: PPOConfig, env, total_timesteps: int):
    """Host-side checks that the option table cannot express (the message names the flag)."""
    if cfg.objective not in OBJECTIVES and not is_saved_objective(cfg.objective):
        return (f"--objective: {cfg.objective!r} is neither one of {', '.join(OBJECTIVES)} nor a saved objective directory "
                "(with objective.json and params.msgpack)")
    if cfg.encoder == "maze_conv" and env is not None:
        try:
            maze_view_size(int(np.prod(env.observation_space(env.default_params).shape)))
        except ValueError as error:
            return f"{error} ({getattr(env, 'name', type(env).__name__)} is not a maze)"
    return None


def make_network(cfg: PPOConfig, env: Env, env_params) -> ActorCritic | RecurrentActorCritic:
    space = env.action_space(env_params)
    discrete = isinstance(space, Discrete)
    action_dim = space.n if discrete else int(space.shape[0])
    value_bins = cfg.value_bins if cfg.value_loss == "hl_gauss" else 0
    if cfg.recurrent != "none":
        return RecurrentActorCritic(action_dim=action_dim, discrete=discrete, hidden_sizes=tuple(cfg.hidden_sizes),
                                    activation=cfg.activation, core=cfg.recurrent, core_size=cfg.core_size, value_bins=value_bins,
                                    encoder=cfg.encoder, head_size=cfg.head_size)
    return ActorCritic(action_dim=action_dim, discrete=discrete, hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                       value_bins=value_bins, encoder=cfg.encoder)


def value_from_critic(cfg: PPOConfig, critic_out):
    """The scalar value ``[...]`` from the critic's output (logits ``[..., bins]`` of a categorical critic)."""
    if cfg.value_loss == "hl_gauss":
        return categorical_value(critic_out, cfg.value_min, cfg.value_max)
    return critic_out


def critic_loss(cfg: PPOConfig, critic_out, old_values, targets, hp: PPOHParams):
    """Scalar critic loss of a minibatch: (clipped) squared error or HL-Gauss cross-entropy.

    Args:
        critic_out: ``[N]`` values, or ``[N, bins]`` logits with ``--value-loss hl_gauss``.
        old_values, targets: ``[N]``.
    """
    if cfg.value_loss == "hl_gauss":
        sigma = hl_gauss_sigma(cfg.value_min, cfg.value_max, cfg.value_bins, hp.value_sigma_ratio)
        return jnp.mean(hl_gauss_loss(critic_out, targets, cfg.value_min, cfg.value_max, sigma))
    return value_loss(critic_out, old_values, targets, hp.vf_clip_eps, cfg.clip_value)


def recurrent_sequence_outputs(network: RecurrentActorCritic, params, core_state, obs, done, final_obs=None):
    """Re-runs the recurrent network over stored rollout sequences with the rollout's resets.

    Args:
        core_state: leaves ``[B, core_size]``, the state at the sequences' start.
        obs: ``[T, B, obs_dim]``; done: ``[T, B]`` bool (terminated or truncated at ``t``).
        final_obs: optional ``[T, B, obs_dim]``, the observations the steps led to.

    Returns:
        ``(dist [T, B, ...], critic_out [T, B(, bins)])``, plus ``next_critic_out``
        of ``final_obs`` when given: the critic on the true next observation
        from the state after step ``t`` (before its reset), which is what
        truncation bootstraps from.
    """
    initial = initial_core_state(network.core, network.core_size, 1)

    def step(state, inputs):
        state, dist, critic_out = network.apply(params, state, inputs[0])
        if final_obs is None:
            return state, (dist, critic_out)
        _, _, next_critic_out = network.apply(params, state, inputs[1])
        return state, (dist, critic_out, next_critic_out)

    _, outs = unroll(step, core_state, (obs, obs if final_obs is None else final_obs), done, initial)
    return outs


class PPORollout(NamedTuple):
    """What :attr:`PPOPieces.collect` returns: the state after the rollout (parameters not yet
    updated) and the rollout's training batch.

    Attributes:
        state: the agent state with the env / core state advanced, ``update_step`` not yet.
        batch: dict of ``[T, B, ...]`` leaves (``values``, ``advantages``, ``returns``...), the
            layout ``learn`` takes (recurrent: plus ``core_state [B, core_size]`` at the rollout's start).
        traj: the stored :class:`~jaxrl.types.Transition` ``[T, B, ...]`` (episode statistics in ``info``).
    """

    state: Any
    batch: dict
    traj: Any


class PPOPieces(NamedTuple):
    """PPO's update split in two, for loops that act between rollout and learning (curricula
    score levels from the rollout, and robust PLR skips learning on new levels).

    Attributes:
        collect: ``(key, state, env_params, hparams) -> PPORollout``.
        learn: ``(key, rollout, hparams) -> (state, metrics)``: the epoch x minibatch
            update; ``update_step`` advanced. ``Agent.update`` is ``learn(collect(...))``.
        vec_env: the vectorised training env.
    """

    collect: Any
    learn: Any
    vec_env: Any


def make_ppo(cfg: PPOConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16, deterministic_eval: bool = True) -> Agent:
    """Builds PPO for ``env`` (a single, unvectorised :class:`Env` from :func:`jaxrl.envs.make`).

    ``total_timesteps`` fixes the number of updates: ``total // (num_envs * rollout_len)``.
    """
    return build_ppo(cfg, env, total_timesteps, num_eval_episodes, deterministic_eval)[0]


def build_ppo(cfg: PPOConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16, deterministic_eval: bool = True,
              batched_env_params: bool = False) -> tuple[Agent, PPOPieces]:
    """:func:`make_ppo` and its update's two halves (:class:`PPOPieces`).

    With ``batched_env_params`` every training env plays its own params (a
    level): ``update`` / ``collect`` take params with a leading ``[num_envs]``
    and ``init`` starts every env on ``env.default_params``. Evaluation always
    takes one (unbatched) params.
    """
    recurrent = cfg.recurrent != "none"
    if recurrent and cfg.num_envs % cfg.num_minibatches:
        raise ValueError(f"num_minibatches ({cfg.num_minibatches}) must divide num_envs ({cfg.num_envs}) with a recurrent core")
    env_params = env.default_params
    vec_env = make_vec_env(env, cfg.num_envs, normalize_obs=cfg.normalize_obs, batched_params=batched_env_params)
    init_env_params = (jax.tree.map(lambda x: jnp.broadcast_to(x, (cfg.num_envs,) + jnp.shape(x)), env_params)
                       if batched_env_params else env_params)
    network = make_network(cfg, env, env_params)
    objective = objective_from_config(cfg)[0]
    batch_size = cfg.num_envs * cfg.rollout_len
    num_updates = max(1, int(total_timesteps) // batch_size)
    obs_dim = env.observation_space(env_params).shape

    def initial_policy_state(batch_size: int):
        return initial_core_state(cfg.recurrent, cfg.core_size, batch_size)

    def act(params, obs, key, deterministic: bool = False):
        dist = network.apply(params, obs, method=ActorCritic.policy)
        return dist.mode() if deterministic else dist.sample(key)

    def recurrent_act(params, obs, key, deterministic: bool = False, policy_state=None):
        policy_state, dist, _ = network.apply(params, policy_state, obs)
        return (dist.mode() if deterministic else dist.sample(key)), policy_state

    def init(key, hp: PPOHParams) -> PPOState | RecurrentPPOState:
        key_net, key_env = jax.random.split(key)
        dummy_obs = jnp.zeros((1,) + tuple(obs_dim), jnp.float32)
        params = network.init(key_net, initial_policy_state(1), dummy_obs) if recurrent else network.init(key_net, dummy_obs)
        opt_state = make_optimizer(hp.max_grad_norm).init(params)
        env_state, obs = vec_env.reset(key_env, init_env_params)
        if recurrent:
            return RecurrentPPOState(params, opt_state, env_state, obs, initial_policy_state(cfg.num_envs), jnp.zeros((), jnp.int32))
        return PPOState(params, opt_state, env_state, obs, jnp.zeros((), jnp.int32))

    def forward(params, batch):
        """``(dist, critic_out, batch)`` over a minibatch, every leaf flattened to ``[N, ...]``.

        Recurrent minibatches are whole env sequences (leaves ``[B_mb, T, ...]``
        and ``core_state [B_mb, core_size]``): they are re-run from the stored
        state with the stored done flags, then flattened.
        """
        if not recurrent:
            dist, critic_out = network.apply(params, batch["obs"])
            return dist, critic_out, batch
        seq = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), {k: v for k, v in batch.items() if k != "core_state"})  # [T, B_mb, ...]
        dist, critic_out = recurrent_sequence_outputs(network, params, batch["core_state"], seq["obs"], seq["done"])
        flatten = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        return jax.tree.map(flatten, dist), flatten(critic_out), jax.tree.map(flatten, seq)

    def loss_fn(params, batch, hp: PPOHParams, progress, horizon):
        dist, critic_out, batch = forward(params, batch)
        log_prob = dist.log_prob(batch["action"])
        advantages = batch["advantages"]
        if cfg.normalize_advantages:
            advantages = normalize(advantages)
        inputs = PolicyLossInputs(
            log_ratio=log_prob - batch["log_prob"],
            advantages=advantages,
            kl=dist.kl(type(dist)(*batch["old_dist"])),
            clip_eps=hp.clip_eps,
            progress=progress,
            num_updates=horizon,
            kl_coef=hp.kl_coef,
            dpo_alpha=hp.dpo_alpha,
            dpo_beta=hp.dpo_beta,
        )
        policy_loss = objective.loss(hp.objective_params, inputs)
        v_loss = critic_loss(cfg, critic_out, batch["values"], batch["returns"], hp)
        entropy = jnp.mean(dist.entropy())
        total = policy_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
        ratio = jnp.exp(inputs.log_ratio)
        aux = {
            "policy_loss": policy_loss,
            "value_loss": v_loss,
            "entropy": entropy,
            "approx_kl": jnp.mean((ratio - 1.0) - inputs.log_ratio),
            "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > hp.clip_eps).astype(jnp.float32)),
        }
        return total, aux

    def collect(key_rollout, state: PPOState | RecurrentPPOState, env_params_, hp: PPOHParams) -> PPORollout:
        """One rollout from ``state`` and its GAE advantages; parameters unchanged."""
        if recurrent:
            def policy_step(core_state, obs):
                core_state, dist, _ = network.apply(state.params, core_state, obs)
                return core_state, dist

            env_state, obs, core_state, traj, dists = collect_recurrent_rollout(
                key_rollout, policy_step, vec_env, env_params_, state.env_state, state.obs, state.core_state,
                initial_policy_state(1), cfg.rollout_len,
            )
            # The critic needs the core state too: one pass over the sequences gives V(obs_t) and V(final_obs_t).
            _, critic_out, next_critic_out = recurrent_sequence_outputs(
                network, state.params, state.core_state, traj.obs, traj.terminated | traj.truncated, traj.final_obs
            )
            values, next_values = value_from_critic(cfg, critic_out), value_from_critic(cfg, next_critic_out)
        else:
            def policy_dist(obs):
                return network.apply(state.params, obs, method=ActorCritic.policy)

            env_state, obs, traj, dists = collect_rollout(key_rollout, policy_dist, vec_env, env_params_, state.env_state, state.obs, cfg.rollout_len)
            # Values of every observation and every true next observation in one batched call.
            both = jnp.concatenate([traj.obs, traj.final_obs], axis=0)
            both_values = value_from_critic(cfg, network.apply(state.params, both, method=ActorCritic.value))
            values, next_values = jnp.split(both_values, 2, axis=0)
        advantages, returns = gae_advantages(
            traj.reward, values, next_values, traj.terminated, traj.terminated | traj.truncated, hp.gamma, hp.gae_lambda
        )
        batch = {
            "obs": traj.obs,
            "action": traj.action,
            "log_prob": traj.log_prob,
            "values": values,
            "advantages": advantages,
            "returns": returns,
            "old_dist": tuple(dists),
        }
        if recurrent:
            # Each env's core state at the rollout's start, [B, core_size]: learning re-runs the sequences from it.
            batch["core_state"] = state.core_state
            return PPORollout(state._replace(env_state=env_state, obs=obs, core_state=core_state), batch, traj)
        return PPORollout(state._replace(env_state=env_state, obs=obs), batch, traj)

    def learn(key_perm, rollout: PPORollout, hp: PPOHParams):
        state, batch, traj = rollout
        horizon = jnp.where(hp.horizon > 0, hp.horizon, float(num_updates)).astype(jnp.float32)
        progress = state.update_step.astype(jnp.float32) / horizon
        lr = linear_anneal(hp.lr, state.update_step.astype(jnp.float32), horizon) if cfg.anneal_lr else hp.lr
        if recurrent:
            # Minibatches of whole env sequences: env-major leaves [B, T, ...] and each env's state at the rollout's start.
            sequences = {k: v for k, v in batch.items() if k != "core_state"}
            sequences["done"] = traj.terminated | traj.truncated
            batch = {**jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), sequences), "core_state": batch["core_state"]}
        else:
            batch = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), batch)

        params, opt_state, losses = minibatch_epochs(
            key_perm, state.params, state.opt_state, batch, lambda p, mb: loss_fn(p, mb, hp, progress, horizon),
            cfg.num_epochs, cfg.num_minibatches, lr, hp.max_grad_norm,
        )
        learning = (hp.horizon <= 0) | (state.update_step < horizon)  # always, unless a traced horizon has ended
        params, opt_state = jax.tree.map(lambda new, old: jnp.where(learning, new, old), (params, opt_state),
                                         (state.params, state.opt_state))
        metrics = jax.tree.map(jnp.mean, losses)
        metrics["learning_rate"] = lr
        metrics["train_return"] = jnp.mean(traj.info["episode_return"])
        metrics["episodes_done"] = jnp.sum(traj.info["episode_done"]).astype(jnp.float32)
        return state._replace(params=params, opt_state=opt_state, update_step=state.update_step + 1), metrics

    def update(key, state: PPOState | RecurrentPPOState, env_params_, hp: PPOHParams):
        key_rollout, key_perm = jax.random.split(key)
        return learn(key_perm, collect(key_rollout, state, env_params_, hp), hp)

    policy_state_fn = initial_policy_state if recurrent else None
    agent = Agent(
        init=init,
        update=update,
        evaluate=make_evaluate(env, recurrent_act if recurrent else act, num_eval_episodes, deterministic_eval, cfg.normalize_obs,
                               policy_state_fn),
        act=recurrent_act if recurrent else act,
        num_updates=num_updates,
        env_steps_per_update=batch_size,
        env=vec_env,
        initial_policy_state=policy_state_fn,
    )
    return agent, PPOPieces(collect, learn, vec_env)
