"""A run split over two processes (jax.distributed on loopback, CPU collectives) equals the one-process run.

Each process is a real entry point (``experiments/train.py``, ``experiments/evolve.py``)
started with ``--coordinator-address 127.0.0.1:PORT --num-processes 2 --process-id I``
and one CPU device: the member axis (2 seeds) is split one seed per process,
every process computes only its own seed, process 0 gathers the metrics and
writes the run directory and the checkpoints. A single process (one device,
both seeds) is the reference.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "1024", "--num-envs", "4", "--rollout-len", "32",
         "--hidden-sizes", "8", "--num-epochs", "1", "--num-minibatches", "1", "--num-chunks", "4", "--eval-episodes", "2",
         "--quiet"]
EVOLVE = ["--strategy", "openai_es", "--env", "CartPole-v1", "--population", "4", "--episodes", "1", "--episode-len", "20",
          "--generations", "4", "--num-seeds", "2", "--num-chunks", "2", "--eval-episodes", "1", "--quiet"]
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_process(script: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], env=ENV, capture_output=True,
                          text=True, timeout=300)


def _two_processes(script: str, args: list[str]) -> list[subprocess.CompletedProcess]:
    """Starts processes 1 and 0 of one run; returns their results (process 0 first)."""
    address = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen([sys.executable, str(ROOT / "experiments" / script), *args, "--coordinator-address", address,
                               "--num-processes", "2", "--process-id", str(i)], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    results = []
    for i, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError(f"process {i} of the 2-process run did not finish")
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    single = _one_process("train.py", TRAIN + ["--out-dir", str(root / "one")])
    assert single.returncode == 0, single.stderr[-3000:]
    pair = _two_processes("train.py", TRAIN + ["--out-dir", str(root / "two")])
    for i, r in enumerate(pair):
        assert r.returncode == 0, f"process {i}: {r.stderr[-3000:]}"
    return root, pair


def test_two_processes_train_what_one_process_trains(train_runs):
    root, pair = train_runs
    one, two = _summary(root / "one"), _summary(root / "two")
    assert two["final_returns"] == one["final_returns"]
    assert two["total_env_steps"] == one["total_env_steps"] == 2 * 1024
    with np.load(root / "one" / "curves.npz") as c1, np.load(root / "two" / "curves.npz") as c2:
        assert c1.files == c2.files
        for name in c1.files:
            np.testing.assert_array_equal(c2[name], c1[name])
    rows = [json.loads(line) for line in (root / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1024 // 128  # one row per update, written once (by process 0)
    # Both processes report the same gathered result.
    assert pair[0].stdout.splitlines()[-1].split("|")[0] == pair[1].stdout.splitlines()[-1].split("|")[0]


def test_two_process_run_resumes_from_its_checkpoint(train_runs):
    root, _ = train_runs
    run = root / "resumed"
    shutil.copytree(root / "two", run)
    steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert steps[-1] == 4 and len(steps) >= 2
    for step in steps[steps.index(2) + 1:]:  # as if both processes had been killed after chunk 2
        shutil.rmtree(run / "checkpoints" / str(step))
    (run / "summary.json").unlink()
    pair = _two_processes("train.py", ["--resume", str(run)])
    for i, r in enumerate(pair):
        assert r.returncode == 0, f"process {i}: {r.stderr[-3000:]}"
    assert _summary(run)["final_returns"] == _summary(root / "two")["final_returns"]
    with np.load(root / "two" / "curves.npz") as c1, np.load(run / "curves.npz") as c2:
        for name in c1.files:
            np.testing.assert_array_equal(c2[name], c1[name])
    assert (run / "metrics.jsonl").read_text() .count("\n") == (root / "two" / "metrics.jsonl").read_text().count("\n")


def test_two_processes_evolve_what_one_process_evolves(tmp_path):
    single = _one_process("evolve.py", EVOLVE + ["--out-dir", str(tmp_path / "one")])
    assert single.returncode == 0, single.stderr[-3000:]
    pair = _two_processes("evolve.py", EVOLVE + ["--out-dir", str(tmp_path / "two")])
    for i, r in enumerate(pair):
        assert r.returncode == 0, f"process {i}: {r.stderr[-3000:]}"
    assert _summary(tmp_path / "two")["final_returns"] == _summary(tmp_path / "one")["final_returns"]
    with np.load(tmp_path / "one" / "curves.npz") as c1, np.load(tmp_path / "two" / "curves.npz") as c2:
        for name in c1.files:
            np.testing.assert_array_equal(c2[name], c1[name])


def test_process_zero_refusing_stops_every_process(tmp_path):
    """An out-dir holding a run is refused by process 0; process 1 must not wait forever for it."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "summary.json").write_text("{}")
    pair = _two_processes("train.py", TRAIN + ["--out-dir", str(tmp_path / "taken")])
    assert [r.returncode for r in pair] == [2, 2]
    assert "--out-dir" in pair[0].stderr.strip().splitlines()[-1]
    assert "process 0 refused the run" in pair[1].stderr.strip().splitlines()[-1]
    assert (tmp_path / "taken" / "summary.json").read_text() == "{}"


@pytest.mark.parametrize("argv, environ, message", [
    (["--num-processes", "2", "--process-id", "0"], {}, "--coordinator-address: a multi-process run needs all of"),
    (["--coordinator-address", "nohost", "--num-processes", "2", "--process-id", "0"], {}, "--coordinator-address: expected HOST:PORT"),
    (["--coordinator-address", "h:1", "--num-processes", "two", "--process-id", "0"], {}, "--num-processes: expected an integer"),
    (["--coordinator-address", "h:1", "--num-processes", "2", "--process-id", "2"], {}, "--process-id: must be between 0 and 1"),
    (["--coordinator-address", "h:1", "--num-processes", "0", "--process-id", "0"], {}, "--num-processes: must be >= 1"),
    ([], {"JAX_COORDINATOR_ADDRESS": "h:1"}, "JAX_COORDINATOR_ADDRESS is set: set JAX_NUM_PROCESSES"),
])
def test_bad_distributed_flags_are_refused(argv, environ, message):
    from jaxrl.distributed import DistributedFlagError, parse_distributed

    with pytest.raises(DistributedFlagError, match="^" + message):
        parse_distributed(argv, environ)


def test_distributed_options_from_flags_and_launchers():
    from jaxrl.distributed import parse_distributed

    options, rest = parse_distributed(["--env", "x", "--coordinator-address", "10.0.0.1:1234", "--num-processes", "4",
                                       "--process-id", "3", "--quiet"], {})
    assert (options.coordinator_address, options.num_processes, options.process_id) == ("10.0.0.1:1234", 4, 3)
    assert rest == ["--env", "x", "--quiet"]
    assert parse_distributed([], {})[0].multi_process is False
    assert parse_distributed([], {"SLURM_NTASKS": "1"})[0].multi_process is False  # one task: a plain run
    assert parse_distributed([], {"SLURM_NTASKS": "8"})[0].source == "SLURM"
    assert parse_distributed([], {"OMPI_COMM_WORLD_SIZE": "2"})[0].source == "Open MPI"
    env = {"JAX_COORDINATOR_ADDRESS": "h:9", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}
    assert parse_distributed([], env)[0].process_id == 1


def test_entry_point_bad_flag_is_one_line_and_exit_2(tmp_path):
    proc = _one_process("train.py", ["--num-processes", "2", "--process-id", "0", "--out-dir", str(tmp_path / "x")])
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("train.py: error: --coordinator-address: a multi-process run needs all of "
                                   "--coordinator-address, --num-processes and --process-id")
    assert not (tmp_path / "x").exists()
    help_text = _one_process("evolve.py", ["--help"]).stdout
    assert "--coordinator-address" in help_text and "--process-id" in help_text
