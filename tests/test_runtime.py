"""XLA:CPU's thread pool sized per run (jaxrl.runtime, --cpu-threads): reading the option before JAX starts, and a real run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from jaxrl.runtime import cpu_threads_for_argv, size_cpu_thread_pool

ROOT = Path(__file__).resolve().parents[1]
TINY_DQN = ["--algo", "dqn", "--env", "CartPole-v1", "--total-timesteps", "3000", "--learning-starts", "500",
            "--num-chunks", "2", "--eval-episodes", "2", "--quiet"]


@pytest.mark.parametrize("argv, threads", [
    ([], 0),                                                    # XLA's default
    (["--num-seeds", "1", "--cpu-threads", "1"], 1),
    (["--cpu-threads=3"], 3),
    (["--cpu-threads", "many"], 0),                             # unreadable: the default; resolve() reports it
])
def test_threads_read_from_flags(argv, threads):
    assert cpu_threads_for_argv(argv) == threads


def test_threads_read_from_config_and_resumed_run(tmp_path):
    config = tmp_path / "preset.yaml"
    config.write_text(yaml.safe_dump({"algo": "dqn", "num_seeds": 1, "cpu_threads": 1}))
    assert cpu_threads_for_argv(["--config", str(config)]) == 1
    assert cpu_threads_for_argv(["--config", str(config), "--cpu-threads", "0"]) == 0  # a flag overrides the file
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"num_seeds": 1, "cpu_threads": 1}))
    assert cpu_threads_for_argv(["--resume", str(run)]) == 1
    assert cpu_threads_for_argv(["--config", str(tmp_path / "missing.yaml")]) == 0  # resolve() will report the file


def test_no_effect_once_jax_has_started():
    import jax

    jax.devices()
    assert size_cpu_thread_pool(1) is False


def _threads_and_affinity(threads: int) -> dict:
    """In a fresh interpreter: size the pool, run a jitted function, report the pool and every thread's mask."""
    code = f"""
import json, os
from jaxrl.runtime import size_cpu_thread_pool, intra_op_pool_threads
sized = size_cpu_thread_pool({threads})
import jax, jax.numpy as jnp
jax.jit(lambda x: jnp.tanh(x) @ x)(jnp.ones((256, 256))).block_until_ready()
masks = {{t: sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}}
print(json.dumps({{"sized": sized, "pool": intra_op_pool_threads(), "masks": masks, "cores": sorted(os.sched_getaffinity(0))}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity masks and at least two cores")
def test_pool_sized_and_every_thread_keeps_all_cores():
    narrow = _threads_and_affinity(1)
    assert narrow["sized"] is True and narrow["pool"] == 1
    assert all(mask == narrow["cores"] for mask in narrow["masks"].values())  # only the pool's size changed
    default = _threads_and_affinity(0)
    assert default["sized"] is False and default["pool"] == len(default["cores"])


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity masks and at least two cores")
def test_train_cli_one_thread_gives_the_same_results(tmp_path):
    summaries, curves = {}, {}
    for threads in ("1", "0"):  # one thread, and XLA's default of one per core
        out = tmp_path / f"threads{threads}"
        proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "train.py"), *TINY_DQN,
                               "--cpu-threads", threads, "--out-dir", str(out)],
                              cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
        assert proc.returncode == 0, proc.stderr
        summaries[threads] = json.loads((out / "summary.json").read_text())
        with np.load(out / "curves.npz") as c:
            curves[threads] = {k: c[k] for k in c.files}
    assert summaries["1"]["cpu_intra_op_threads"] == 1
    assert summaries["0"]["cpu_intra_op_threads"] == len(os.sched_getaffinity(0))
    assert summaries["1"]["final_returns"] == summaries["0"]["final_returns"]
    for name, values in curves["1"].items():  # the pool's size changes the speed, not a single number
        np.testing.assert_array_equal(values, curves["0"][name], err_msg=name)
