"""PAIRED: the adversary's maze editor, the regret estimate, the adversary's terminal reward,
and the three-agent iteration compiling and updating all three."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.agents.ppo import PPOConfig, PPORollout
from jaxrl.envs import FlattenObservation
from jaxrl.envs.levels.editor import MazeEditor, level_from_editor_obs
from jaxrl.envs.levels.maze import Maze, level_from_strings
from jaxrl.curricula import CurriculumConfig
from jaxrl.curricula.paired import make_paired, paired_regret, with_terminal_reward
from jaxrl.curricula.ued import ued_hparams
from jaxrl.types import Transition

KEY = jax.random.PRNGKey(0)


def test_editor_builds_the_level_it_was_told():
    editor = MazeEditor(4, 4, num_walls=3)
    state, _ = editor.reset(KEY, None)
    # goal at cell 5 = (1, 1); start also at 5 -> moved to 6 = (2, 1); walls: 5 (the goal, ignored), 12, 12.
    for i, cell in enumerate([5, 5, 5, 12, 12]):
        state, ts = editor.step(KEY, state, jnp.int32(cell), None)
        assert bool(ts.terminated) == (i == 4)
    level = level_from_editor_obs(ts.final_obs, 4, 4)
    expected = np.zeros((4, 4), bool)
    expected[3, 0] = True
    np.testing.assert_array_equal(level.wall_map, expected)
    assert tuple(np.asarray(level.goal_pos)) == (1, 1) and tuple(np.asarray(level.agent_pos)) == (2, 1)
    assert int(state.time) == 0 and not np.asarray(state.wall_map).any()  # auto-reset to an empty grid


def test_regret_is_antagonist_best_minus_protagonist_mean():
    done = jnp.array([[True, False], [False, False], [True, False]])
    antagonist = jnp.array([[0.5, 0.0], [0.0, 0.0], [0.9, 0.0]])
    protagonist = jnp.array([[0.2, 0.0], [0.0, 0.0], [0.6, 0.0]])
    # level 0: 0.9 - (0.2 + 0.6) / 2; level 1: nobody finished -> 0 - 0.
    np.testing.assert_allclose(paired_regret(antagonist, done, protagonist, done), [0.5, 0.0], atol=1e-6)


def test_adversary_gets_the_regret_on_its_last_step():
    values = jnp.array([[0.1, 0.0], [0.2, 0.5], [0.3, 0.4]])  # [T=3, B=2]
    terminated = jnp.array([[False, False], [False, False], [True, True]])
    traj = Transition(obs=None, action=None, reward=None, terminated=terminated, truncated=jnp.zeros_like(terminated),
                      final_obs=None, log_prob=None, info={})
    rollout = PPORollout(state=None, batch={"values": values}, traj=traj)
    out = with_terminal_reward(rollout, jnp.array([1.0, -1.0]), gamma=1.0, gae_lambda=1.0)
    # gamma = lambda = 1: every step's advantage is the final reward minus its value.
    np.testing.assert_allclose(out.batch["advantages"], jnp.array([[1.0], [-1.0]]).T - values, atol=1e-6)
    np.testing.assert_allclose(out.batch["returns"], np.tile([1.0, -1.0], (3, 1)), atol=1e-6)


def test_one_compiled_paired_iteration_updates_all_three_agents():
    size = 5
    env = FlattenObservation(Maze(size, size, max_steps=10))
    eval_levels = jax.tree.map(lambda x: x[None], level_from_strings((">....", ".....", "....G"), size, size))
    cfg = PPOConfig(rollout_len=8, num_epochs=1, num_minibatches=2, hidden_sizes=(16,))
    agent = make_paired(cfg, 4, env, 4 * 8 * 3, eval_levels, num_walls=3, height=size, width=size, num_eval_episodes=2)
    hp = ued_hparams(cfg, CurriculumConfig(method="paired"))

    @jax.jit
    def run(key):
        state = agent.init(key, hp)
        new_state, metrics = jax.lax.scan(lambda s, k: agent.update(k, s, None, hp), state, jax.random.split(key, 3))
        return state, new_state, metrics, agent.evaluate(key, new_state, None, hp)

    before, after, metrics, eval_returns = run(KEY)
    for name in ("protagonist", "antagonist", "adversary"):
        changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), getattr(before, name).params, getattr(after, name).params)
        assert any(jax.tree.leaves(changed)), name
    assert np.isfinite(np.asarray(metrics["regret"])).all() and eval_returns.shape == (2,)
    assert (np.asarray(metrics["mean_walls"]) <= 3).all()


def test_the_env_step_budget_counts_all_three_agents():
    # One update plays 2 x 4 x 8 student steps and 4 x (3 + 2) editor steps = 84; a budget of 1000 buys 11 updates,
    # and the students' learning-rate schedules run over exactly those 11 (not 1000 // 32 = 31).
    size = 5
    env = FlattenObservation(Maze(size, size, max_steps=10))
    eval_levels = jax.tree.map(lambda x: x[None], level_from_strings((">....", ".....", "....G"), size, size))
    cfg = PPOConfig(rollout_len=8, num_epochs=1, num_minibatches=2, hidden_sizes=(16,))
    agent = make_paired(cfg, 4, env, 1000, eval_levels, num_walls=3, height=size, width=size, num_eval_episodes=2)
    assert agent.env_steps_per_update == 84 and agent.num_updates == 11
