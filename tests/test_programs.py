"""The run lifecycle, written once and run over every program on the one driver.

For each of train, evolve, meta_train, ued and qd (tiny configurations):

* a run writes a complete run directory (config, metrics, curves, summary, reproducibility record,
  figures, checkpoints) and its ``config.yaml`` names the program;
* a run interrupted after a checkpoint whose newest checkpoint is then damaged (its state file
  truncated) resumes from the one before, completes, and ends bit-identical to the uninterrupted run
  (metrics rows, summary, final checkpoint);
* bad input exits 2 with one line naming the flag, before compiling, with nothing written or overwritten;
* a diverging run stops with exit 3, ``status: diverged``, and keeps its last good checkpoint;
* ``--sweep`` over a traced option is one program whose summary has a grid.

Sharded and batched members against one device are in test_parallel.py (a child process with
several host devices); a real SIGKILL of an entry point is in test_run_lifecycle.py.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from jaxrl.io import Checkpointer
from jaxrl.programs import get_program
from jaxrl.programs.driver import main

TINY = {
    "train": ["--env", "CartPole-v1", "--total-timesteps", "2048", "--num-envs", "4", "--rollout-len", "64",
              "--num-minibatches", "2", "--num-epochs", "2", "--hidden-sizes", "16", "--num-seeds", "2",
              "--eval-episodes", "2"],
    "evolve": ["--strategy", "openai_es", "--env", "CartPole-v1", "--population", "8", "--episodes", "1",
               "--episode-len", "50", "--generations", "8", "--hidden-sizes", "8", "--num-seeds", "2", "--eval-episodes", "2"],
    "meta_train": ["--objective", "lpo", "--env", "CartPole-v1", "--population", "4", "--seeds-per-member", "1",
                   "--generations", "4", "--drift-hidden", "8", "--drift-init", "random", "--inner-timesteps", "1024", "--inner-eval-episodes", "2",
                   "--eval-episodes", "1"],
    "ued": ["--method", "accel", "--env", "Maze", "--total-timesteps", "1024", "--num-levels", "4", "--rollout-len", "32",
            "--num-minibatches", "2", "--num-epochs", "1", "--hidden-sizes", "16", "--capacity", "16", "--min-fill", "0.25",
            "--num-edits", "2", "--max-steps", "40", "--num-seeds", "2", "--eval-episodes", "1"],
    "qd": ["--emitter", "dcg_me", "--task", "DeceptiveMaze-v0", "--iterations", "8", "--episode-length", "20",
           "--batch-size", "8", "--archive", "grid", "--cells", "16", "--hidden-sizes", "8", "--critic-hidden-sizes", "16",
           "--critic-steps", "4", "--pg-steps", "2", "--critic-batch-size", "16", "--replay-size", "1000",
           "--num-seeds", "2", "--eval-episodes", "1"],
    "adversarial": ["--method", "qarl", "--env", "CartPole-v1", "--total-timesteps", "256", "--learning-starts", "64",
                    "--batch-size", "32", "--buffer-size", "1000", "--hidden-sizes", "16", "--worst-case-steps", "128",
                    "--teacher-samples", "2", "--num-seeds", "2", "--eval-episodes", "2"],
    "reward_opt": ["--method", "barfi", "--env", "CartPole-v1", "--heuristic", "misspecified", "--outer-iterations", "8",
                   "--episodes", "2", "--inner-steps", "2", "--horizon", "40", "--hidden-sizes", "8",
                   "--reward-hidden-sizes", "8", "--num-seeds", "2", "--eval-episodes", "2"],
}
RUN = ["--num-chunks", "4", "--quiet"]
STEP_NAME = {"train": "update", "evolve": "generation", "meta_train": "generation", "ued": "update", "qd": "iteration",
             "adversarial": "update", "reward_opt": "iteration"}
FIGURES = {"train": ["learning_curve.png"], "evolve": ["fitness_curve.png"],
           "meta_train": ["fitness_curve.png", "best/objective.json", "final/objective.json"],
           "ued": ["solve_rate_curve.png", "held_out_levels.png", "held_out_trajectories.png", "buffer_levels.png"],
           "qd": ["qd_curves.png", "archive.png", "archives/chunk_004.png"],
           "adversarial": ["learning_curve.png", "robustness.npz"],
           "reward_opt": ["learning_curve.png", "reward_terms.png", "learned_reward.png", "learned_reward.npz"]}
# A bad value of each program's own options (besides the shared ones), with the flag the message must name.
BAD_INPUT = {
    "train": (["--env-kwargs", "no_such_option=1"], "--env-kwargs"),
    "evolve": (["--env-kwargs", "no_such_option=1"], "--env-kwargs"),
    "meta_train": (["--population", "5"], "--population"),
    "ued": (["--replay-prob", "1.5"], "--replay-prob"),
    "qd": (["--cells", "15"], "--cells"),
    "adversarial": (["--teacher-samples", "200"], "--teacher-samples"),
    "reward_opt": (["--method", "naive", "--hypergradient", "unrolled"], "--hypergradient"),
}
# What makes each program diverge: an absurd step size.
DIVERGE = {
    "train": ["--lr", "1e30"],
    "evolve": ["--lr", "1e38", "--sigma", "1e38"],
    "meta_train": ["--lr", "1e38", "--sigma", "1e38"],
    "ued": ["--lr", "1e30"],
    "qd": ["--critic-lr", "1e38"],
    "adversarial": ["--lr", "1e30", "--q-lr", "1e30"],
    "reward_opt": ["--actor-lr", "1e30", "--reward-lr", "1e30"],
}
PROGRAM_NAMES = list(TINY)


def _argv(name: str, out: Path, *extra) -> list[str]:
    return [*TINY[name], *RUN, *extra, "--out-dir", str(out)]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _timing_free(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.endswith("_per_second")}


def _checkpoint_leaves(run_dir: Path, step: int) -> list:
    payload = (run_dir / "checkpoints" / str(step) / "state" / "state.msgpack").read_bytes()
    return jax.tree.leaves(serialization.msgpack_restore(payload)["state"]["runner"])


@pytest.fixture(scope="module", params=PROGRAM_NAMES)
def reference(request, tmp_path_factory):
    """One uninterrupted tiny run of each program: ``(name, run directory)``."""
    name = request.param
    out = tmp_path_factory.mktemp(name) / "reference"
    assert main(get_program(name), _argv(name, out)) == 0
    return name, out


def test_complete_run_directory(reference):
    name, out = reference
    for file in ["config.yaml", "metrics.jsonl", "curves.npz", "summary.json", "reproducibility.json", *FIGURES[name]]:
        assert (out / file).is_file(), file
    assert "program: " + name in (out / "config.yaml").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["program"] == name and summary["status"] == "completed"
    assert len(summary["final_returns"]) == summary["num_seeds"] == (1 if name == "meta_train" else 2)
    assert summary["compile_seconds"] > 0 and isinstance(summary["compile_from_cache"], bool)
    rows = _rows(out / "metrics.jsonl")
    assert rows[-1][STEP_NAME[name]] == summary["num_updates"]
    assert "eval_return_mean" in rows[-1]
    assert Checkpointer(out / "checkpoints").steps() == [2, 3, 4]
    record = json.loads((out / "reproducibility.json").read_text())
    assert record["packages"]["jax"] == jax.__version__ and "--out-dir" in record["command_line"]


def test_interrupted_run_with_a_damaged_checkpoint_resumes_bit_identical(reference, tmp_path):
    """Interrupted after chunk 3 (its summary not yet written), then chunk 3's checkpoint truncated:
    ``--resume`` restores chunk 2, sets the damaged one aside, saves chunk 3 again and completes."""
    name, ref = reference
    run = tmp_path / "interrupted"
    shutil.copytree(ref, run)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "checkpoints" / "4")  # the run was killed before its last chunk finished
    for extra in ("best", "final"):
        if (run / extra).is_dir():
            shutil.rmtree(run / extra)
    state_file = run / "checkpoints" / "3" / "state" / "state.msgpack"
    state_file.write_bytes(state_file.read_bytes()[: state_file.stat().st_size // 2])
    assert main(get_program(name), ["--resume", str(run), "--quiet"]) == 0
    assert (run / "checkpoints" / "damaged" / "3").is_dir()  # set aside, not deleted
    a, b = json.loads((ref / "summary.json").read_text()), json.loads((run / "summary.json").read_text())
    assert a["final_returns"] == b["final_returns"] and b["status"] == "completed"
    rows_a, rows_b = _rows(ref / "metrics.jsonl"), _rows(run / "metrics.jsonl")
    assert [_timing_free(r) for r in rows_a] == [_timing_free(r) for r in rows_b]
    for x, y in zip(_checkpoint_leaves(ref, 4), _checkpoint_leaves(run, 4), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_bad_input_exits_2_and_touches_nothing(name, tmp_path, capsys):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "summary.json").write_text("mine")
    flags, flag = BAD_INPUT[name]
    assert main(get_program(name), [*TINY[name], *flags, "--quiet", "--out-dir", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and flag in err and "Traceback" not in err, err
    assert not (tmp_path / "new").exists()
    # An existing run directory is refused, not overwritten.
    assert main(get_program(name), [*TINY[name], "--quiet", "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out-dir" in err and "--overwrite" in err
    assert (out / "summary.json").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["summary.json"]


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_divergence_stops_with_exit_3_and_keeps_the_last_good_checkpoint(name, tmp_path, capsys):
    out = tmp_path / "diverged"
    assert main(get_program(name), _argv(name, out, *DIVERGE[name])) == 3
    err = capsys.readouterr().err
    assert "non-finite" in err and "stopped: a member diverged" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["diverged_members"]
    chunks_done = len(np.load(out / "curves.npz")["eval_returns"])
    assert Checkpointer(out / "checkpoints").steps()[-1:] in ([], [chunks_done - 1])  # nothing saved after divergence


# The tiny UED run fills its 16-level buffer with a level or two in 8 updates: with TINY's min_fill 0.25 it
# never replays, so replay_prob could not take effect; at 1/16 it replays once one level is scored.
SWEEP_EXTRA = {"ued": ["--min-fill", "0.0625"]}


@pytest.mark.parametrize("name,sweep", [("train", "lr=1e-3,3e-3"), ("evolve", "sigma=0.03,0.1"),
                                        ("ued", "replay_prob=0.0,1.0"), ("qd", "iso_sigma=0.01,0.1"),
                                        ("adversarial", "performance_threshold=0,1000000"),
                                        ("reward_opt", "actor_lr=0.001,0.01")])
def test_sweep_over_a_traced_option_is_one_program_with_a_grid(name, sweep, tmp_path):
    out = tmp_path / "sweep"
    assert main(get_program(name), _argv(name, out, *SWEEP_EXTRA.get(name, []), "--sweep", sweep)) == 0
    summary = json.loads((out / "summary.json").read_text())
    key, values = sweep.split("=")
    assert [p["hparams"] for p in summary["grid"]] == [{key: float(v)} for v in values.split(",")]
    assert len(summary["final_returns"]) == 4  # 2 grid points x 2 seeds
    rows = _rows(out / "metrics.jsonl")
    assert {r[key] for r in rows} == {float(v) for v in values.split(",")}
    # Grid points share their seed keys, so they differ only through the swept value, and it took effect.
    per_point = [[_timing_free({k: v for k, v in r.items() if k not in ("grid_index", key)}) for r in rows
                  if r["grid_index"] == g] for g in (0, 1)]
    assert per_point[0] != per_point[1]


def test_unknown_sweep_names_the_sweepable_options(capsys, tmp_path):
    assert main(get_program("ued"), [*TINY["ued"], "--sweep", "replay_probability=0.5", "--out-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'replay_prob'" in err and "sweepable:" in err and "temperature" in err
