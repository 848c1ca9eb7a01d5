"""Members sharded over devices and run in sequential batches compute what one device computes.

XLA's host platform only splits into several devices if ``XLA_FLAGS`` says so
before JAX starts, and tests share one process, so the sharded runs happen in
a child process (this file run as a script) with four CPU devices; the parent
compares its results.

* Training: 2 seeds x 2 learning rates (4 members) on one device against
  ``--devices 2 --seed-batch 2`` (two sequential batches of 2 members, each
  split one member per device): the same compiled program for both batches.
* Evolution: 4 seeds on one device against ``--devices 2`` (two seeds per device).

(Found while writing this test:) the partitioned program is the vmapped
program for the per-device batch (``M / D`` members instead of ``M``), and
XLA:CPU may fuse some arithmetic differently for another batch size (the same
1-ulp effect as a vmapped member against a single run, see
test_invariance.py). Training therefore agrees to float32 rounding (parameters
differ by ~1e-9), while returns, curves, keys and integer state are identical.
Evolution with two seeds per device is bitwise identical; with one seed per
device (``--devices 4``) its parameters differ in the last bit too.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxrl.config import ConfigError
from jaxrl.programs.train import resolve
from jaxrl.parallel import concat_members, plan_members, split_members

TRAIN = dict(env="CartPole-v1", num_seeds=2, total_timesteps=512, num_envs=4, rollout_len=32, hidden_sizes=(8,),
             num_epochs=1, num_minibatches=1, num_chunks=2, eval_episodes=1, quiet=True, sweep={"lr": [1e-3, 3e-3]})
UED = dict(method="robust_plr", num_seeds=4, total_timesteps=4 * 16 * 4, num_levels=4, rollout_len=16, num_minibatches=2,
           num_epochs=1, hidden_sizes=(16,), capacity=8, min_fill=0.25, num_chunks=2, eval_episodes=1, max_steps=30, quiet=True)
EVOLVE = dict(strategy="openai_es", env="CartPole-v1", population=4, episodes=1, episode_len=20, generations=2,
              num_seeds=4, num_chunks=2, eval_episodes=1, quiet=True)


def _child(out: Path) -> None:
    """Runs in a process with four host devices; saves every run's state and curves to ``out``."""
    import jax

    from jaxrl.programs.ued import ued
    from jaxrl.programs.evolve import evolve
    from jaxrl.programs.train import train

    assert jax.local_device_count() == 4
    runs = {
        "train_one": train(**TRAIN, out_dir=str(out / "train_one")),
        "train_split": train(**TRAIN, devices=2, seed_batch=2, out_dir=str(out / "train_split")),
        "evolve_one": evolve(**EVOLVE),
        "evolve_two": evolve(**EVOLVE, devices=2),
        "evolve_batched": evolve(**EVOLVE, devices=2, seed_batch=2),
    }
    summaries = {"ued_one": ued(**UED, out_dir=str(out / "ued_one")).summary,
                 "ued_split": ued(**UED, devices=2, seed_batch=2, out_dir=str(out / "ued_split")).summary}
    (out / "ued_summaries.json").write_text(json.dumps(summaries))
    arrays = {}
    for name, result in runs.items():
        state = result.state
        for i, leaf in enumerate(jax.tree.leaves(jax.device_get(state))):
            arrays[f"{name}/state/{i}"] = np.asarray(jax.random.key_data(leaf) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf)
        arrays[f"{name}/eval_returns"] = np.asarray(result.curves["eval_returns"])
    sharding = jax.tree.leaves(runs["evolve_two"].state)[0].sharding
    arrays["evolve_two/num_devices"] = np.asarray(len(sharding.device_set))
    np.savez(out / "results.npz", **arrays)


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    out = tmp_path_factory.mktemp("parallel")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out / "results.npz") as data:
        return out, dict(data)


def _states(arrays, name):
    keys = sorted((k for k in arrays if k.startswith(f"{name}/state/")), key=lambda k: int(k.rsplit("/", 1)[1]))
    return [arrays[k] for k in keys]


def test_sharded_and_batched_training_equals_one_device(child):
    out, arrays = child
    one, split = _states(arrays, "train_one"), _states(arrays, "train_split")
    assert len(one) == len(split)
    for a, b in zip(one, split):
        assert a.shape == b.shape and a.dtype == b.dtype
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        else:  # keys, counters, env steps: exact
            np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(arrays["train_split/eval_returns"], arrays["train_one/eval_returns"])
    # Same run directory: the learning curves and summaries agree.
    with np.load(out / "train_one" / "curves.npz") as c1, np.load(out / "train_split" / "curves.npz") as c2:
        for name in c1.files:
            np.testing.assert_array_equal(c2[name], c1[name])
    s1, s2 = (json.loads((out / d / "summary.json").read_text()) for d in ("train_one", "train_split"))
    assert s1["final_returns"] == s2["final_returns"]
    assert (out / "train_split" / "checkpoints").is_dir()


def test_sharded_evolution_is_bitwise_equal(child):
    _, arrays = child
    assert int(arrays["evolve_two/num_devices"]) == 2
    for a, b in zip(_states(arrays, "evolve_one"), _states(arrays, "evolve_two"), strict=True):
        np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(arrays["evolve_two/eval_returns"], arrays["evolve_one/eval_returns"])


def test_batched_evolution_equals_one_batch(child):
    """Two sequential batches of 2 seeds (each split over 2 devices) against 4 seeds on one device."""
    _, arrays = child
    for a, b in zip(_states(arrays, "evolve_one"), _states(arrays, "evolve_batched"), strict=True):
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(arrays["evolve_batched/eval_returns"], arrays["evolve_one/eval_returns"])


def test_sharded_and_batched_curriculum_equals_one_device(child):
    """robust PLR (level buffer and all) with 4 seeds: --devices 2 --seed-batch 2 against one device."""
    out, _ = child
    summaries = json.loads((out / "ued_summaries.json").read_text())
    one, split = summaries["ued_one"], summaries["ued_split"]
    assert split["final_returns"] == one["final_returns"]
    assert split["held_out_solve_rates"] == one["held_out_solve_rates"]
    with np.load(out / "ued_one" / "curves.npz") as c1, np.load(out / "ued_split" / "curves.npz") as c2:
        np.testing.assert_array_equal(c2["eval_returns"], c1["eval_returns"])
    assert (out / "ued_split" / "buffer_levels.png").is_file()


def test_split_and_concat_members_round_trip():
    tree = {"a": np.arange(12).reshape(6, 2), "b": np.arange(6.0)}
    parts = split_members(tree, 3)
    assert [p["a"].shape for p in parts] == [(2, 2)] * 3
    np.testing.assert_array_equal(parts[1]["b"], [2.0, 3.0])
    back = concat_members(parts)
    for k in tree:
        np.testing.assert_array_equal(back[k], tree[k])


@pytest.mark.parametrize("devices, num_seeds, num_grid, seed_batch, available, expected", [
    ("1", 3, 1, 0, 1, (1, 3)),
    ("all", 4, 2, 0, 4, (4, 8)),
    (2, 8, 1, 4, 4, (2, 4)),
])
def test_plan_members(devices, num_seeds, num_grid, seed_batch, available, expected):
    assert plan_members(devices, num_seeds, num_grid, seed_batch, available) == expected


@pytest.mark.parametrize("devices, num_seeds, num_grid, seed_batch, available, message", [
    ("all", 3, 1, 0, 4, "--devices: 3 members (--num-seeds 3) do not split evenly over 4 devices"),
    ("4", 3, 2, 0, 4, "--devices: 6 members (--num-seeds 3 x 2 grid points) do not split evenly over 4 devices"),
    ("8", 8, 1, 0, 4, "--devices: 8 requested but only 4 local devices are available"),
    ("two", 2, 1, 0, 4, "--devices: expected 'all' or a number of devices, got 'two'"),
    ("0", 2, 1, 0, 4, "--devices: must be >= 1"),
    ("1", 6, 1, 4, 4, "--seed-batch: 4 does not divide the 6 members (--num-seeds 6)"),
    ("4", 8, 1, 2, 4, "--seed-batch: a batch of 2 members does not split evenly over 4 devices"),
])
def test_plan_members_refuses(devices, num_seeds, num_grid, seed_batch, available, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        plan_members(devices, num_seeds, num_grid, seed_batch, available)


def test_cli_refuses_before_compiling(capsys):
    from jaxrl.programs.evolve import main as evolve_main
    from jaxrl.programs.train import main as train_main

    with pytest.raises(ConfigError, match="--seed-batch: 3 does not divide the 4 members"):
        resolve(["--num-seeds", "4", "--seed-batch", "3"])
    assert train_main(["--num-seeds", "2", "--devices", "64", "--out-dir", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train.py: error: --devices: 64 requested but only") and "\n" not in err
    assert evolve_main(["--num-seeds", "3", "--devices", "x", "--out-dir", "/nonexistent/y"]) == 2
    assert capsys.readouterr().err.startswith("evolve.py: error: --devices: expected 'all' or a number")


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
