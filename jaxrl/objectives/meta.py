"""Meta-training a policy objective by evolution: a generation is one compiled program.

Following LPO (Lu et al. 2022, "Discovered Policy Optimisation") and TA-LPO
(Jackson et al. 2024), the fitness of a candidate objective is the final
evaluation return of a complete inner PPO run trained with it. One generation
asks OpenAI-ES for a population of objective parameters, runs
``population x seeds_per_member`` whole PPO trainings vmapped in one program
(:func:`jaxrl.training.loop.make_train`, the same loop as ``train.py``), and
tells the strategy the mean return per member.

The meta-search is an :class:`~jaxrl.agents.base.Agent` whose ``update`` is one
generation and whose ``evaluate`` trains fresh inner runs with the current
search mean, so the shared chunked runner (checkpoints, bit-exact resume,
progress) drives it exactly as it drives training and evolution. Its hparams are
the outer search's step sizes, an :class:`~jaxrl.evolution.strategies.EvolutionHParams`
(``evolution_hparams(cfg)``), as for policy search.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import flatten_util

from jaxrl.agents.base import Agent
from jaxrl.config import option
from jaxrl.evolution.strategies import FITNESS_SHAPINGS, EvolutionHParams, make_strategy
from jaxrl.training.loop import make_train

META_STRATEGIES = ("openai_es", "snes")


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Options of the outer (meta) search: ``sigma`` and ``lr`` are traced (:class:`EvolutionHParams`), the rest static."""

    strategy: str = option("openai_es", "outer search strategy (openai_es: antithetic, Adam on the mean)", choices=META_STRATEGIES)
    population: int = option(64, "candidate objectives per generation (even: antithetic pairs)", minimum=2)
    seeds_per_member: int = option(2, "inner PPO runs per candidate; fitness is their mean final return", minimum=1)
    sigma: float = option(0.03, "ES perturbation std of the objective parameters", traced=True, positive=True)
    lr: float = option(0.01, "Adam step size of the ES mean", traced=True, positive=True)
    fitness_shaping: str = option("auto", "openai_es fitness shaping (auto: centred ranks)", choices=FITNESS_SHAPINGS)


class MetaState(NamedTuple):
    """One meta-search (one outer seed).

    Attributes:
        strategy: the strategy's state.
        params: objective parameters of the current search mean (what evaluation trains with).
    """

    strategy: Any
    params: Any


def draw_horizon(key, horizon_range: tuple[int, int] | None) -> jax.Array:
    """An inner run's training horizon in updates, ``[]`` float32: log-uniform over ``horizon_range``
    (inclusive, rounded), or -1 (the inner agent's own ``num_updates``) when it is None."""
    if horizon_range is None:
        return jnp.asarray(-1.0, jnp.float32)
    low, high = (jnp.log(float(h)) for h in horizon_range)
    return jnp.round(jnp.exp(jax.random.uniform(key, (), minval=low, maxval=high))).astype(jnp.float32)


def make_inner_fitness(inner_agent: Agent, env_params, base_hparams, horizon_range: tuple[int, int] | None = None) -> Callable:
    """``run(key, objective_params) -> scalar``: the mean final evaluation return of one
    complete inner training run with ``objective_params`` substituted into ``base_hparams``.

    With ``horizon_range`` (updates; the longest is ``inner_agent.num_updates``) each run trains
    for a horizon drawn from its key (:func:`draw_horizon`), and its objective sees that horizon.
    """
    train = make_train(inner_agent, env_params)

    def run(key, objective_params):
        hp = base_hparams._replace(objective_params=objective_params)
        if horizon_range is None:  # one horizon: the key stream of fixed-horizon meta-training, unchanged
            key_train, key_eval = jax.random.split(key)
        else:
            key_train, key_eval, key_horizon = jax.random.split(key, 3)
            hp = hp._replace(horizon=draw_horizon(key_horizon, horizon_range))
        runner_state, _ = train(key_train, hp)
        return inner_agent.evaluate(key_eval, runner_state.agent_state, env_params, hp).mean()

    return run


def population_fitness(run: Callable, key, population_params, seeds_per_member: int):
    """``[P, S]`` final returns of ``P`` candidates x ``S`` inner seeds.

    Every candidate of a generation is trained on the same ``S`` seeds (common random
    numbers, horizons included), so fitness differences come from the objectives, not the seeds.
    """
    keys = jax.random.split(key, seeds_per_member)
    return jax.vmap(lambda p: jax.vmap(lambda k: run(k, p))(keys))(population_params)


def make_meta_training(cfg: MetaConfig, inner_agent: Agent, env_params, base_hparams, initial_params,
                       generations: int, eval_seeds: int = 8, fitness_transform: Callable = lambda r: r,
                       horizon_range: tuple[int, int] | None = None) -> Agent:
    """The meta-search as an :class:`Agent`: ``update`` is one generation; ``hparams`` are an
    :class:`EvolutionHParams` (the outer search's step sizes; ``evolution_hparams(cfg)``).

    Args:
        inner_agent: PPO built with the objective being meta-learned (``make_ppo``).
        base_hparams: the inner run's hyperparameters; ``objective_params`` is replaced.
        initial_params: starting objective parameters (the ES mean at generation 0).
        generations: generations of a full run.
        eval_seeds: inner runs trained with the search mean by ``evaluate`` (after each chunk).
        fitness_transform: ``returns -> fitness`` applied to every inner return
            (e.g. normalisation by random and PPO reference returns); maximised.
        horizon_range: ``(shortest, longest)`` inner training horizons in updates, drawn
            log-uniformly per inner seed (TA-LPO's distribution of horizons); None: every run
            trains ``inner_agent.num_updates``. Evaluation draws its horizons the same way.

    Metrics of an update: ``population_returns [P]`` (fitness per candidate),
    ``return_mean``, ``return_max``, ``novelty_mean`` (always 0; the evolution
    driver's layout).
    """
    flat_init, unravel = flatten_util.ravel_pytree(initial_params)
    strategy = make_strategy(cfg.strategy, flat_init.shape[0], cfg.population, cfg.fitness_shaping)
    run = make_inner_fitness(inner_agent, env_params, base_hparams, horizon_range)

    def init(key, hp: EvolutionHParams) -> MetaState:
        s = strategy.init(key, flat_init, hp)
        return MetaState(s, unravel(strategy.solution(s)))

    def update(key, state: MetaState, env_params_, hp: EvolutionHParams):
        del env_params_
        key_ask, key_eval, key_tell = jax.random.split(key, 3)
        population, s = strategy.ask(key_ask, state.strategy, hp)  # [P, D]
        returns = population_fitness(run, key_eval, jax.vmap(unravel)(population), cfg.seeds_per_member)  # [P, S]
        fitness = fitness_transform(returns).mean(axis=1)  # [P]
        s = strategy.tell(key_tell, population, fitness, s, hp)
        metrics = {"population_returns": fitness, "return_mean": fitness.mean(), "return_max": fitness.max(),
                   "novelty_mean": jnp.zeros(())}
        return MetaState(s, unravel(strategy.solution(s))), metrics

    def evaluate(key, state: MetaState, env_params_, hparams):
        """``[eval_seeds]`` fitness of fresh inner runs trained with the search mean."""
        del env_params_, hparams
        keys = jax.random.split(key, eval_seeds)
        return fitness_transform(jax.vmap(lambda k: run(k, state.params))(keys))

    steps = cfg.population * cfg.seeds_per_member * inner_agent.num_updates * inner_agent.env_steps_per_update
    return Agent(init, update, evaluate, None, int(generations), int(steps), inner_agent.env,
                 policy_of=lambda state: (state.params, ()))  # the objective evaluation trains with; no env state
