"""One generation of direct policy search as an ``Agent`` update, so evolution runs on the training loop.

``make_evolution`` returns an :class:`~jaxrl.agents.base.Agent` whose
``update`` is one generation: ask the strategy for a population, evaluate it
by rollouts, optionally score novelty, and tell the strategy. The shared
:func:`jaxrl.training.loop.make_runner` then scans generations in compiled
chunks (state donated, the last chunk's surplus generations skipped), the
shared evaluation plays the current solution, and checkpoints, resume and
saved policies work as for training. The agent's hparams are an
:class:`~jaxrl.evolution.strategies.EvolutionHParams` (``sigma``, ``lr``), so the
step sizes can be swept as a ``vmap`` of one compiled program.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import flatten_util

from jaxrl.agents.base import Agent
from jaxrl.config import option
from jaxrl.envs import Box, Discrete, RunningMeanStd
from jaxrl.envs.wrappers import NormalizeState
from jaxrl.evaluation import make_evaluate
from jaxrl.evolution.fitness import final_observation, make_population_fitness, update_obs_stats
from jaxrl.evolution.novelty import add_most_novel, archive_init, knn_novelty
from jaxrl.evolution.strategies import FITNESS_SHAPINGS, STRATEGIES, EvolutionHParams, make_strategy
from jaxrl.evolution.strategies import evolution_hparams  # noqa: F401  (the hparams of an EvolutionConfig, re-exported)
from jaxrl.networks import ACTIVATIONS, PolicyNetwork


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
    """Options of a direct policy search: ``sigma`` and ``lr`` are traced (:class:`EvolutionHParams`,
    sweepable), the rest static (they fix shapes or the program)."""

    strategy: str = option("openai_es", "search strategy", choices=STRATEGIES)
    population: int = option(256, "individuals per generation (even for openai_es: antithetic pairs)", minimum=2)
    episodes: int = option(4, "fitness episodes per individual (M); fitness is their mean return", minimum=1)
    episode_len: int = option(0, "steps in every fitness episode's scan (0: the environment's time limit)", minimum=0)
    hidden_sizes: tuple = option((16,), "policy MLP layer sizes (empty: linear policy)")
    activation: str = option("tanh", "policy activation", choices=tuple(ACTIVATIONS))
    sigma: float = option(0.1, "perturbation std (openai_es), initial std (snes, cma_es), mutation std (ga)", traced=True,
                          positive=True)
    lr: float = option(0.03, "Adam step size of the OpenAI-ES mean", traced=True, positive=True)
    fitness_shaping: str = option("auto", "openai_es fitness shaping (auto: centered_rank); snes, cma_es and ga rank by themselves",
                                  choices=FITNESS_SHAPINGS)
    num_parents: int = option(20, "GA truncation: the top T individuals are parents", minimum=1)
    normalize_obs: bool = option(False, "normalise observations with running statistics shared by the population")
    novelty: bool = option(False, "GA only: select by novelty (k-NN distance of final observations) instead of return")
    novelty_k: int = option(10, "neighbours in the novelty score", minimum=1)
    archive_size: int = option(1024, "novelty archive capacity (a ring buffer on device)", minimum=1)
    archive_add: int = option(4, "most novel individuals archived per generation", minimum=1)


class EvolutionState(NamedTuple):
    """State of one search (one seed).

    Attributes:
        strategy: the strategy's state.
        params: policy parameters of the current solution (the search mean for
            ES; for the GA the best individual of the latest generation, or the
            best ever under novelty search): what evaluation plays
            and ``load_policy`` returns.
        env_state: ``NormalizeState((), obs_stats)`` when observations are
            normalised (where jaxrl keeps a run's observation statistics), else ``()``.
        archive: novelty archive, or ``()``.
    """

    strategy: Any
    params: Any
    env_state: Any
    archive: Any


class EvolutionProblem(NamedTuple):
    """The static pieces of a search, for callers that drive generations themselves."""

    network: PolicyNetwork
    num_dims: int
    unravel: Callable
    strategy: Any
    fitness: Callable
    num_steps: int


def policy_network(env, cfg: EvolutionConfig) -> PolicyNetwork:
    space = env.action_space(env.default_params)
    if isinstance(space, Discrete):
        return PolicyNetwork(space.n, True, tuple(cfg.hidden_sizes), cfg.activation)
    if isinstance(space, Box):
        return PolicyNetwork(int(space.shape[0]), False, tuple(cfg.hidden_sizes), cfg.activation)
    raise ValueError(f"unsupported action space {space}")


def make_problem(cfg: EvolutionConfig, env, behaviour_fn: Callable = final_observation) -> EvolutionProblem:
    """Network, strategy and population fitness for ``cfg`` on ``env`` (nothing compiled)."""
    network = policy_network(env, cfg)
    obs_dim = env.observation_space(env.default_params).shape[0]

    def init_params(key):
        return network.init(key, jnp.zeros((obs_dim,), jnp.float32))

    template = jax.eval_shape(init_params, jax.random.PRNGKey(0))
    flat, unravel = flatten_util.ravel_pytree(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), template))
    num_dims = flat.shape[0]
    strategy = make_strategy(
        cfg.strategy, num_dims, cfg.population, cfg.fitness_shaping, cfg.num_parents,
        sample_solution=lambda k: flatten_util.ravel_pytree(init_params(k))[0],
        ga_solution="ever" if cfg.novelty else "generation",
    )
    num_steps = cfg.episode_len or env.max_episode_steps(env.default_params)

    def apply_action(params, obs):
        return network.apply(params, obs).mode()

    fitness = make_population_fitness(env, apply_action, cfg.episodes, num_steps, behaviour_fn)
    return EvolutionProblem(network, num_dims, unravel, strategy, fitness, num_steps)


def make_evolution(cfg: EvolutionConfig, env, generations: int, eval_episodes: int,
                   behaviour_fn: Callable = final_observation) -> Agent:
    """The search as an :class:`Agent`: ``update`` is one generation; ``hparams`` are an :class:`EvolutionHParams`
    (:func:`evolution_hparams` of ``cfg`` for its configured step sizes).

    Args:
        env: single env from ``jaxrl.envs.make``.
        generations: generations in a full run (the agent's ``num_updates``).
        eval_episodes: episodes of the evaluation after each chunk.
        behaviour_fn: ``final_obs [obs_dim] -> [B]`` for novelty search.

    Metrics of an update: ``population_returns [N]`` (the fitness of every
    individual), ``return_mean``, ``return_max``, ``novelty_mean``.
    """
    problem = make_problem(cfg, env, behaviour_fn)
    strategy, unravel = problem.strategy, problem.unravel
    obs_dim = env.observation_space(env.default_params).shape[0]
    behaviour_dim = jax.eval_shape(behaviour_fn, jax.ShapeDtypeStruct((obs_dim,), jnp.float32)).shape[0]

    def obs_stats_of(state):
        return state.env_state.obs_stats if cfg.normalize_obs else None

    def init(key, hp: EvolutionHParams) -> EvolutionState:
        key_params, key_strategy = jax.random.split(key)
        mean = flatten_util.ravel_pytree(problem.network.init(key_params, jnp.zeros((obs_dim,), jnp.float32)))[0]
        s = strategy.init(key_strategy, mean, hp)
        env_state = NormalizeState((), RunningMeanStd.create((obs_dim,))) if cfg.normalize_obs else ()
        archive = archive_init(cfg.archive_size, behaviour_dim) if cfg.novelty else ()
        return EvolutionState(s, unravel(strategy.solution(s)), env_state, archive)

    def update(key, state: EvolutionState, env_params, hp: EvolutionHParams):
        key_ask, key_eval, key_tell = jax.random.split(key, 3)
        population, s = strategy.ask(key_ask, state.strategy, hp)  # [N, D]
        rollouts = problem.fitness(key_eval, jax.vmap(unravel)(population), obs_stats_of(state), env_params)
        selection, archive, novelty_mean = None, state.archive, jnp.zeros(())
        if cfg.novelty:
            novelty = knn_novelty(rollouts.behaviour, state.archive, cfg.novelty_k)
            archive = add_most_novel(state.archive, rollouts.behaviour, novelty, cfg.archive_add)
            selection, novelty_mean = novelty, novelty.mean()
        s = strategy.tell(key_tell, population, rollouts.returns, s, hp, selection)
        env_state = state.env_state
        if cfg.normalize_obs:
            env_state = NormalizeState((), update_obs_stats(env_state.obs_stats, rollouts))
        metrics = {
            "population_returns": rollouts.returns,
            "return_mean": rollouts.returns.mean(),
            "return_max": rollouts.returns.max(),
            "novelty_mean": novelty_mean,
        }
        return EvolutionState(s, unravel(strategy.solution(s)), env_state, archive), metrics

    def act(params, obs, key, deterministic=True):
        del key, deterministic  # searched policies are deterministic: the network's mode
        return problem.network.apply(params, obs).mode()

    evaluate = make_evaluate(env, act, eval_episodes, True, cfg.normalize_obs)
    steps = cfg.population * cfg.episodes * problem.num_steps
    return Agent(init, update, evaluate, act, int(generations), steps, env)
