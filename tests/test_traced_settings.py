"""Curriculum settings and evolution step sizes are traced leaves of the hyperparameter pytree: a vmap over
them equals separate runs, they change what the program does, and the configured defaults reproduce the
strategies as they were built with the step sizes closed over."""
import evosax.algorithms as ea
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

from jaxrl import envs
from jaxrl.curricula import NEW, REPLAY, CurriculumConfig, CurriculumHParams, LevelScores, curriculum_hparams, make_curriculum
from jaxrl.envs.levels import generate_level
from jaxrl.evolution import EvolutionConfig, EvolutionHParams, evolution_hparams, make_evolution, make_strategy
from jaxrl.evolution.search import make_problem
from jaxrl.evolution.strategies import deep_ga_ask
from jaxrl.training.loop import make_runner

KEY = jax.random.PRNGKey(0)


def stack(*trees):
    return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def member(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


# ---------------------------------------------------------------------------- curricula


def tiny_curriculum(method="plr", **overrides):
    cfg = CurriculumConfig(method=method, **{**dict(num_levels=4, capacity=8, num_edits=1), **overrides})
    return make_curriculum(cfg, lambda k: generate_level(k, 7, 7, num_walls=5))


def cycles(curriculum, steps: int):
    """``(key, hp) -> (state, (kind [T], indices [T, B], walls [T, B, 7, 7]))``: ``steps`` sample / update cycles
    with the mean wall count as a stand-in score."""

    def run(key, hp):
        def body(state, key):
            state, levels, info = curriculum.sample(key, state, hp)
            score = jnp.mean(levels.wall_map, axis=(1, 2)).astype(jnp.float32)
            state = curriculum.update(state, levels, LevelScores(score, score), info)
            return state, (info.kind, info.indices, levels.wall_map)

        return jax.lax.scan(body, curriculum.init(key), jax.random.split(key, steps))

    return run


def test_curriculum_hparams_are_the_traced_options():
    cfg = CurriculumConfig()
    hp = curriculum_hparams(cfg)
    assert set(CurriculumHParams._fields) == {"replay_prob", "temperature", "staleness_coef", "min_fill"}
    for name in CurriculumHParams._fields:
        leaf = getattr(hp, name)
        assert leaf.dtype == jnp.float32 and leaf.shape == () and float(leaf) == np.float32(getattr(cfg, name))


def test_vmapped_curriculum_over_two_settings_equals_each_alone():
    curriculum = tiny_curriculum("robust_plr")
    hps = [CurriculumHParams(*map(jnp.float32, v)) for v in ((0.5, 0.3, 0.3, 0.5), (0.9, 2.0, 0.0, 0.25))]
    run = cycles(curriculum, 10)
    both = jax.jit(jax.vmap(run, in_axes=(None, 0)))(KEY, stack(*hps))
    alone = [jax.jit(run)(KEY, hp) for hp in hps]
    for i, one in enumerate(alone):
        for a, b in zip(jax.tree.leaves(member(both, i)), jax.tree.leaves(one)):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(alone[0][1][0], alone[1][1][0])  # the settings change which batches are replayed


def test_replay_probability_zero_never_replays_and_one_always_replays_once_filled():
    curriculum = tiny_curriculum("plr", min_fill=0.5)
    default = curriculum_hparams(curriculum.config)
    hps = stack(default._replace(replay_prob=jnp.float32(0.0)), default._replace(replay_prob=jnp.float32(1.0)))
    state, (kind, _, _) = jax.jit(jax.vmap(cycles(curriculum, 12), in_axes=(None, 0)))(KEY, hps)
    kind = np.asarray(kind)  # [2, T]
    assert (kind[0] == NEW).all()
    # One batch of 4 new levels fills 8 slots to 0.5 = min_fill: every later batch is replayed.
    assert kind[1, 0] == NEW and (kind[1, 1:] == REPLAY).all()
    assert np.asarray(state.buffer.filled)[0].all() and np.asarray(state.buffer.filled)[1].sum() == 4


def test_minimum_fill_gates_replay():
    curriculum = tiny_curriculum("plr")
    default = curriculum_hparams(curriculum.config)._replace(replay_prob=jnp.float32(1.0))
    hps = stack(default._replace(min_fill=jnp.float32(1.0)), default._replace(min_fill=jnp.float32(0.25)))
    _, (kind, _, _) = jax.jit(jax.vmap(cycles(curriculum, 4), in_axes=(None, 0)))(KEY, hps)
    # A batch of 4 new levels fills 8 slots by 0.5: min_fill 1 needs two, min_fill 0.25 one.
    np.testing.assert_array_equal(np.asarray(kind), [[NEW, NEW, REPLAY, REPLAY], [NEW, REPLAY, REPLAY, REPLAY]])


# ---------------------------------------------------------------------------- evolution

SMALL = dict(population=8, episodes=1, episode_len=10, hidden_sizes=(4,), num_parents=3)


def tiny_search(strategy, **overrides):
    cfg = EvolutionConfig(strategy=strategy, **{**SMALL, **overrides})
    env = envs.make("CartPole-v1")
    agent = make_evolution(cfg, env, generations=3, eval_episodes=1)
    return cfg, env, make_runner(agent, env.default_params, 1, evaluate_each_chunk=False)


@pytest.mark.parametrize("strategy", ["openai_es", "ga"])
def test_vmapped_evolution_over_two_sigmas_equals_each_alone(strategy):
    cfg, _, runner = tiny_search(strategy)
    hps = [evolution_hparams(cfg)._replace(sigma=jnp.float32(s)) for s in (0.05, 0.5)]

    def run(key, hp):
        return runner.run_chunk(runner.init(key, hp), hp, 0)

    both = jax.jit(jax.vmap(run, in_axes=(None, 0)))(KEY, stack(*hps))
    for i, hp in enumerate(hps):
        one = jax.jit(run)(KEY, hp)
        for a, b in zip(jax.tree.leaves(member(both, i)), jax.tree.leaves(one)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(both[1]["population_returns"][0], both[1]["population_returns"][1])


@pytest.mark.parametrize("strategy", ["openai_es", "snes", "cma_es", "ga"])
def test_larger_sigma_spreads_the_population_further(strategy):
    cfg = EvolutionConfig(strategy=strategy, **SMALL)
    problem = make_problem(cfg, envs.make("CartPole-v1"))
    strategy_ = problem.strategy
    mean = jnp.zeros(problem.num_dims)

    def spread(hp):
        state = strategy_.init(KEY, mean, hp)
        if cfg.strategy == "ga":  # one generation of identical parents: the offspring's spread is the mutation's
            state = strategy_.tell(KEY, jnp.zeros((cfg.population, problem.num_dims)), jnp.zeros(cfg.population), state, hp)
        population, _ = strategy_.ask(jax.random.PRNGKey(1), state, hp)
        return jnp.std(population, axis=0).mean()

    hps = stack(*[EvolutionHParams(jnp.float32(s), jnp.float32(cfg.lr)) for s in (0.05, 0.5)])
    small, large = np.asarray(jax.jit(jax.vmap(spread))(hps))
    assert large > 5 * small > 0, (small, large)


def _old_evosax(name, population, num_dims, sigma, lr):
    """The strategy as it was built with sigma and lr closed over (before they were traced)."""
    dummy = jnp.zeros((num_dims,), jnp.float32)
    if name == "openai_es":
        es = ea.Open_ES(population, dummy, use_antithetic_sampling=True, optimizer=optax.adam(lr),
                        std_schedule=optax.constant_schedule(sigma), fitness_shaping_fn=centered_rank_fitness_shaping_fn)
        return es, es.default_params
    es = ea.SNES(population, dummy) if name == "snes" else ea.CMA_ES(population, dummy)
    return es, es.default_params.replace(std_init=jnp.asarray(sigma, jnp.float32))


def _quadratic_returns(population, target):
    return -jnp.sum((population - target) ** 2, axis=-1)


@pytest.mark.parametrize("name", ["openai_es", "snes", "cma_es"])
def test_default_hparams_reproduce_the_closed_over_evosax_strategy(name):
    cfg = EvolutionConfig(strategy=name)
    hp = evolution_hparams(cfg)
    num_dims, population, generations = 6, 16, 5
    target = jnp.linspace(-1.0, 1.0, num_dims)
    new = make_strategy(name, num_dims, population)
    old, old_params = _old_evosax(name, population, num_dims, cfg.sigma, cfg.lr)

    # As in the drivers, the state comes from a separately compiled init and hp is an argument of the
    # compiled generations. (Compiled with init in one program, the old strategy's std is a constant XLA
    # may propagate into the loop and fold, which moves the last bit of a few population entries.)
    @jax.jit
    def run_new(state, key, hp):
        def body(state, key):
            k_ask, k_tell = jax.random.split(key)
            pop, state = new.ask(k_ask, state, hp)
            return new.tell(k_tell, pop, _quadratic_returns(pop, target), state, hp), pop

        return jax.lax.scan(body, state, jax.random.split(key, generations))

    @jax.jit
    def run_old(state, key):
        def body(state, key):
            k_ask, k_tell = jax.random.split(key)
            pop, state = old.ask(k_ask, state, old_params)
            state, _ = old.tell(k_tell, pop, -_quadratic_returns(pop, target), state, old_params)
            return state, pop

        return jax.lax.scan(body, state, jax.random.split(key, generations))

    new_start = jax.jit(new.init)(KEY, jnp.zeros(num_dims), hp)
    old_start = jax.jit(lambda key: old.init(key, jnp.zeros(num_dims), old_params))(KEY)
    key = jax.random.PRNGKey(1)
    (new_state, new_pops), (old_state, old_pops) = run_new(new_start, key, hp), run_old(old_start, key)
    np.testing.assert_array_equal(new_pops, old_pops)
    np.testing.assert_array_equal(new_state.mean, old_state.mean)
    assert jax.tree.structure(new_state) == jax.tree.structure(old_state)  # checkpoints keep their layout
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(old_state)):
        np.testing.assert_array_equal(a, b)


def test_default_hparams_reproduce_the_closed_over_ga_mutation():
    cfg = EvolutionConfig(strategy="ga", population=8, num_parents=3)
    strategy = make_strategy("ga", 5, cfg.population, num_parents=cfg.num_parents)
    hp = evolution_hparams(cfg)
    state = strategy.init(KEY, jnp.zeros(5), hp)
    population, state = strategy.ask(KEY, state, hp)
    state = strategy.tell(KEY, population, jnp.arange(8.0), state, hp)
    new, _ = jax.jit(strategy.ask)(jax.random.PRNGKey(3), state, hp)
    old = jax.jit(lambda k, s: deep_ga_ask(k, s, cfg.num_parents, cfg.sigma))(jax.random.PRNGKey(3), state)
    np.testing.assert_array_equal(new, old)
    # Without a sample_solution the initial population is sigma-noise around the initial solution.
    initial = strategy.init(KEY, jnp.zeros(5), hp).population
    noise = jax.vmap(lambda k: jax.random.normal(k, (5,)))(jax.random.split(KEY, cfg.population))
    np.testing.assert_array_equal(initial, cfg.sigma * noise)
