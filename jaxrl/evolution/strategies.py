"""Evolution strategies behind one ask/tell interface that *maximises* return.

evosax (0.3) minimises fitness. jaxrl's callers only ever see returns, which
are maximised; :func:`evosax_fitness` is the single place where a return
becomes a fitness to minimise, and every strategy (the evosax ones and the
Deep-GA written here in evosax's shape) goes through it in :func:`make_strategy`.

Solutions are flat vectors ``[D]`` (the policy parameters raveled by the
caller); populations are ``[N, D]``.

Strategies:
    * ``openai_es``: OpenAI-ES (Salimans et al. 2017), antithetic sampling,
      Adam on the search-gradient estimate, fitness shaping as an option.
    * ``snes``: separable NES (Schaul et al. 2011; Wierstra et al. 2014).
    * ``cma_es``: CMA-ES (Hansen 2016's tutorial formulation, evosax).
    * ``ga``: Deep-GA (Such et al. 2017): truncation selection of the top
      ``T``, one elite carried unchanged, offspring = parent + sigma * N(0, I).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import evosax.algorithms as ea
import jax
import jax.numpy as jnp
import optax
from evosax.core.fitness_shaping import (
    centered_rank_fitness_shaping_fn,
    identity_fitness_shaping_fn,
    standardize_fitness_shaping_fn,
)

STRATEGIES = ("openai_es", "snes", "cma_es", "ga")
# Only OpenAI-ES takes a user fitness shaping: SNES and CMA-ES apply their own
# rank-based recombination weights and the GA selects by rank, so any monotone
# shaping leaves them unchanged.
FITNESS_SHAPINGS = ("auto", "centered_rank", "z_score", "none")
_SHAPING_FNS = {
    "centered_rank": centered_rank_fitness_shaping_fn,
    "z_score": standardize_fitness_shaping_fn,
    "none": identity_fitness_shaping_fn,
}


def evosax_fitness(returns: jax.Array) -> jax.Array:
    """The one adapter from returns (higher is better) to evosax fitness (lower is better).

    Args:
        returns: ``[N]`` mean episode returns (or any score to maximise).

    Returns:
        ``[N]`` fitness for evosax's ``tell``.
    """
    return -returns


def centered_ranks(scores: jax.Array) -> jax.Array:
    """Centred ranks in ``[-0.5, 0.5]`` (lowest score -0.5), ``[N] -> [N]``."""
    return centered_rank_fitness_shaping_fn(None, scores, None, None)


def z_score(scores: jax.Array) -> jax.Array:
    """``(x - mean) / std`` over the population, ``[N] -> [N]``."""
    return standardize_fitness_shaping_fn(None, scores, None, None)


class Strategy(NamedTuple):
    """A search strategy over flat solutions ``[D]``; all functions are pure.

    Attributes:
        init: ``(key, initial_solution [D]) -> state``.
        ask: ``(key, state) -> (population [N, D], state)``.
        tell: ``(key, population [N, D], returns [N], state, selection=None) -> state``;
            ``returns`` are maximised. ``selection [N]`` (maximised), when given,
            replaces the returns as the score the search follows (novelty search);
            the GA still keeps its best individual by return.
        solution: ``state -> [D]``, the strategy's current answer: the search
            distribution's mean for ES, the best individual found so far for the GA.
        population_size: ``N``.
    """

    init: Callable
    ask: Callable
    tell: Callable
    solution: Callable
    population_size: int


# ---------------------------------------------------------------------------- Deep-GA


class DeepGAState(NamedTuple):
    """Deep-GA state (evosax's convention: ``fitness`` is minimised).

    Attributes:
        population: ``[N, D]`` the last evaluated generation.
        fitness: ``[N]`` its fitness, the selection score (``+inf`` before the first ``tell``).
        objective: ``[N]`` its task objective (equal to ``fitness`` except under novelty search).
        best_solution: ``[D]`` lowest-objective individual seen; best_fitness: its objective.
        generation: generations told so far.
    """

    population: jax.Array
    fitness: jax.Array
    objective: jax.Array
    best_solution: jax.Array
    best_fitness: jax.Array
    generation: jax.Array


def deep_ga_init(key, initial_population: jax.Array) -> DeepGAState:
    """``initial_population [N, D]`` is returned unchanged by the first ``ask``."""
    del key
    n = initial_population.shape[0]
    return DeepGAState(initial_population, jnp.full((n,), jnp.inf), jnp.full((n,), jnp.inf), initial_population[0],
                       jnp.asarray(jnp.inf), jnp.zeros((), jnp.int32))


def deep_ga_ask(key, state: DeepGAState, num_parents: int, sigma) -> jax.Array:
    """Next generation ``[N, D]``: the elite unchanged, then mutated copies of the top ``num_parents``.

    Before the first ``tell`` the initial population is returned as is.
    """
    n = state.population.shape[0]
    order = jnp.argsort(state.fitness)  # ascending: best first (minimisation)
    parents = state.population[order[:num_parents]]  # [T, D]
    key_pick, key_noise = jax.random.split(key)
    picks = jax.random.randint(key_pick, (n,), 0, num_parents)
    offspring = parents[picks] + sigma * jax.random.normal(key_noise, state.population.shape)
    nxt = offspring.at[0].set(parents[0])  # elitism: the best individual survives unmutated
    return jnp.where(state.generation > 0, nxt, state.population)


def deep_ga_tell(population: jax.Array, fitness: jax.Array, objective: jax.Array, state: DeepGAState) -> DeepGAState:
    """Stores the evaluated generation and the best individual so far (both minimised).

    Args:
        population: ``[N, D]``.
        fitness: ``[N]`` the selection score of the next ``ask`` (truncation by it).
        objective: ``[N]`` the task objective the best individual is kept by
            (equal to ``fitness`` except under novelty search).
    """
    i = jnp.argmin(objective)
    better = objective[i] < state.best_fitness
    return DeepGAState(
        population,
        fitness,
        objective,
        jnp.where(better, population[i], state.best_solution),
        jnp.where(better, objective[i], state.best_fitness),
        state.generation + 1,
    )


# ---------------------------------------------------------------------------- factory


def make_strategy(
    name: str,
    num_dims: int,
    population_size: int,
    sigma: float,
    learning_rate: float = 0.01,
    fitness_shaping: str = "auto",
    num_parents: int = 20,
    sample_solution: Callable | None = None,
    ga_solution: str = "generation",
) -> Strategy:
    """Builds strategy ``name`` over ``[num_dims]`` solutions.

    Args:
        name: one of :data:`STRATEGIES`.
        sigma: perturbation std (OpenAI-ES), initial std (SNES, CMA-ES) or
            mutation std (GA).
        learning_rate: Adam step size of OpenAI-ES's mean.
        fitness_shaping: OpenAI-ES only: ``centered_rank`` (``auto``), ``z_score`` or ``none``.
        num_parents: GA truncation size ``T``.
        sample_solution: GA only: ``key -> [D]`` draws one initial individual
            (e.g. a fresh network initialisation); by default the initial
            solution plus ``sigma`` noise.
        ga_solution: GA only: what ``solution`` returns: ``generation``, the
            best individual of the latest generation (its fitness estimate is
            fresh, and under elitism a lasting champion keeps being re-tested),
            or ``ever``, the best individual ever evaluated (right for
            deterministic tasks and for novelty search, whose population does
            not follow the return; on noisy tasks it favours a lucky estimate).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if fitness_shaping not in FITNESS_SHAPINGS:
        raise ValueError(f"unknown fitness shaping {fitness_shaping!r}; choose from {', '.join(FITNESS_SHAPINGS)}")
    if name == "ga":
        if ga_solution not in ("generation", "ever"):
            raise ValueError(f"unknown ga_solution {ga_solution!r}; choose from generation, ever")
        return _make_deep_ga(num_dims, population_size, sigma, num_parents, sample_solution, ga_solution)
    dummy = jnp.zeros((num_dims,), jnp.float32)
    if name == "openai_es":
        shaping = _SHAPING_FNS["centered_rank" if fitness_shaping == "auto" else fitness_shaping]
        es = ea.Open_ES(population_size, dummy, use_antithetic_sampling=True, optimizer=optax.adam(learning_rate),
                        std_schedule=optax.constant_schedule(sigma), fitness_shaping_fn=shaping)
        params = es.default_params
    elif name == "snes":
        es = ea.SNES(population_size, dummy)
        params = es.default_params.replace(std_init=jnp.asarray(sigma, jnp.float32))
    else:
        es = ea.CMA_ES(population_size, dummy)
        params = es.default_params.replace(std_init=jnp.asarray(sigma, jnp.float32))

    def init(key, initial_solution):
        return es.init(key, initial_solution, params)

    def ask(key, state):
        return es.ask(key, state, params)

    def tell(key, population, returns, state, selection=None):
        scores = returns if selection is None else selection
        state, _ = es.tell(key, population, evosax_fitness(scores), state, params)
        return state

    def solution(state):
        return state.mean

    return Strategy(init, ask, tell, solution, population_size)


def _make_deep_ga(num_dims, population_size, sigma, num_parents, sample_solution, ga_solution) -> Strategy:
    def init(key, initial_solution):
        keys = jax.random.split(key, population_size)
        if sample_solution is not None:
            population = jax.vmap(sample_solution)(keys)
        else:
            population = initial_solution + sigma * jax.vmap(lambda k: jax.random.normal(k, (num_dims,)))(keys)
        return deep_ga_init(key, population)

    def ask(key, state):
        return deep_ga_ask(key, state, num_parents, sigma), state

    def tell(key, population, returns, state, selection=None):
        del key
        scores = returns if selection is None else selection
        return deep_ga_tell(population, evosax_fitness(scores), evosax_fitness(returns), state)

    def solution(state):
        if ga_solution == "ever":
            return state.best_solution
        # Before the first tell every objective is +inf and argmin picks individual 0.
        return state.population[jnp.argmin(state.objective)]

    return Strategy(init, ask, tell, solution, population_size)

