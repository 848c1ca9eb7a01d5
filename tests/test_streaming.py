"""Streaming RL pieces: ObGD and AdaptiveObGD steps by hand, trace resets, sparse initialisation, and the
running observation / reward statistics on hand-made sequences."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.streaming import (RewardScaler, SampleMeanStd, normalize_sample, obgd_init, obgd_step, scale_reward,
                             sparse_init)

HP = dict(gamma=0.99, lamda=0.8, kappa=2.0)


def test_obgd_bounds_the_step_by_delta_and_the_trace_norm():
    params = {"w": jnp.asarray([1.0, 2.0])}
    state = obgd_init(params)
    # e = g = [0.5, -1]; alpha kappa max(|delta|, 1) ||e||_1 = 1 * 2 * 2 * 1.5 = 6 > 1: step 1/6.
    params, state, step = obgd_step(params, state, {"w": jnp.asarray([0.5, -1.0])}, 2.0, False, 1.0, **HP)
    assert float(step) == pytest.approx(1 / 6)
    np.testing.assert_allclose(params["w"], [1 + 2 / 6 * 0.5, 2 - 2 / 6], rtol=1e-6)
    # The trace decays by gamma lambda and accumulates; reset zeroes it after the step.
    e = 0.99 * 0.8 * np.array([0.5, -1.0]) + np.array([1.0, 0.0])
    bound = 1.0 * np.abs(e).sum() * 1.0 * 2.0
    before = np.asarray(params["w"])
    params, state, step = obgd_step(params, state, {"w": jnp.asarray([1.0, 0.0])}, 0.5, True, 1.0, **HP)
    assert float(step) == pytest.approx(1 / bound, rel=1e-6)
    np.testing.assert_allclose(params["w"], before + 0.5 / bound * e, rtol=1e-6)
    np.testing.assert_array_equal(state.trace["w"], [0.0, 0.0])
    # Below the bound the step is alpha itself.
    p2, _, step = obgd_step({"w": jnp.zeros(2)}, obgd_init({"w": jnp.zeros(2)}), {"w": jnp.asarray([0.5, -1.0])}, 2.0,
                            False, 0.1, **HP)
    assert float(step) == pytest.approx(0.1)  # 0.1 * 2 * 2 * 1.5 = 0.6 < 1
    np.testing.assert_allclose(p2["w"], [0.1, -0.2], rtol=1e-6)


def test_adaptive_obgd_normalises_the_trace_by_its_running_second_moment():
    g, delta, lr, beta2, eps = np.array([0.5, -2.0]), 3.0, 1.0, 0.999, 1e-8
    params, state, step = obgd_step({"w": jnp.zeros(2)}, obgd_init({"w": jnp.zeros(2)}), {"w": jnp.asarray(g)}, delta,
                                    False, lr, adaptive=True, beta2=beta2, eps=eps, **HP)
    v_hat = ((1 - beta2) * (delta * g) ** 2) / (1 - beta2)
    scaled = g / (np.sqrt(v_hat) + eps)
    expected_step = lr / max(1.0, abs(delta) * np.abs(scaled).sum() * lr * 2.0)
    assert float(step) == pytest.approx(expected_step, rel=1e-5)
    np.testing.assert_allclose(params["w"], expected_step * delta * scaled, rtol=1e-5)
    assert int(state.count) == 1


def test_sparse_init_zeroes_the_fraction_of_each_units_inputs_and_keeps_lecun_scale():
    kernel = sparse_init(0.9)(jax.random.PRNGKey(0), (100, 50))
    zeros_per_unit = np.sum(np.asarray(kernel) == 0.0, axis=0)
    np.testing.assert_array_equal(zeros_per_unit, np.full(50, 90))
    assert float(jnp.max(jnp.abs(kernel))) <= 0.1 + 1e-7
    nonzero = np.asarray(kernel)[np.asarray(kernel) != 0]
    assert np.std(nonzero) == pytest.approx(0.1 / math.sqrt(3), rel=0.2)  # U(-b, b) has std b / sqrt(3)
    conv = sparse_init(0.5)(jax.random.PRNGKey(1), (3, 3, 4, 8))
    np.testing.assert_array_equal(np.sum(np.asarray(conv).reshape(36, 8) == 0, axis=0), np.full(8, 18))
    # Different units drop different inputs.
    assert len({tuple(np.flatnonzero(np.asarray(kernel)[:, j] == 0)) for j in range(50)}) > 1


def test_observation_normalisation_updates_then_normalises():
    stats = SampleMeanStd.create((1,))
    stats, x1 = normalize_sample(stats, jnp.asarray([1.0]))
    assert float(x1[0]) == 0.0 and float(stats.var[0]) == 1.0  # one sample: variance 1
    stats, x2 = normalize_sample(stats, jnp.asarray([3.0]))
    assert float(stats.mean[0]) == 2.0 and float(stats.var[0]) == pytest.approx(2.0)
    assert float(x2[0]) == pytest.approx(1 / math.sqrt(2), rel=1e-6)


def test_reward_scaling_divides_by_the_std_of_the_discounted_return():
    gamma, rewards, dones = 0.9, [1.0, 2.0, 0.5, 1.0], [False, True, False, False]
    scaler, scaled = RewardScaler.create(), []
    for r, d in zip(rewards, dones):
        scaler, x = scale_reward(scaler, jnp.float32(r), d, gamma)
        scaled.append(float(x))
    # u: 1; 0.9 * 1 * (1 - 1) + 2 = 2 (the episode's end drops the return before its reward); 0.5 + 0.9 * 2; ...
    u = [1.0, 2.0, 0.5 + 0.9 * 2.0, 1.0 + 0.9 * (0.5 + 0.9 * 2.0)]
    expected = [rewards[0] / math.sqrt(1.0 + 1e-8)]
    for t in range(1, 4):
        expected.append(rewards[t] / math.sqrt(np.var(u[: t + 1], ddof=1) + 1e-8))
    np.testing.assert_allclose(scaled, expected, rtol=1e-5)


def test_stream_q_learns_cartpole_from_one_transition_at_a_time(tmp_path):
    """Four seeds in one program, 50k single-transition updates each (the README's stream_q command)."""
    from jaxrl import train

    result = train(algo="stream_q", env="CartPole-v1", num_seeds=4, total_timesteps=50_000, num_chunks=5,
                   eval_episodes=8, quiet=True)
    final = np.asarray(result.summary["final_returns"])
    untrained = np.asarray(result.curves["eval_returns"])[0].mean()
    assert result.summary["env_steps_per_seed"] == 50_000
    assert np.median(final) > 200 and np.median(final) > 5 * min(untrained, 40)


def test_stream_q_trace_resets_exactly_after_non_greedy_actions_and_episode_ends():
    """Epsilon 0.5: the trace is zero after a step exactly when that step was non-greedy or ended an episode."""
    from jaxrl.agents.stream import StreamQConfig, make_stream_q, stream_q_hparams
    from jaxrl.envs import make

    cfg = StreamQConfig(start_epsilon=0.5, end_epsilon=0.5)
    agent = make_stream_q(cfg, make("CartPole-v1"), 100)
    hp = stream_q_hparams(cfg)
    state = agent.init(jax.random.PRNGKey(0), hp)
    update = jax.jit(agent.update)
    kinds = set()
    for i in range(60):
        state, metrics = update(jax.random.PRNGKey(i), state, None, hp)
        zero = all(float(jnp.abs(e).sum()) == 0.0 for e in jax.tree.leaves(state.opt.trace))
        assert zero == bool(metrics["trace_reset"]), i
        kinds.add((bool(metrics["nongreedy"]), zero))
    assert (True, True) in kinds and (False, False) in kinds


def test_stream_ac_learns_cartpole_and_acts_in_bounds_on_pendulum():
    from jaxrl import train

    result = train(algo="stream_ac", env="CartPole-v1", num_seeds=4, total_timesteps=30_000, hidden_sizes=(32, 32),
                   num_chunks=3, eval_episodes=8, quiet=True)
    final = np.asarray(result.summary["final_returns"])
    assert np.median(final) > 300, final
    # Continuous actions: a Gaussian policy whose actions reach the env clipped to [-1, 1]; the run stays finite.
    result = train(algo="stream_ac", env="Pendulum-v1", num_seeds=2, total_timesteps=1_000, hidden_sizes=(16,),
                   num_chunks=1, eval_episodes=2, quiet=True)
    assert np.isfinite(result.summary["final_returns"]).all()
    agent, params = result.agent, jax.tree.map(lambda x: x[0], result.state.agent_state.params)
    actions = agent.act(params, 10.0 * jax.random.normal(jax.random.PRNGKey(0), (64, 3)), jax.random.PRNGKey(1), False)
    assert actions.shape == (64, 1) and float(jnp.max(jnp.abs(actions))) <= 1.0


def test_stream_sarsa_keeps_its_trace_through_exploration_and_learns_cartpole():
    from jaxrl import train
    from jaxrl.agents.stream import StreamQConfig, make_stream_q, stream_q_hparams
    from jaxrl.envs import make

    cfg = StreamQConfig(start_epsilon=0.5, end_epsilon=0.5)
    agent = make_stream_q(cfg, make("CartPole-v1"), 100, sarsa=True)
    hp = stream_q_hparams(cfg)
    state = agent.init(jax.random.PRNGKey(0), hp)
    update = jax.jit(agent.update)
    explored = 0
    for i in range(60):
        played = int(state.action)
        state, metrics = update(jax.random.PRNGKey(i), state, None, hp)
        explored += int(metrics["nongreedy"])
        zero = all(float(jnp.abs(e).sum()) == 0.0 for e in jax.tree.leaves(state.opt.trace))
        assert zero == bool(metrics["trace_reset"]) and 0 <= played < 2  # reset = the episode ended, nothing else
    assert explored > 0
    result = train(algo="stream_sarsa", env="CartPole-v1", num_seeds=4, total_timesteps=50_000, num_chunks=5,
                   eval_episodes=8, quiet=True)
    assert np.median(result.summary["final_returns"]) > 200, result.summary["final_returns"]


def test_classic_trace_updates_sgd_and_adam_by_hand():
    from jaxrl.streaming.obgd import trace_step

    g = {"w": jnp.asarray([0.5, -1.0])}
    p, state, _ = trace_step({"w": jnp.zeros(2)}, obgd_init({"w": jnp.zeros(2)}), g, 2.0, False, 0.1, rule="sgd", **HP)
    np.testing.assert_allclose(p["w"], 0.1 * 2.0 * np.array([0.5, -1.0]), rtol=1e-6)  # no bound: 0.6 > ObGD's cap too
    p, state, _ = trace_step({"w": jnp.zeros(2)}, obgd_init({"w": jnp.zeros(2)}), g, 2.0, False, 0.01, rule="adam", **HP)
    np.testing.assert_allclose(p["w"], 0.01 * np.sign([0.5, -1.0]), rtol=1e-4)  # Adam's first step: lr * sign(delta e)


def test_saved_stream_policy_normalises_with_the_streams_statistics(tmp_path):
    from jaxrl import train
    from jaxrl.io import load_policy

    # Three seeds: their statistics are gathered for the first (a batch of streams' variance, count [3], p [3, 4]).
    result = train(algo="stream_q", env="CartPole-v1", num_seeds=3, total_timesteps=500, num_chunks=1, eval_episodes=1,
                   quiet=True, out_dir=str(tmp_path / "sq"))
    policy = load_policy(tmp_path / "sq")
    state = jax.tree.map(lambda x: x[0], result.state.agent_state)
    z = jnp.clip(jax.random.normal(jax.random.PRNGKey(0), (32, 4)), -3, 3)  # inside load_policy's +-10 clip
    obs = state.obs_stats.mean + z * jnp.sqrt(state.obs_stats.var + 1e-8)
    x = (obs - state.obs_stats.mean) / jnp.sqrt(state.obs_stats.var + 1e-8)
    np.testing.assert_array_equal(policy(obs), result.agent.act(state.params, x, None))
    assert int(state.obs_stats.count) > 500  # every final and reset observation counted


def test_conv_torso_is_the_papers_minatar_network_and_auto_picks_it_for_images():
    from jaxrl import envs
    from jaxrl.agents.stream import StreamNetwork, StreamQConfig, stream_network, validate_stream_q

    env = envs.make("Breakout-MinAtar")
    assert envs.unflattened_observation_shape(env) == (10, 10, 4)
    net = stream_network(StreamQConfig(hidden_sizes=(128,)), env, 3)
    assert net.image_shape == (10, 10, 4)
    assert stream_network(StreamQConfig(torso="mlp"), env, 3).image_shape is None
    assert stream_network(StreamQConfig(), envs.make("CartPole-v1"), 2).image_shape is None
    flat = jax.random.normal(jax.random.PRNGKey(0), (5, 400))
    params = net.init(jax.random.PRNGKey(1), flat[0])
    conv = params["params"]["PatchConv_0"]["kernel"]
    assert conv.shape == (3, 3, 4, 16)
    assert params["params"]["Dense_0"]["kernel"].shape == (8 * 8 * 16, 128)  # the reference's Linear(1024, 128)
    # 90% of each output channel's 36 inputs are zero: ceil(0.9 * 36) = 33.
    np.testing.assert_array_equal((conv.reshape(36, 16) == 0).sum(0), 33)
    # One observation or a batch give the same values; the batch is not mixed inside LayerNorm.
    batched = net.apply(params, flat)
    single = jnp.stack([net.apply(params, row) for row in flat])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)
    # LayerNorm normalises the whole conv map (the reference's F.layer_norm(x, x.size())).
    _, inter = net.apply(params, flat[0], capture_intermediates=True)
    ln = inter["intermediates"]["LayerNorm_0"]["__call__"][0]
    assert ln.shape == (1, 8, 8, 16)
    assert float(ln.mean()) == pytest.approx(0.0, abs=1e-5) and float(ln.std()) == pytest.approx(1.0, abs=1e-3)
    assert "conv needs image observations" in validate_stream_q(StreamQConfig(torso="conv"), envs.make("CartPole-v1"), 10)
    assert StreamNetwork(2, (8,)).image_shape is None


def test_patch_conv_is_a_valid_3x3_convolution():
    import flax.linen as nn

    from jaxrl.agents.stream import PatchConv

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 10, 10, 4))
    params = PatchConv(16, 0.5).init(jax.random.PRNGKey(1), x)
    kernel, bias = params["params"]["kernel"], params["params"]["bias"]
    reference = nn.Conv(16, (3, 3), padding="VALID").apply({"params": {"kernel": kernel, "bias": bias + 0.3}}, x)
    ours = PatchConv(16, 0.5).apply({"params": {"kernel": kernel, "bias": bias + 0.3}}, x)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)


# Probe environments with known answers (jaxrl.envs.probes). Values are read in the units of the raw reward:
# reward scaling off; the observation statistics are applied to the query as the agent applies them.
PROBE_OPTIONS = dict(hidden_sizes=(16,), scale_reward=False)


def run_probe(algo, probe, total_timesteps, **options):
    """Two seeds of ``algo`` on ``probe/<probe>``; ``(result, cfg)``."""
    from jaxrl import train
    from jaxrl.agents import ALGORITHMS

    options = {**PROBE_OPTIONS, **options}
    result = train(algo=algo, env=f"probe/{probe}", total_timesteps=total_timesteps, num_seeds=2, num_chunks=1,
                   eval_episodes=2, quiet=True, **options)
    return result, ALGORITHMS[algo].config_cls(**options)


def probe_values(run, algo, out_dim, obs):
    """Per seed, the trained network(s)' outputs ``[len(obs), out_dim]`` on raw observations ``obs``."""
    from jaxrl.agents.stream import stream_network

    result, cfg = run
    state = result.state.agent_state
    env = result.built.env
    x = jnp.asarray(obs, jnp.float32)
    outputs = []
    for seed in range(state.step.shape[0]):
        stats = jax.tree.map(lambda v: v[seed], state.obs_stats)
        z = (x - stats.mean) / jnp.sqrt(stats.var + 1e-8) if cfg.normalize_obs else x
        params = jax.tree.map(lambda v: v[seed], state.params)
        if algo == "stream_ac":
            outputs.append((stream_network(cfg, env, out_dim).apply(params.policy, z),
                            stream_network(cfg, env, 1).apply(params.value, z)[:, 0]))
        else:
            outputs.append(stream_network(cfg, env, out_dim).apply(params, z))
    return outputs


@pytest.mark.parametrize("algo", ["stream_q", "stream_sarsa"])
def test_stream_q_and_sarsa_bootstrap_one_step_discount(algo):
    """Obs 0 then obs 1, reward 1 at the end: Q(1, .) = 1 and Q(0, .) = gamma = 0.9 only by bootstrapping."""
    run = run_probe(algo, "OneStepDiscount", 4000, gamma=0.9)
    for q in probe_values(run, algo, 2, [[0.0], [1.0]]):
        np.testing.assert_allclose(q, [[0.9, 0.9], [1.0, 1.0]], atol=0.05)


def test_stream_q_bootstraps_through_time_limit_truncation():
    """Reward 1 forever, cut every 5 steps by a truncation: Q = 1 / (1 - 0.9) = 10 (a terminal limit gives <= 4.1)."""
    run = run_probe("stream_q", "TruncatedConstantReward", 6000, gamma=0.9)
    for q in probe_values(run, "stream_q", 2, [[0.0]]):
        np.testing.assert_allclose(q, [[10.0, 10.0]], atol=0.5)


def test_stream_ac_learns_conditional_policy_and_its_value():
    """Reward 1 when the action matches the observation's sign: the policy conditions on it and V = 1."""
    run = run_probe("stream_ac", "ObservationAndActionDependentReward", 4000, entropy_coef=0.0)
    for logits, v in probe_values(run, "stream_ac", 2, [[-1.0], [1.0]]):
        probs = np.asarray(jax.nn.softmax(logits))
        assert probs[0, 0] > 0.9 and probs[1, 1] > 0.9, probs
        np.testing.assert_allclose(v, [1.0, 1.0], atol=0.1)


def test_stream_ac_gaussian_mean_goes_to_the_best_action():
    """reward = -(a - 0.5)^2 for an action in [-1, 1]: the Gaussian mean goes to 0.5."""
    run = run_probe("stream_ac", "ContinuousActionReward", 6000, entropy_coef=0.0)
    for out, _ in probe_values(run, "stream_ac", 2, [[0.0]]):
        assert abs(float(out[0, 0]) - 0.5) < 0.1, out


def test_sweep_over_alpha_kappa_and_lambda_is_one_program():
    """lr, kappa and lamda are traced: a 2 x 2 x 2 grid of two seeds each runs as one program, and every grid point
    learns the probe's answer (Q(0, .) = 0.9 by bootstrapping, whatever lambda)."""
    from jaxrl import train

    result = train(algo="stream_q", env="probe/OneStepDiscount", total_timesteps=3000, gamma=0.9, num_seeds=2,
                   num_chunks=1, eval_episodes=2, quiet=True, hidden_sizes=(16,), scale_reward=False,
                   sweep={"lr": [1.0, 0.5], "kappa": [2.0, 4.0], "lamda": [0.0, 0.8]})
    grid = result.summary["grid"]
    assert len(grid) == 8 and {tuple(sorted(g["hparams"])) for g in grid} == {("kappa", "lamda", "lr")}
    params = result.state.agent_state.params
    assert jax.tree.leaves(params)[0].shape[0] == 16  # 8 grid points x 2 seeds
    from jaxrl.agents.stream import StreamQConfig, stream_network

    net = stream_network(StreamQConfig(hidden_sizes=(16,), normalize_obs=False), result.built.env, 2)
    stats = result.state.agent_state.obs_stats
    for member in range(16):
        p = jax.tree.map(lambda v: v[member], params)
        x = (jnp.asarray([[0.0], [1.0]]) - stats.mean[member]) / jnp.sqrt(stats.var[member] + 1e-8)
        np.testing.assert_allclose(net.apply(p, x), [[0.9, 0.9], [1.0, 1.0]], atol=0.06)


def test_variance_of_a_batch_of_streams_uses_each_streams_count():
    stats = SampleMeanStd(jnp.zeros((3, 2)), jnp.asarray([[2.0, 4.0], [2.0, 4.0], [2.0, 4.0]]), jnp.asarray([1.0, 3.0, 5.0]))
    np.testing.assert_allclose(stats.var, [[1.0, 1.0], [1.0, 2.0], [0.5, 1.0]])


def test_log_interval_folds_learning_steps_into_one_row_of_metrics(tmp_path):
    """--log-interval 50: each row of the shared loop is 50 single-transition steps (still one learning step per
    transition: the env step counter advances by 50), and the probe is learned as with one step per row."""
    run = run_probe("stream_q", "OneStepDiscount", 4000, gamma=0.9, log_interval=50)
    result = run[0]
    assert result.summary["num_updates"] == 80 and result.summary["env_steps_per_seed"] == 4000
    assert np.asarray(result.state.agent_state.step).tolist() == [4000, 4000]
    assert np.asarray(result.curves["train_return"]).shape[0] == 80
    for q in probe_values(run, "stream_q", 2, [[0.0], [1.0]]):
        np.testing.assert_allclose(q, [[0.9, 0.9], [1.0, 1.0]], atol=0.05)
    from jaxrl.agents.stream import StreamQConfig, validate_stream_q
    from jaxrl.envs import make

    assert "multiple of --log-interval 50" in validate_stream_q(StreamQConfig(log_interval=50), make("CartPole-v1"), 4010)


def test_resumed_stream_run_is_bit_identical(tmp_path):
    """Traces, the stream's statistics and the reward scale are checkpointed: a run resumed from its chunk-2 checkpoint
    logs the same rows and ends with the same returns as the uninterrupted run."""
    import json

    from jaxrl.programs.train import main
    from resumed_runs import logged_rows, resume_copy

    args = ["--algo", "stream_ac", "--env", "CartPole-v1", "--total-timesteps", "2000", "--log-interval", "10",
            "--hidden-sizes", "16", "--num-seeds", "2", "--num-chunks", "4", "--eval-episodes", "2", "--quiet"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert main([*args, "--out-dir", str(full)]) == 0
    resume_copy(main, full, cut)
    assert logged_rows(full) == logged_rows(cut) and len(logged_rows(full)) == 200
    a, b = (json.loads((d / "summary.json").read_text()) for d in (full, cut))
    assert a["final_returns"] == b["final_returns"]


def test_obgd_state_keeps_only_the_moments_its_rule_uses():
    params = {"w": jnp.ones(3)}
    assert obgd_init(params, "obgd").v == () and obgd_init(params, "obgd").m == ()
    assert obgd_init(params, "sgd").v == () and obgd_init(params, "adaptive_obgd").m == ()
    assert obgd_init(params, "adam").m["w"].shape == (3,)
    from jaxrl.streaming.obgd import trace_step

    for rule in ("obgd", "adaptive_obgd", "sgd", "adam"):
        state = obgd_init(params, rule)
        _, new_state, _ = trace_step(params, state, {"w": jnp.ones(3)}, 0.5, False, 0.1, 0.99, 0.8, 2.0, rule)
        assert jax.tree.structure(new_state) == jax.tree.structure(state), rule
