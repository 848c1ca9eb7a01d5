"""CartPole whose physical parameters are the level: generator, mutator, one level per env, curricula."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import envs
from jaxrl.curricula import CurriculumConfig, LevelScores, curriculum_hparams, make_curriculum
from jaxrl.envs.levels.classic import (
    CARTPOLE_RANGES,
    cartpole_held_out_levels,
    cartpole_level,
    generate_cartpole_level,
    mutate_cartpole_level,
)

KEY = jax.random.PRNGKey(0)


def in_ranges(levels):
    return all(((np.asarray(getattr(levels, n)) >= lo - 1e-6) & (np.asarray(getattr(levels, n)) <= hi + 1e-6)).all()
               for n, (lo, hi) in CARTPOLE_RANGES.items())


def test_generator_and_mutator_stay_in_range_with_consistent_derived_fields():
    levels = jax.jit(jax.vmap(generate_cartpole_level))(jax.random.split(KEY, 64))
    assert in_ranges(levels)
    np.testing.assert_allclose(levels.total_mass, levels.masscart + levels.masspole, rtol=1e-6)
    np.testing.assert_allclose(levels.polemass_length, levels.masspole * levels.length, rtol=1e-6)
    children = jax.jit(jax.vmap(lambda k, lv: mutate_cartpole_level(k, lv, num_edits=1)))(jax.random.split(KEY, 64), levels)
    assert in_ranges(children)
    changed = np.stack([np.asarray(getattr(children, n)) != np.asarray(getattr(levels, n)) for n in CARTPOLE_RANGES]).sum(0)
    assert changed.max() <= 1 and changed.mean() > 0.5
    np.testing.assert_allclose(children.total_mass, children.masscart + children.masspole, rtol=1e-6)


def test_each_env_plays_its_own_physics():
    env = envs.make("CartPole-v1")
    names, levels = cartpole_held_out_levels()
    vec = envs.make_vec_env(env, len(names), batched_params=True)

    @jax.jit
    def push(key):
        state, obs = vec.reset(key, levels)
        # The same start state everywhere, then the same pushes: only the physics differs.
        state = jax.tree.map(lambda x: jnp.broadcast_to(x[:1], x.shape), state)
        for _ in range(5):
            state, ts = vec.step(key, state, jnp.ones(len(names), jnp.int32), levels)
        return ts.obs

    obs = np.asarray(push(KEY))
    assert len({tuple(np.round(o, 6)) for o in obs}) == len(names)
    default = cartpole_level()
    assert np.isclose(float(default.gravity), 9.8) and int(env.max_episode_steps(env.default_params)) == 500


def test_curriculum_over_cartpole_levels():
    cfg = CurriculumConfig(method="accel", num_levels=4, capacity=8, min_fill=0.5, num_edits=1)
    curriculum = make_curriculum(cfg, generate_cartpole_level, lambda k, lv: mutate_cartpole_level(k, lv, cfg.num_edits))

    @jax.jit
    def cycles(key):
        def body(state, key):
            state, levels, info = curriculum.sample(key, state, curriculum_hparams(cfg))
            score = levels.masspole  # stand-in score
            return curriculum.update(state, levels, LevelScores(score, score), info), info.kind

        return jax.lax.scan(body, curriculum.init(key), jax.random.split(key, 20))

    state, kinds = cycles(KEY)
    assert np.asarray(state.buffer.filled).all() and in_ranges(state.buffer.levels)
    assert set(np.asarray(kinds).tolist()) == {0, 1, 2}
