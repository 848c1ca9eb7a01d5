"""Quality-diversity: repertoire insertion, CVT and grid assignment, QD metrics by hand, Iso+Line-DD, the
descriptor-similarity reward rescaling, folding the conditioned actor, task rollouts and descriptors,
the three emitters' iterations, the program's outputs and ``load_policy``'s choices.

The run lifecycle (resume, bad input, divergence, sweep) is tested with every program in test_programs.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.buffers.replay import add_masked, init_buffer
from jaxrl.io import load_policy
from jaxrl.networks.continuous import DeterministicActor, TwinQNetwork, fold_conditioning
from jaxrl.programs.qd import qd
from jaxrl.qd import (QDConfig, cell_indices, cvt_centroids, empty_repertoire, grid_centroids, insert, iso_line_dd,
                      make_qd, make_task, qd_hparams, qd_metrics, select_uniform)
from jaxrl.qd.gradients import QDTransition, TD3Settings, make_losses, similarity
from jaxrl.qd.search import best_elite, batch_split
from jaxrl.qd.tasks import QDTask, make_evaluate_batch

ROOT = Path(__file__).resolve().parents[1]


def _repertoire(num_cells=4):
    centroids = jnp.asarray([[float(i), 0.0] for i in range(num_cells)])
    return empty_repertoire({"w": jnp.zeros((2,))}, centroids)


def _genotypes(values):
    return {"w": jnp.asarray([[v, v] for v in values], jnp.float32)}


def test_insertion_fills_empty_cells_and_keeps_only_improvements():
    rep = _repertoire()
    # Cells 0 and 2 receive one candidate each; cell 3 gets two (the fitter, 5.0, wins).
    rep, added = insert(rep, _genotypes([1, 2, 3, 4]), jnp.asarray([[0.1, 0], [2.2, 0], [2.9, 0], [3.1, 0]]),
                        jnp.asarray([1.0, 2.0, 5.0, 3.0]))
    np.testing.assert_array_equal(added, [True, True, True, False])
    np.testing.assert_array_equal(rep.fitnesses, [1.0, -np.inf, 2.0, 5.0])
    np.testing.assert_array_equal(rep.genotypes["w"][:, 0], [1, 0, 2, 3])
    np.testing.assert_allclose(rep.descriptors[3], [2.9, 0])
    # A worse or equal candidate does not replace; a better one does; NaN never enters; equals in a batch: first wins.
    rep, added = insert(rep, _genotypes([7, 8, 9, 10, 11]), jnp.asarray([[0.0, 0], [2.0, 0], [3.0, 0], [1.0, 0], [1.2, 0]]),
                        jnp.asarray([0.5, 2.0, 6.0, 4.0, 4.0]))
    np.testing.assert_array_equal(added, [False, False, True, True, False])
    np.testing.assert_array_equal(rep.fitnesses, [1.0, 4.0, 2.0, 6.0])
    np.testing.assert_array_equal(rep.genotypes["w"][:, 0], [1, 10, 2, 9])
    rep2, added = insert(rep, _genotypes([12]), jnp.asarray([[0.0, 0]]), jnp.asarray([jnp.nan]))
    assert not added[0] and rep2.fitnesses[0] == 1.0


def test_cvt_assignment_equals_brute_force_and_grid_cells_are_the_containing_cells():
    key = jax.random.PRNGKey(3)
    centroids = cvt_centroids(key, 50, 2000, [0.0, -1.0], [2.0, 1.0])
    assert centroids.shape == (50, 2) and float(centroids[:, 0].min()) >= 0 and float(centroids[:, 1].max()) <= 1
    points = np.asarray(jax.random.uniform(jax.random.PRNGKey(4), (500, 2), minval=jnp.asarray([0.0, -1.0]),
                                           maxval=jnp.asarray([2.0, 1.0])))
    c = np.asarray(centroids)
    brute = [min(range(len(c)), key=lambda j: ((p - c[j]) ** 2).sum()) for p in points]
    np.testing.assert_array_equal(cell_indices(jnp.asarray(points), centroids), brute)
    # Lloyd's iterations lower the quantisation error of the samples below the random start's.
    samples = np.asarray(jax.random.uniform(jax.random.PRNGKey(5), (2000, 2))) * [2, 2] - [0, 1]
    start = cvt_centroids(key, 50, 2000, [0.0, -1.0], [2.0, 1.0], iterations=0)

    def error(cs):
        return np.mean(np.min(((samples[:, None] - np.asarray(cs)[None]) ** 2).sum(-1), 1))

    assert error(centroids) < 0.8 * error(start)
    grid = grid_centroids((4, 5), [0.0, 0.0], [1.0, 1.0])
    expected = np.floor(points.clip(0, 0.999) * [4, 5]).astype(int)
    inside = np.clip((points + [0, 1]) / [2, 2], 0, 0.999)
    expected = np.floor(inside * [4, 5]).astype(int)
    np.testing.assert_array_equal(cell_indices(jnp.asarray(inside), jnp.asarray(grid)), expected[:, 0] * 5 + expected[:, 1])


def test_qd_score_coverage_and_fitness_by_hand():
    rep = _repertoire()
    rep, _ = insert(rep, _genotypes([1, 2]), jnp.asarray([[0.0, 0], [3.0, 0]]), jnp.asarray([-1.5, 0.5]))
    m = qd_metrics(rep, fitness_offset=2.0)
    assert float(m.qd_score) == pytest.approx((-1.5 + 2) + (0.5 + 2))
    assert float(m.coverage) == pytest.approx(50.0)
    assert float(m.max_fitness) == 0.5 and float(m.mean_fitness) == pytest.approx(-0.5)
    empty = qd_metrics(_repertoire(), 2.0)
    assert float(empty.qd_score) == 0 and float(empty.coverage) == 0


def test_uniform_selection_draws_only_filled_cells_and_best_elite_handles_member_axes():
    rep = _repertoire(8)
    rep, _ = insert(rep, _genotypes([1, 2]), jnp.asarray([[2.0, 0], [5.0, 0]]), jnp.asarray([1.0, 3.0]))
    _, desc, cells = select_uniform(jax.random.PRNGKey(0), rep, 1000)
    assert set(np.asarray(cells).tolist()) == {2, 5}
    assert 400 < int(np.sum(np.asarray(cells) == 2)) < 600
    np.testing.assert_array_equal(best_elite(rep)["w"], [2, 2])
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), rep, rep._replace(fitnesses=rep.fitnesses.at[2].set(9.0)))
    np.testing.assert_array_equal(best_elite(stacked)["w"], [[2, 2], [1, 1]])


def test_iso_line_dd_is_x_plus_noise_plus_a_shared_line_step():
    x, y = _genotypes([0.0, 1.0]), _genotypes([2.0, 5.0])
    key = jax.random.PRNGKey(7)
    line_only = iso_line_dd(key, x, y, 0.0, 0.5)
    coeff = jax.random.normal(jax.random.split(key)[0], (2,)) * 0.5
    np.testing.assert_allclose(line_only["w"], np.asarray([[0, 0], [1, 1]]) + np.asarray(coeff)[:, None] * [[2, 2], [4, 4]],
                               rtol=1e-6)
    iso_only = iso_line_dd(key, x, x, 0.1, 0.5)  # y = x: the line term vanishes
    assert 0.0 < float(jnp.std(iso_only["w"] - x["w"])) < 0.3


def test_similarity_rescales_the_critic_reward():
    d, d_prime = jnp.asarray([[0.0, 0.0], [0.3, 0.4]]), jnp.asarray([[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(similarity(d, d_prime, 0.1), [1.0, np.exp(-0.5 / 0.1)], rtol=1e-6)
    assert float(similarity(jnp.zeros((0,)), jnp.zeros((0,)), 0.1)) == 1.0  # PGA-ME: no conditioning
    # With discount 0 the critic regresses on reward x similarity.
    actor, critic = DeterministicActor(1, (8,)), TwinQNetwork((8,), "relu")
    settings = TD3Settings(0.0, 1.0, 0.2, 0.5, 0.005, 2, 1, 2, 1, 2)
    critic_loss, _ = make_losses(actor, critic, settings)
    obs = jnp.ones((2, 3))
    a_params = actor.init(jax.random.PRNGKey(0), jnp.zeros((5,)))
    c_params = critic.init(jax.random.PRNGKey(1), jnp.zeros((5,)), jnp.zeros((1,)))
    batch = QDTransition(obs, jnp.zeros((2, 1)), jnp.asarray([2.0, 2.0]), obs, jnp.zeros((2,), bool), d, d_prime)
    q = critic.apply(c_params, jnp.concatenate([obs, d_prime], -1), batch.action)
    target = 2.0 * np.asarray(similarity(d, d_prime, 0.1))
    expected = float(np.sum(np.mean((np.asarray(q) - target) ** 2, axis=-1)))
    loss = critic_loss(c_params, c_params, a_params, batch, jax.random.PRNGKey(2), 0.1)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_folded_actor_equals_the_conditioned_actor_at_that_descriptor():
    net = DeterministicActor(3, (16, 16), "relu")
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((7 + 2,)))
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(1), p.shape), params)  # biases too
    obs = jax.random.normal(jax.random.PRNGKey(2), (10, 7))
    desc = jnp.asarray([0.3, -0.8])
    folded = fold_conditioning(params, desc)
    assert folded["params"]["Dense_0"]["kernel"].shape == (7, 16)
    np.testing.assert_allclose(net.apply(folded, obs), net.apply(params, jnp.concatenate([obs, jnp.tile(desc, (10, 1))], -1)),
                               atol=1e-6)


def test_masked_replay_insertion_writes_kept_items_in_order_and_wraps():
    buffer = init_buffer(jnp.zeros(()), 5)
    buffer = add_masked(buffer, jnp.arange(6.0), jnp.asarray([True, False, True, True, False, False]))
    np.testing.assert_array_equal(buffer.data[:3], [0, 2, 3])
    assert int(buffer.size) == 3 and int(buffer.insert_pos) == 3
    buffer = add_masked(buffer, jnp.asarray([7.0, 8.0, 9.0]), jnp.asarray([True, True, True]))
    np.testing.assert_array_equal(buffer.data, [9, 2, 3, 7, 8])
    assert int(buffer.size) == 5 and int(buffer.insert_pos) == 1


def _constant_policy(action):
    """Parameters of a ``DeterministicActor(2, ())`` whose action is ``action`` (up to tanh) everywhere."""
    return {"params": {"Dense_0": {"kernel": jnp.zeros((2, 2)), "bias": jnp.arctanh(jnp.asarray(action, jnp.float32))}}}


def test_maze_rollout_fitness_descriptor_and_first_episode_mask():
    task = make_task("DeceptiveMaze-v0", episode_length=50)
    net = DeterministicActor(2, ())
    evaluate = make_evaluate_batch(task, net.apply)
    params = jax.tree.map(lambda a, b: jnp.stack([a, b]), _constant_policy([0.0, -0.999]), _constant_policy([0.999, 0.0]))
    ev = evaluate(jax.random.PRNGKey(0), params)
    # Down from (0, -0.35) at 0.05 a step: the floor at y = -1 after 13 steps, then it stays.
    np.testing.assert_allclose(ev.descriptor[0], [0.0, -1.0], atol=1e-3)
    assert float(ev.fitness[0]) == pytest.approx(-1.6, abs=1e-3)
    # Right at 0.04995 a step: the 13th step would cross the side wall x = 0.6, so it stops at 12 steps.
    assert float(ev.descriptor[1, 0]) == pytest.approx(12 * 0.05 * 0.999, abs=1e-4)
    assert ev.transitions.obs.shape == (2, 50, 2) and bool(ev.transitions.alive.all())
    # The mean reduction averages the per-step descriptor over the first episode's steps only.
    short = make_task("DeceptiveMaze-v0", episode_length=50)._replace(reduce="mean", episode_length=60)
    ev_mean = make_evaluate_batch(short, net.apply)(jax.random.PRNGKey(0), params)
    alive = np.asarray(ev_mean.transitions.alive[0])
    assert alive.sum() == 50 and not alive[50:].any()  # the maze's 50-step limit ends the first episode
    ys = np.maximum(-0.35 - 0.05 * 0.999 * np.arange(1, 51), -1.0)
    assert float(ev_mean.descriptor[0, 1]) == pytest.approx(ys.mean(), abs=1e-3)


def test_brax_uni_task_descriptor_is_a_feet_contact_proportion():
    task = make_task("hopper_uni", episode_length=30)
    assert task.descriptor_dim == 1 and task.fitness_offset == pytest.approx(0.9 * 30)
    net = DeterministicActor(3, (8,))
    params = jax.vmap(net.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 3), jnp.zeros((11,)))
    ev = jax.jit(make_evaluate_batch(task, net.apply))(jax.random.PRNGKey(1), params)
    d = np.asarray(ev.descriptor)
    assert d.shape == (3, 1) and (d >= 0).all() and (d <= 1).all()
    assert (d > 0).any()  # a hopper that starts on the ground touches it


@pytest.mark.parametrize("emitter", ["map_elites", "pga_me", "dcg_me"])
def test_each_emitter_makes_its_batch_and_grows_the_repertoire(emitter):
    cfg = QDConfig(emitter=emitter, batch_size=16, archive="grid", cells=64, hidden_sizes=(8,), critic_hidden_sizes=(16,),
                   critic_steps=4, pg_steps=3, critic_batch_size=32, replay_size=4000, iso_sigma=0.05, line_sigma=0.1)
    split = batch_split(cfg)
    assert sum(split) == 16
    assert split == {"map_elites": (16, 0, 0), "pga_me": (8, 7, 1), "dcg_me": (8, 4, 4)}[emitter]
    agent, pieces = make_qd(cfg, make_task("DeceptiveMaze-v0", episode_length=30), 5, 1)
    hp = qd_hparams(cfg)
    state = agent.init(jax.random.PRNGKey(0), hp)
    first = qd_metrics(state.repertoire, 2.0)
    update = jax.jit(agent.update)
    for i in range(5):
        state, metrics = update(jax.random.PRNGKey(i + 1), state, None, hp)
    assert int(metrics["evaluations"]) == 16 * 6
    assert float(metrics["qd_score"]) > float(first.qd_score)
    if emitter != "map_elites":
        assert int(state.learner.buffer.size) == 16 * 6 * 30 and np.isfinite(float(metrics["critic_loss"]))


def test_qd_run_summary_archive_and_load_policy_choices(tmp_path):
    out = tmp_path / "dcg"
    result = qd(emitter="dcg_me", task="DeceptiveMaze-v0", iterations=4, episode_length=20, batch_size=8, archive="grid",
                cells=16, hidden_sizes=(8,), critic_hidden_sizes=(16,), critic_steps=4, pg_steps=2, critic_batch_size=16,
                replay_size=1000, num_seeds=2, num_chunks=2, eval_episodes=1, quiet=True, out_dir=str(out))
    s = json.loads((out / "summary.json").read_text())
    for name in ("qd_score", "coverage", "max_fitness"):
        assert len(s[f"{name}_per_seed"]) == 2 and s[name] == pytest.approx(np.mean(s[f"{name}_per_seed"]))
    assert 0 < s["coverage"] <= 100 and s["evaluations_per_seed"] == 8 * 5
    assert "distilled_qd_score" in s and 0 <= s["distilled_coverage"] <= 100
    assert (out / "archive.png").is_file() and (out / "archives" / "chunk_002.png").is_file()
    curves = np.load(out / "curves.npz")
    assert curves["qd_score"].shape == (4, 1, 2) and list(curves["evaluations"]) == [16, 24, 32, 40]
    rep = jax.tree.map(lambda x: np.asarray(x[0]), result.state.agent_state.repertoire)
    best = load_policy(out)
    np.testing.assert_array_equal(best.params["params"]["Dense_0"]["bias"],
                                  rep.genotypes["params"]["Dense_0"]["bias"][np.argmax(rep.fitnesses)])
    cell = int(np.flatnonzero(np.isfinite(rep.fitnesses))[0])
    elite = load_policy(out, cell=cell)
    np.testing.assert_array_equal(elite.params["params"]["Dense_1"]["kernel"], rep.genotypes["params"]["Dense_1"]["kernel"][cell])
    by_descriptor = load_policy(out, descriptor=rep.centroids[cell])
    np.testing.assert_array_equal(by_descriptor.params["params"]["Dense_1"]["bias"], elite.params["params"]["Dense_1"]["bias"])
    distilled = load_policy(out, distilled=[0.2, 0.3])
    assert distilled(np.zeros(2)).shape == (2,)
    empty = int(np.flatnonzero(~np.isfinite(rep.fitnesses))[0])
    with pytest.raises(ValueError, match="empty"):
        load_policy(out, cell=empty)


def test_qd_bad_input_is_one_line_before_compiling(tmp_path, capsys):
    """In-process (the entry point's main): exit 2, one line naming the flag, nothing written."""
    from jaxrl.programs import get_program
    from jaxrl.programs.driver import main

    for flags, flag in ((["--emitter", "pga_me", "--replay-size", "100"], "--replay-size"),
                        (["--emitter", "dcg_me", "--injections", "200"], "--injections"),
                        (["--archive", "grid", "--cells", "1000"], "--cells"),
                        (["--task", "hopper"], "--task")):
        assert main(get_program("qd"), [*flags, "--out-dir", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert flag in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.parametrize("emitter,out", [("map_elites", "runs/me"), ("dcg_me", "runs/dcg"), ("pga_me", "runs/pga")])
def test_usage_commands_as_written(emitter, out, tmp_path):
    """The README's commands verbatim (published emitter settings: minutes on a CPU)."""
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "qd.py"), "--emitter", emitter, "--task",
                           "DeceptiveMaze-v0", "--iterations", "20", "--num-seeds", "2", "--out-dir", out],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = json.loads((tmp_path / out / "summary.json").read_text())
    assert len(s["qd_score_per_seed"]) == 2 and s["coverage"] > 0 and (tmp_path / out / "archive.png").is_file()
