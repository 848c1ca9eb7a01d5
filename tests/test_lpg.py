"""LPG's grid worlds and update rule on hand-computed cases: dynamics, the backward recurrence, the
REINFORCE update a hand-set rule encodes, and save / load of a learned rule."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl.agents.lpg import (LPGAgentConfig, RuleInputs, agent_loss, discounted_returns, lpg_hparams, make_lpg_agent,
                              make_rule, reinforce_rule)
from jaxrl.envs.levels.gridworld import (HAND_DESIGNED, GridWorld, generate_level, hand_designed_level,
                                         hand_designed_levels, mutate_level)
from jaxrl.objectives import load_objective, save_objective
from jaxrl.training.rollout import collect_rollout
from jaxrl.networks.distributions import Categorical

RIGHT, STAY = 3, 4


SMALL = dict(max_size=5, max_objects=2, max_steps=50)  # a small board keeps the one-hot observations small


def one_object_level(p_terminate=1.0, p_respawn=0.0, max_steps=5, reward=2.0):
    """Start at (1, 1) on a 4 x 4 grid (of a 5 x 5 board), one object at (2, 1): 'right' collects it."""
    level = generate_level(jax.random.PRNGKey(0), 5, 2)
    wall = np.ones((5, 5), bool)
    wall[:4, :4] = False
    k = 2
    return level._replace(
        wall_map=jnp.asarray(wall), start_pos=jnp.asarray([1, 1], jnp.int32),
        obj_pos=jnp.asarray([[2, 1]] + [[0, 0]] * (k - 1), jnp.int32),
        obj_reward=jnp.asarray([reward] + [0.0] * (k - 1)), obj_p_terminate=jnp.asarray([p_terminate] + [0.0] * (k - 1)),
        obj_p_respawn=jnp.asarray([p_respawn] + [0.0] * (k - 1)), obj_active=jnp.asarray([True] + [False] * (k - 1)),
        max_steps=jnp.asarray(max_steps, jnp.int32))


def play(env, level, actions):
    """``(final state, rewards)`` of ``actions`` from the level's start (one fixed key)."""
    key = jax.random.PRNGKey(0)
    state, _ = env.reset(key, level)
    rewards = []
    for action in actions:
        state, ts = env.step(key, state, action, level)
        rewards.append(float(ts.reward))
    return state, rewards


def test_collecting_pays_the_reward_terminates_and_respawns_as_set():
    env = GridWorld(**SMALL)
    env.step = jax.jit(env.step)
    key = jax.random.PRNGKey(0)
    state, obs = env.reset(key, one_object_level())
    assert obs.shape == (5 * 5 * 4,) and obs.sum() == 1.0
    _, ts = env.step(key, state, RIGHT, one_object_level(p_terminate=1.0))
    assert float(ts.reward) == 2.0 and bool(ts.terminated) and not bool(ts.truncated)
    # Never terminating, never respawning: the object is gone after collection, the reward paid once.
    state, rewards = play(env, one_object_level(p_terminate=0.0, p_respawn=0.0), (RIGHT, STAY, STAY))
    assert rewards == [2.0, 0.0, 0.0] and not bool(state.present[0])
    # Respawn with probability 1: present again on the next step, collected again by staying on its cell.
    assert play(env, one_object_level(p_terminate=0.0, p_respawn=1.0), (RIGHT, STAY, STAY))[1] == [2.0, 0.0, 2.0]


def test_time_limit_truncates_and_walls_block():
    env = GridWorld(**SMALL)
    env.step = jax.jit(env.step)
    level = one_object_level(p_terminate=0.0, max_steps=3)
    state, _ = env.reset(jax.random.PRNGKey(0), level)
    ends = []
    for t in range(3):
        state, ts = env.step(jax.random.PRNGKey(t), state, 0, level)  # up from row 1: row 0, then the board's edge
        ends.append((bool(ts.terminated), bool(ts.truncated)))
    assert ends == [(False, False), (False, False), (False, True)]
    assert np.asarray(state.pos).tolist() == [1, 1]  # auto-reset to the start


def test_hand_designed_and_generated_levels_are_well_formed():
    names, levels = hand_designed_levels()
    assert names == list(HAND_DESIGNED) and levels.obj_pos.shape == (5, 5, 2)
    sizes = {n: int((~np.asarray(lv.wall_map)).any(axis=0).sum()) for n, lv in
             zip(names, [hand_designed_level(n) for n in names])}
    assert sizes["sparse"] == 13 and sizes["dense"] == 11 and sizes["longer"] == 9
    keys = jax.random.split(jax.random.PRNGKey(1), 64)
    batch = jax.jit(jax.vmap(lambda k: mutate_level(k, generate_level(k, lifetime=(50, 250)))))(keys)
    for i in range(64):
        level = jax.tree.map(lambda x: np.asarray(x[i]), batch)
        cells = np.concatenate([level.start_pos[None], level.obj_pos[level.obj_active]])
        assert not level.wall_map[cells[:, 1], cells[:, 0]].any()  # start and objects never in a wall
        assert len({tuple(c) for c in cells}) == len(cells)
        assert 50 <= int(level.lifetime) <= 250 and float(level.obj_reward[0]) >= 0.0


def trajectory(reward, done):
    T = len(reward)
    z = jnp.zeros((T, 1))
    return RuleInputs(jnp.asarray(reward, jnp.float32)[:, None], jnp.asarray(done)[:, None], z + 0.9, z + 0.5,
                      jnp.full((T, 1, 8), 1 / 8), jnp.full((T, 1, 8), 1 / 8), jnp.zeros(()), jnp.zeros(()))


def test_backward_core_sees_the_future_of_its_episode_only():
    rule = make_rule("lpg", hidden=16)
    params = rule.init(jax.random.PRNGKey(0))
    done = [False, False, True, False, False, False]
    base, _ = rule.apply(params, trajectory([0.0] * 6, done))
    later, _ = rule.apply(params, trajectory([0, 0, 0, 0, 1.0, 0], done))  # a reward in the second episode
    changed = np.abs(np.asarray(later - base)[:, 0]) > 1e-6
    assert changed.tolist() == [False, False, False, True, True, False]  # steps 3, 4 see it; the first episode and t=5 do not
    earlier, _ = rule.apply(params, trajectory([0, 1.0, 0, 0, 0, 0], done))
    changed = np.abs(np.asarray(earlier - base)[:, 0]) > 1e-6
    assert changed.tolist() == [True, True, False, False, False, False]


def test_discounted_returns_by_hand():
    reward = jnp.asarray([[1.0], [2.0], [3.0], [4.0]])
    done = jnp.asarray([[False], [True], [False], [False]])
    g = discounted_returns(reward, done, jnp.full((4, 1), 0.5))
    np.testing.assert_allclose(np.asarray(g)[:, 0], [1 + 0.5 * 2, 2, 3 + 0.5 * 4, 4])


def test_hand_set_rule_update_equals_reinforce():
    """One agent update with the REINFORCE rule equals SGD on -mean(log pi(a) G) (clipped), from the same rollout."""
    env = GridWorld(**SMALL)
    level = env.default_params
    cfg = LPGAgentConfig(num_envs=4, rollout_len=8, hidden_sizes=(16,), y_dim=4, policy_lr=0.3, y_lr=0.1,
                         max_grad_norm=100.0, gamma=0.9)
    agent = make_lpg_agent(cfg, env, reinforce_rule(), num_updates=3)
    hp = lpg_hparams(cfg, {}, lifetime=3)
    state = agent.init(jax.random.PRNGKey(0), hp)
    key = jax.random.PRNGKey(1)
    new_state, _ = jax.jit(agent.update)(key, state, level, hp)

    from jaxrl.agents.lpg import LPGNets
    nets = LPGNets((16,), 5, 4)
    _, _, traj, _ = jax.jit(collect_rollout, static_argnums=(1, 2, 6))(key, lambda o: Categorical(nets.apply(state.params, o)[0]), agent.env, level,
                                    state.env_state, state.obs, 8)
    r, term, trunc = (np.asarray(x) for x in (traj.reward, traj.terminated, traj.truncated))
    g = np.zeros_like(r)
    running = np.zeros(r.shape[1])
    for t in reversed(range(r.shape[0])):  # returns to the episode's (or the window's) end
        running = r[t] + 0.9 * (1 - term[t]) * np.where(term[t] | trunc[t], 0.0, running)
        g[t] = running

    def reinforce_loss(params):
        logits, _ = nets.apply(params, traj.obs)
        return -jnp.mean(Categorical(logits).log_prob(traj.action) * g)

    grads = jax.grad(reinforce_loss)(state.params)
    expected = jax.tree.map(lambda p, d: p - 0.3 * d, state.params["params"]["policy"], grads["params"]["policy"])
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(new_state.params["params"]["policy"])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    # y_hat = y: the prediction's gradient is zero, so it does not move.
    for a, b in zip(jax.tree.leaves(state.params["params"]["y"]), jax.tree.leaves(new_state.params["params"]["y"])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-7)


def test_agent_stops_learning_at_its_lifetime():
    env = GridWorld(**SMALL)
    cfg = LPGAgentConfig(num_envs=2, rollout_len=4, y_dim=4)
    rule = make_rule("lpg", hidden=8, y_dim=4)
    agent = make_lpg_agent(cfg, env, rule, num_updates=3)
    hp = lpg_hparams(cfg, rule.init(jax.random.PRNGKey(0)), lifetime=1)
    state = agent.init(jax.random.PRNGKey(0), hp)
    update = jax.jit(agent.update)
    s1, _ = update(jax.random.PRNGKey(1), state, env.default_params, hp)
    s2, _ = update(jax.random.PRNGKey(2), s1, env.default_params, hp)
    moved = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # noqa: E731
    assert moved(state.params, s1.params) and not moved(s1.params, s2.params)


@pytest.mark.parametrize("name", ["ta_lpg"])  # the lifetime-aware spec is the one with more to restore
def test_saved_rule_gives_identical_updates(tmp_path, name):
    env = GridWorld(**SMALL)
    cfg = LPGAgentConfig(num_envs=2, rollout_len=4, y_dim=4)
    rule = make_rule(name, hidden=8, y_dim=4)
    params = rule.init(jax.random.PRNGKey(3))
    save_objective(tmp_path / "rule", rule, params, {"note": "test"})
    loaded_rule, loaded = load_objective(tmp_path / "rule")
    assert loaded_rule.spec == rule.spec
    outs = []
    for r, p in ((rule, params), (loaded_rule, loaded)):
        agent = make_lpg_agent(cfg, env, r, num_updates=2)
        hp = lpg_hparams(cfg, p, lifetime=2)
        state = agent.init(jax.random.PRNGKey(0), hp)
        outs.append(jax.jit(agent.update)(jax.random.PRNGKey(1), state, env.default_params, hp)[0].params)
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_rule_gradient_reaches_the_rule_parameters():
    """Meta-gradients flow: the agent loss depends on the rule's parameters through pi_hat and y_hat."""
    env = GridWorld(**SMALL)
    cfg = LPGAgentConfig(num_envs=2, rollout_len=4, y_dim=4, hidden_sizes=(8,))
    rule = make_rule("lpg", hidden=8, y_dim=4)
    from jaxrl.agents.lpg import LPGNets
    nets = LPGNets((8,), 5, 4)
    agent = make_lpg_agent(cfg, env, rule, num_updates=1)
    hp = lpg_hparams(cfg, rule.init(jax.random.PRNGKey(0)), lifetime=1)
    state = agent.init(jax.random.PRNGKey(0), hp)
    _, _, traj, _ = collect_rollout(jax.random.PRNGKey(1), lambda o: Categorical(nets.apply(state.params, o)[0]),
                                    agent.env, env.default_params, state.env_state, state.obs, 4)
    g = jax.jit(jax.grad(lambda rp: agent_loss(state.params, nets.apply, rule, hp._replace(rule_params=rp), traj, 0.0)[0]))(hp.rule_params)
    assert float(optax.tree.norm(g)) > 0.0
