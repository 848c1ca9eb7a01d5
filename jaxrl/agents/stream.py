"""Stream Q(lambda) and stream AC(lambda) (Elsayed et al. 2024, "Streaming Deep Reinforcement Learning Finally Works").

Stream AC(lambda): a policy and a value network, each stepped by ObGD along the trace of its own gradient
(``grad v(s)``; ``grad [log pi(a|s) + c sign(delta) H(pi(s))]``, the entropy bonus signed by the TD error as
in the reference) with the one TD error of the value, traces reset at episode ends. Continuous actions:
a Gaussian with softplus standard deviation, the sample clipped to the action bounds for the env step only.

Stream Q(lambda): one transition per update, no replay buffer, no batch: an epsilon-greedy step
in a single environment, the TD error of Q(s, a) against
``r + gamma * max_a' Q(s', a')`` and one ObGD step along the eligibility
trace of ``grad Q(s, a)`` (:mod:`jaxrl.streaming.obgd`). The trace is reset at
an episode's end and after a non-greedy action (Watkins's Q(lambda)), as the
reference code does. The network is the paper's: sparse initialisation (90% of
each unit's inputs zero), LayerNorm without affine parameters and leaky ReLU.
Observations are normalised by their running mean and standard deviation and
rewards divided by the running standard deviation of the discounted return,
both statistics of this one stream, held in the agent state (checkpointed).

Unlike the reference, a time-limit truncation bootstraps from the true final
observation (the reference's target drops it at truncation too).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.agents.base import Agent
from jaxrl.config import option
from jaxrl.envs import Box, Discrete, make_vec_env, unflattened_observation_shape
from jaxrl.envs.core import Env
from jaxrl.envs.wrappers import NormalizeState, RunningMeanStd
from jaxrl.evaluation import evaluate_episodes
from jaxrl.networks.distributions import Categorical, DiagGaussian
from jaxrl.streaming import (ObGDState, RewardScaler, SampleMeanStd, normalize_sample, obgd_init, scale_reward,
                             sparse_init)
from jaxrl.streaming.obgd import RULES, trace_step
from jaxrl.streaming.normalization import EPS
from jaxrl.training.schedules import linear_schedule


TORSOS = ("auto", "mlp", "conv")
CONV_CHANNELS = 16  # the reference's MinAtar torso: Conv2d(C, 16, 3, stride 1)


class PatchConv(nn.Module):
    """``x [N, H, W, C] -> [N, H-2, W-2, features]``: a 3 x 3 valid convolution (stride 1) written as one matmul of the
    ``[N, H-2, W-2, 9 C]`` patches with the ``[3, 3, C, features]`` kernel (sparse init, zero bias).

    The same function as ``nn.Conv(features, (3, 3), padding="VALID")`` (tested), but on XLA:CPU a batched matmul:
    vmapped over seeds, each with its own kernel, a convolution becomes a grouped convolution, slower there (stream
    Q on Breakout-MinAtar: 15-25% more env steps/s with the matmul, 1 and 64 seeds).
    """

    features: int
    sparsity: float = 0.9

    @nn.compact
    def __call__(self, x):
        height, width, channels = x.shape[-3:]
        kernel = self.param("kernel", sparse_init(self.sparsity), (3, 3, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        patches = jnp.concatenate([x[..., i:i + height - 2, j:j + width - 2, :] for i in range(3) for j in range(3)],
                                  axis=-1)  # [N, H-2, W-2, 9 C] in the kernel's (i, j, c) order
        return patches @ kernel.reshape(9 * channels, self.features) + bias


class StreamNetwork(nn.Module):
    """``x [..., in] -> [..., out_dim]``: Dense (sparse init) -> LayerNorm without scale or bias -> leaky ReLU per
    hidden layer, then a sparse-initialised output layer (zero biases).

    ``image_shape`` ``(H, W, C)``: the flat ``x`` is un-flattened and first goes through the paper's MinAtar torso,
    a 3 x 3 valid convolution with 16 channels (sparse init), LayerNorm over all of its ``[H-2, W-2, 16]`` features
    (the reference normalises the whole map) and leaky ReLU, flattened.
    """

    out_dim: int
    hidden_sizes: Sequence[int] = (32, 32)
    sparsity: float = 0.9
    layer_norm: bool = True
    image_shape: tuple | None = None

    @nn.compact
    def __call__(self, x):
        if self.image_shape is not None:
            batch = x.shape[:-1]
            x = x.reshape((-1,) + tuple(self.image_shape))
            x = PatchConv(CONV_CHANNELS, self.sparsity)(x)
            if self.layer_norm:
                x = nn.LayerNorm(use_bias=False, use_scale=False, reduction_axes=(-3, -2, -1))(x)
            x = nn.leaky_relu(x).reshape(batch + (-1,))
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=sparse_init(self.sparsity))(x)
            if self.layer_norm:
                x = nn.LayerNorm(use_bias=False, use_scale=False)(x)
            x = nn.leaky_relu(x)
        return nn.Dense(self.out_dim, kernel_init=sparse_init(self.sparsity))(x)


def stream_network(cfg, env: Env, out_dim: int) -> StreamNetwork:
    """The network ``cfg`` asks for on ``env``: ``--torso auto`` is the conv torso for image observations (MinAtar's
    ``[10, 10, C]``) and the MLP otherwise."""
    shape = unflattened_observation_shape(env)
    image = len(shape) == 3 if cfg.torso == "auto" else cfg.torso == "conv"
    return StreamNetwork(out_dim, tuple(cfg.hidden_sizes), cfg.sparsity, cfg.layer_norm,
                         tuple(shape) if image else None)


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    """What every streaming agent has: the network, the stream's statistics, the trace update and its step."""

    hidden_sizes: tuple = option((32, 32), "hidden layer sizes (after the conv torso, if there is one)")
    torso: str = option("auto", "auto (the conv torso for image observations such as MinAtar's, else mlp), mlp, or "
                        "conv: the paper's 3x3 convolution with 16 channels before the hidden layers", choices=TORSOS)
    sparsity: float = option(0.9, "fraction of each unit's inputs initialised to zero", minimum=0.0, maximum=0.99)
    layer_norm: bool = option(True, "LayerNorm (no affine parameters) after every hidden layer")
    normalize_obs: bool = option(True, "normalise observations by the stream's running mean and standard deviation")
    scale_reward: bool = option(True, "divide rewards by the running standard deviation of the discounted return")
    optimizer: str = option("obgd", "trace update: obgd, adaptive_obgd, or the stream barrier's classic sgd / adam "
                            "(give those a small --lr)", choices=RULES)
    lr: float = option(1.0, "ObGD step size alpha", traced=True, positive=True)
    gamma: float = option(0.99, "discount factor", traced=True, minimum=0.0, maximum=1.0)
    lamda: float = option(0.8, "trace decay lambda", traced=True, minimum=0.0, maximum=1.0)
    log_interval: int = option(1, "single-transition learning steps per row of metrics: one update of the shared loop "
                               "runs this many and reports their mean (keeps long, many-seed runs' metrics small)",
                               minimum=1)


@dataclasses.dataclass(frozen=True)
class StreamQConfig(StreamOptions):
    """Stream Q(lambda) / SARSA(lambda) options (the reference's defaults). Traced ones can be swept."""

    kappa: float = option(2.0, "ObGD's overshooting bound kappa", traced=True, positive=True)
    start_epsilon: float = option(1.0, "exploration epsilon at the start", traced=True, minimum=0.0, maximum=1.0)
    end_epsilon: float = option(0.01, "exploration epsilon after the decay", traced=True, minimum=0.0, maximum=1.0)
    exploration_fraction: float = option(0.1, "fraction of the steps over which epsilon decays linearly", traced=True,
                                         minimum=0.0, maximum=1.0)


class StreamQHParams(NamedTuple):
    lr: jax.Array
    kappa: jax.Array
    gamma: jax.Array
    lamda: jax.Array
    start_epsilon: jax.Array
    end_epsilon: jax.Array
    exploration_fraction: jax.Array


class StreamState(NamedTuple):
    """One stream: network, ObGD traces, the env and the stream's statistics.

    Attributes:
        x: ``[obs_dim]`` the normalised observation to act on next.
        episode_return / last_return: raw return of the running episode and of the last finished one (0 before the
            first ends, as the other agents report).
    """

    params: Any
    opt: ObGDState
    env_state: Any
    x: jax.Array
    obs_stats: SampleMeanStd
    reward_scaler: RewardScaler
    step: jax.Array
    episode_return: jax.Array
    last_return: jax.Array
    action: jax.Array  # stream SARSA's action chosen for x (0 for the other agents)


def stream_q_hparams(cfg: StreamQConfig) -> StreamQHParams:
    return StreamQHParams(*(jnp.float32(getattr(cfg, f)) for f in StreamQHParams._fields))


def validate_stream_options(cfg, env: Env, total_timesteps: int) -> str | None:
    shape = unflattened_observation_shape(env)
    if cfg.torso == "conv" and (len(shape) != 3 or min(shape[:2]) < 3):
        return f"--torso: conv needs image observations [H >= 3, W >= 3, C]; {env.name} has shape {list(shape)} (use mlp)"
    if total_timesteps % cfg.log_interval:
        return f"--total-timesteps: {total_timesteps} is not a multiple of --log-interval {cfg.log_interval}"
    return None


def validate_stream_ac(cfg, env: Env, total_timesteps: int) -> str | None:
    space = env.action_space(env.default_params)
    if not isinstance(space, (Discrete, Box)):
        return f"--algo: stream_ac needs discrete or box actions; {env.name} has {type(space).__name__}"
    return validate_stream_options(cfg, env, total_timesteps)


def validate_stream_q(cfg: StreamQConfig, env: Env, total_timesteps: int) -> str | None:
    if not isinstance(env.action_space(env.default_params), Discrete):
        return f"--algo: stream Q(lambda) and SARSA(lambda) need discrete actions; {env.name} has continuous ones (use stream_ac)"
    return validate_stream_options(cfg, env, total_timesteps)


def observe(cfg, stats: SampleMeanStd, obs):
    """``(stats, x)``: the stream's statistics updated with ``obs`` and its normalised value (or ``obs``)."""
    if not cfg.normalize_obs:
        return stats, obs
    return normalize_sample(stats, obs)


class StreamStep(NamedTuple):
    """One environment step of a stream: the state advanced (env, statistics, returns; params untouched) and what
    the TD error needs: ``x_final`` the normalised observation the step reached (the true final one at an
    episode's end), the (scaled) ``reward``, ``done`` and ``not_terminated`` (1.0 unless a true terminal)."""

    state: StreamState
    x_final: jax.Array
    reward: jax.Array
    done: jax.Array
    not_terminated: jax.Array


def stream_env_step(cfg, env, s: StreamState, action, key, env_params, gamma) -> StreamStep:
    """Steps ``env`` with ``action`` and updates the stream's statistics: the final observation and, after an
    episode's end, the reset one (the reference's wrappers see both), the reward scale, the episode returns."""
    env_state, ts = env.step(key, s.env_state, action, env_params)
    stats, x_final = observe(cfg, s.obs_stats, ts.final_obs)
    reset_stats, x_reset = observe(cfg, stats, ts.obs)
    done = ts.done
    stats = jax.tree.map(lambda a, b: jnp.where(done, a, b), reset_stats, stats)
    scaler, reward = s.reward_scaler, ts.reward
    if cfg.scale_reward:
        scaler, reward = scale_reward(scaler, ts.reward, done, gamma)
    episode_return = s.episode_return + ts.reward
    state = s._replace(env_state=env_state, x=jnp.where(done, x_reset, x_final), obs_stats=stats, reward_scaler=scaler,
                       step=s.step + 1, episode_return=jnp.where(done, 0.0, episode_return),
                       last_return=jnp.where(done, episode_return, s.last_return))
    return StreamStep(state, x_final, reward, done, 1.0 - ts.terminated.astype(jnp.float32))


def init_stream(cfg, env, key, params, opt) -> StreamState:
    env_state, obs = env.reset(key, env.default_params)
    stats, x = observe(cfg, SampleMeanStd.create(obs.shape), obs)
    return StreamState(params, opt, env_state, x, stats, RewardScaler.create(), jnp.int32(0), jnp.float32(0.0),
                       jnp.float32(0.0), jnp.int32(0))


def stream_policy_of(cfg):
    """``state -> (params, env_state)`` for saved policies: the stream's observation statistics as a
    ``NormalizeState``, where ``load_policy`` finds them (it clips the normalised observation at +-10, which the
    stream's own normalisation does not)."""

    def policy_of(s: StreamState):
        if not cfg.normalize_obs:
            return s.params, ()
        stats = s.obs_stats
        return s.params, NormalizeState((), RunningMeanStd(stats.mean, stats.var, stats.count))

    return policy_of


def make_stream_evaluate(cfg, env, num_episodes: int, policy):
    """``evaluate(key, state, env_params, hp)``: ``policy(params, x [E, obs_dim]) -> actions`` played on observations
    normalised with the stream's statistics, frozen."""
    eval_env = make_vec_env(env, num_episodes)

    def evaluate(key, s: StreamState, env_params, hp):
        def act_fn(obs, _key):
            x = (obs - s.obs_stats.mean) / jnp.sqrt(s.obs_stats.var + EPS) if cfg.normalize_obs else obs
            return policy(s.params, x)

        return evaluate_episodes(key, act_fn, eval_env, env_params, env.max_episode_steps(env_params))

    return evaluate


def stream_agent(cfg, init, step, evaluate, act, total_timesteps: int, env: Env) -> Agent:
    """The :class:`Agent` of a streaming agent whose single-transition learning step is ``step``: one update of the
    shared loop runs ``cfg.log_interval`` steps in a row (``step`` itself when 1) and reports their mean metrics,
    ``train_return`` being the last."""
    interval = int(cfg.log_interval)
    if interval == 1:
        update = step
    else:
        def update(key, s, env_params, hp):
            s, metrics = jax.lax.scan(lambda s, k: step(k, s, env_params, hp), s, jax.random.split(key, interval))
            return s, {name: v[-1] if name == "train_return" else jnp.mean(v, axis=0) for name, v in metrics.items()}
    return Agent(init, update, evaluate, act, int(total_timesteps) // interval, interval, env,
                 policy_of=stream_policy_of(cfg))


def epsilon_greedy(key, q, epsilon):
    """``(action, nongreedy)`` for action values ``q [A]``; a random draw of the greedy action counts as greedy."""
    key_explore, key_action = jax.random.split(key)
    greedy = jnp.argmax(q)
    explore = jax.random.uniform(key_explore) < epsilon
    action = jnp.where(explore, jax.random.randint(key_action, (), 0, q.shape[-1]), greedy)
    return action, q[action] < q[greedy]


def make_stream_q(cfg: StreamQConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16,
                  deterministic_eval: bool = True, sarsa: bool = False) -> Agent:
    """Stream Q(lambda) on a single ``env``: one learning step per transition, ``total_timesteps`` of them.

    ``sarsa``: stream SARSA(lambda): the target bootstraps on the epsilon-greedy action chosen at the next state
    (the one played next), and the trace is reset at episode ends only.
    """
    problem = validate_stream_q(cfg, env, total_timesteps)
    if problem:
        raise ValueError(problem)
    num_actions = env.action_space(env.default_params).n
    obs_dim = env.observation_space(env.default_params).shape[0]
    net = stream_network(cfg, env, num_actions)
    def epsilon_at(step, hp):
        return linear_schedule(hp.start_epsilon, hp.end_epsilon, hp.exploration_fraction * int(total_timesteps), step)

    def init(key, hp: StreamQHParams) -> StreamState:
        key_net, key_env, key_action = jax.random.split(key, 3)
        params = net.init(key_net, jnp.zeros((obs_dim,)))
        state = init_stream(cfg, env, key_env, params, obgd_init(params, cfg.optimizer))
        if sarsa:
            action, _ = epsilon_greedy(key_action, net.apply(params, state.x), epsilon_at(0, hp))
            state = state._replace(action=action.astype(jnp.int32))
        return state

    def update(key, s: StreamState, env_params, hp: StreamQHParams):
        key_policy, key_env, key_next = jax.random.split(key, 3)
        epsilon = epsilon_at(s.step, hp)
        # One forward pass gives Q(s, .) and, pulled back along the taken action, grad Q(s, a).
        q, pull_back = jax.vjp(lambda p: net.apply(p, s.x), s.params)  # [A]
        if sarsa:
            action, nongreedy = s.action, q[s.action] < jnp.max(q)
        else:
            action, nongreedy = epsilon_greedy(key_policy, q, epsilon)
        out = stream_env_step(cfg, env, s, action, key_env, env_params, hp.gamma)
        if sarsa:
            # Q at the final observation (the target) and at the reset one (the next action after an episode's end),
            # in one pass.
            q_final, q_reset = net.apply(s.params, jnp.stack([out.x_final, out.state.x]))
            next_epsilon = epsilon_at(s.step + 1, hp)
            action_final, _ = epsilon_greedy(key_next, q_final, next_epsilon)
            next_q = q_final[action_final]
            action_reset, _ = epsilon_greedy(key_next, q_reset, next_epsilon)
            out = out._replace(state=out.state._replace(
                action=jnp.where(out.done, action_reset, action_final).astype(jnp.int32)))
            reset = out.done
        else:
            next_q = jnp.max(net.apply(s.params, out.x_final))
            reset = out.done | nongreedy
        delta = out.reward + hp.gamma * out.not_terminated * next_q - q[action]
        (grads,) = pull_back(jax.nn.one_hot(action, q.shape[-1], dtype=q.dtype))
        params, opt, step_size = trace_step(s.params, s.opt, grads, delta, reset, hp.lr, hp.gamma, hp.lamda, hp.kappa,
                                            cfg.optimizer)
        state = out.state._replace(params=params, opt=opt)
        return state, {"train_return": state.last_return, "td_error": jnp.abs(delta), "step_size": step_size,
                       "epsilon": epsilon, "nongreedy": nongreedy.astype(jnp.float32),
                       "trace_reset": reset.astype(jnp.float32)}

    def act(params, x, key, deterministic=True):
        del key, deterministic
        return jnp.argmax(net.apply(params, x), axis=-1)

    evaluate = make_stream_evaluate(cfg, env, num_eval_episodes, lambda params, x: act(params, x, None))

    return stream_agent(cfg, init, update, evaluate, act, total_timesteps, env)


@dataclasses.dataclass(frozen=True)
class StreamACConfig(StreamOptions):
    """Stream AC(lambda) options (the reference's defaults; ``lr`` steps both networks). Traced ones can be swept."""

    hidden_sizes: tuple = option((128, 128), "hidden layer sizes of the policy and the value network")
    kappa_policy: float = option(3.0, "ObGD's overshooting bound of the policy", traced=True, positive=True)
    kappa_value: float = option(2.0, "ObGD's overshooting bound of the value", traced=True, positive=True)
    entropy_coef: float = option(0.01, "entropy bonus, signed by the TD error", traced=True, minimum=0.0)


class StreamACHParams(NamedTuple):
    lr: jax.Array
    kappa_policy: jax.Array
    kappa_value: jax.Array
    gamma: jax.Array
    lamda: jax.Array
    entropy_coef: jax.Array


class ACParams(NamedTuple):
    policy: Any
    value: Any


def stream_ac_hparams(cfg: StreamACConfig) -> StreamACHParams:
    return StreamACHParams(*(jnp.float32(getattr(cfg, f)) for f in StreamACHParams._fields))


def make_stream_ac(cfg: StreamACConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16,
                   deterministic_eval: bool = True) -> Agent:
    """Stream AC(lambda) on a single ``env`` (discrete or bounded continuous actions): one learning step per
    transition."""
    problem = validate_stream_ac(cfg, env, total_timesteps)
    if problem:
        raise ValueError(problem)
    space = env.action_space(env.default_params)
    discrete = isinstance(space, Discrete)
    action_dim = space.n if discrete else int(space.shape[0])
    obs_dim = env.observation_space(env.default_params).shape[0]
    policy_net = stream_network(cfg, env, action_dim if discrete else 2 * action_dim)
    value_net = stream_network(cfg, env, 1)

    def distribution_of(out):
        if discrete:
            return Categorical(out)
        mu, pre_std = jnp.split(out, 2, axis=-1)
        return DiagGaussian(mu, jnp.log(jax.nn.softplus(pre_std)))

    def init(key, hp: StreamACHParams) -> StreamState:
        key_policy, key_value, key_env = jax.random.split(key, 3)
        params = ACParams(policy_net.init(key_policy, jnp.zeros((obs_dim,))), value_net.init(key_value, jnp.zeros((obs_dim,))))
        opt = ACParams(obgd_init(params.policy, cfg.optimizer), obgd_init(params.value, cfg.optimizer))
        return init_stream(cfg, env, key_env, params, opt)

    def update(key, s: StreamState, env_params, hp: StreamACHParams):
        key_action, key_env = jax.random.split(key)
        # One policy pass gives the distribution to sample from and, pulled back, the gradient of the objective;
        # one value pass over [x, x_final] gives v(x), its gradient and the bootstrap v(x_final).
        policy_out, policy_pull_back = jax.vjp(lambda p: policy_net.apply(p, s.x), s.params.policy)
        action = distribution_of(policy_out).sample(key_action)
        env_action = action if discrete else jnp.clip(action, -1.0, 1.0)
        out = stream_env_step(cfg, env, s, env_action, key_env, env_params, hp.gamma)
        values, value_pull_back = jax.vjp(lambda p: value_net.apply(p, jnp.stack([s.x, out.x_final]))[:, 0],
                                          s.params.value)
        (value_grads,) = value_pull_back(jnp.asarray([1.0, 0.0], values.dtype))
        delta = out.reward + hp.gamma * out.not_terminated * values[1] - values[0]

        def policy_objective(policy_out):
            dist = distribution_of(policy_out)
            return dist.log_prob(action) + hp.entropy_coef * jnp.sign(delta) * dist.entropy()

        (policy_grads,) = policy_pull_back(jax.grad(policy_objective)(policy_out))
        policy, policy_opt, policy_step = trace_step(s.params.policy, s.opt.policy, policy_grads, delta, out.done, hp.lr,
                                                     hp.gamma, hp.lamda, hp.kappa_policy, cfg.optimizer)
        value, value_opt, value_step = trace_step(s.params.value, s.opt.value, value_grads, delta, out.done, hp.lr,
                                                  hp.gamma, hp.lamda, hp.kappa_value, cfg.optimizer)
        state = out.state._replace(params=ACParams(policy, value), opt=ACParams(policy_opt, value_opt))
        return state, {"train_return": state.last_return, "td_error": jnp.abs(delta), "policy_step_size": policy_step,
                       "value_step_size": value_step}

    def act(params, x, key, deterministic=True):
        dist = distribution_of(policy_net.apply(params.policy, x))
        action = dist.mode() if deterministic else dist.sample(key)
        return action if discrete else jnp.clip(action, -1.0, 1.0)

    evaluate = make_stream_evaluate(cfg, env, num_eval_episodes,
                                    lambda params, x: act(params, x, None, True))
    return stream_agent(cfg, init, update, evaluate, act, total_timesteps, env)
