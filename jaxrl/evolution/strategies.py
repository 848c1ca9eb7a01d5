"""Evolution strategies behind one ask/tell interface that *maximises* return.

evosax (0.3) minimises fitness. jaxrl's callers only ever see returns, which
are maximised; :func:`evosax_fitness` is the single place where a return
becomes a fitness to minimise, and every strategy (the evosax ones and the
Deep-GA written here in evosax's shape) goes through it in :func:`make_strategy`.

Solutions are flat vectors ``[D]`` (the policy parameters raveled by the
caller); populations are ``[N, D]``.

The step sizes are traced: every ``init`` / ``ask`` / ``tell`` takes an
:class:`EvolutionHParams` (``sigma``, ``lr``: float32 scalars), so they can be
swept as a ``vmap`` of one compiled program. For the evosax strategies they
travel in evosax's own ``params`` (which evosax passes to every call); nothing
is closed over, and the strategy states are those of evosax.

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
from evosax.algorithms.distribution_based import open_es
from evosax.core.fitness_shaping import (
    centered_rank_fitness_shaping_fn,
    identity_fitness_shaping_fn,
    standardize_fitness_shaping_fn,
)
from flax import struct

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


class EvolutionHParams(NamedTuple):
    """Traced step sizes of a search: float32 scalars (``[M]`` when vmapped over members).

    Attributes:
        sigma: perturbation std (``openai_es``), initial std (``snes``, ``cma_es``: read by
            ``init`` only, the strategy adapts it afterwards) or mutation std (``ga``).
        lr: Adam step size of the OpenAI-ES mean (unused by the other strategies).
    """

    sigma: jax.Array
    lr: jax.Array


def evolution_hparams(cfg) -> EvolutionHParams:
    """``cfg.sigma`` and ``cfg.lr`` as float32 scalars (``cfg``: an ``EvolutionConfig`` or a ``MetaConfig``)."""
    return EvolutionHParams(jnp.asarray(cfg.sigma, jnp.float32), jnp.asarray(cfg.lr, jnp.float32))


class Strategy(NamedTuple):
    """A search strategy over flat solutions ``[D]``; all functions are pure. ``hp`` is an
    :class:`EvolutionHParams`.

    Attributes:
        init: ``(key, initial_solution [D], hp) -> state``.
        ask: ``(key, state, hp) -> (population [N, D], state)``.
        tell: ``(key, population [N, D], returns [N], state, hp, selection=None) -> state``;
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


# ---------------------------------------------------------------------------- OpenAI-ES


@struct.dataclass
class OpenESParams(open_es.Params):
    """evosax's OpenAI-ES params with the two step sizes, which evosax closes over (a std schedule and
    an optax optimiser built with a fixed learning rate), moved in so that they may be traced."""

    std: jax.Array
    learning_rate: jax.Array


class TracedOpenES(ea.Open_ES):
    """evosax's ``Open_ES`` with a constant std ``params.std`` and Adam with step size
    ``params.learning_rate``: the same state and the same updates as ``Open_ES(...,
    optimizer=optax.adam(learning_rate), std_schedule=optax.constant_schedule(std))``."""

    def __init__(self, population_size: int, solution, fitness_shaping_fn: Callable):
        # Adam's state does not depend on its step size: this optimiser only builds the initial state;
        # ``_tell`` steps with ``optax.adam(params.learning_rate)``.
        super().__init__(population_size, solution, use_antithetic_sampling=True, optimizer=optax.adam(1.0),
                         fitness_shaping_fn=fitness_shaping_fn)

    @property
    def _default_params(self) -> OpenESParams:  # evosax's Open_ES defaults: std 1, step size 1e-3
        return OpenESParams(std=jnp.asarray(1.0, jnp.float32), learning_rate=jnp.asarray(1e-3, jnp.float32))

    def _init(self, key, params: OpenESParams):
        return super()._init(key, params).replace(std=params.std)

    def _tell(self, key, population, fitness, state, params: OpenESParams):
        # Open_ES._tell with the step sizes read from params.
        grad = jnp.dot(fitness, (population - state.mean) / state.std) / (self.population_size * state.std)
        updates, opt_state = optax.adam(params.learning_rate).update(grad, state.opt_state, state.mean)
        return state.replace(mean=optax.apply_updates(state.mean, updates), std=params.std, opt_state=opt_state)


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
    fitness_shaping: str = "auto",
    num_parents: int = 20,
    sample_solution: Callable | None = None,
    ga_solution: str = "generation",
) -> Strategy:
    """Builds strategy ``name`` over ``[num_dims]`` solutions; its step sizes come with every call
    (:class:`EvolutionHParams`).

    Args:
        name: one of :data:`STRATEGIES`.
        fitness_shaping: OpenAI-ES only: ``centered_rank`` (``auto``), ``z_score`` or ``none``.
        num_parents: GA truncation size ``T``.
        sample_solution: GA only: ``key -> [D]`` draws one initial individual
            (e.g. a fresh network initialisation); by default the initial
            solution plus ``hp.sigma`` noise.
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
        return _make_deep_ga(num_dims, population_size, num_parents, sample_solution, ga_solution)
    dummy = jnp.zeros((num_dims,), jnp.float32)
    if name == "openai_es":
        shaping = _SHAPING_FNS["centered_rank" if fitness_shaping == "auto" else fitness_shaping]
        es = TracedOpenES(population_size, dummy, shaping)

        def params_of(hp):
            return OpenESParams(std=jnp.asarray(hp.sigma, jnp.float32), learning_rate=jnp.asarray(hp.lr, jnp.float32))
    else:
        es = ea.SNES(population_size, dummy) if name == "snes" else ea.CMA_ES(population_size, dummy)
        defaults = es.default_params  # computed once (recombination weights ...); std_init comes from hp

        def params_of(hp):
            return defaults.replace(std_init=jnp.asarray(hp.sigma, jnp.float32))

    def init(key, initial_solution, hp):
        return es.init(key, initial_solution, params_of(hp))

    def ask(key, state, hp):
        return es.ask(key, state, params_of(hp))

    def tell(key, population, returns, state, hp, selection=None):
        scores = returns if selection is None else selection
        state, _ = es.tell(key, population, evosax_fitness(scores), state, params_of(hp))
        return state

    def solution(state):
        return state.mean

    return Strategy(init, ask, tell, solution, population_size)


def _make_deep_ga(num_dims, population_size, num_parents, sample_solution, ga_solution) -> Strategy:
    def init(key, initial_solution, hp):
        keys = jax.random.split(key, population_size)
        if sample_solution is not None:
            population = jax.vmap(sample_solution)(keys)
        else:
            population = initial_solution + hp.sigma * jax.vmap(lambda k: jax.random.normal(k, (num_dims,)))(keys)
        return deep_ga_init(key, population)

    def ask(key, state, hp):
        return deep_ga_ask(key, state, num_parents, hp.sigma), state

    def tell(key, population, returns, state, hp, selection=None):
        del key, hp  # truncation selection needs neither
        scores = returns if selection is None else selection
        return deep_ga_tell(population, evosax_fitness(scores), evosax_fitness(returns), state)

    def solution(state):
        if ga_solution == "ever":
            return state.best_solution
        # Before the first tell every objective is +inf and argmin picks individual 0.
        return state.population[jnp.argmin(state.objective)]

    return Strategy(init, ask, tell, solution, population_size)

