"""Long-run safety: bit-exact resume after SIGKILL, atomic checkpoints, saved policies,
the divergence guard, logging sinks and the reproducibility record."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.programs.train import resolve
from jaxrl.envs.probes import TruncatedConstantReward
from jaxrl.programs.train import main, run as run_experiment
from jaxrl.io import Checkpointer, Progress, load_policy
from jaxrl.io import checkpoint as checkpoint_module

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(ROOT / "experiments" / "train.py")]


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _restore_newest(run_dir):
    ckpt = Checkpointer(Path(run_dir) / "checkpoints")
    step = ckpt.steps()[-1]
    payload = (Path(run_dir) / "checkpoints" / str(step) / "state" / "state.msgpack").read_bytes()
    from flax import serialization

    return step, jax.tree.leaves(serialization.msgpack_restore(payload)["state"])


def test_resume_after_sigkill_is_bit_exact(tmp_path):
    args = ["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "65536", "--num-envs", "4", "--rollout-len", "64",
            "--num-chunks", "32", "--quiet"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert subprocess.run([*TRAIN, *args, "--out-dir", str(ref)], capture_output=True, timeout=600).returncode == 0

    proc = subprocess.Popen([*TRAIN, *args, "--out-dir", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline:
        steps = [int(p.name) for p in (killed / "checkpoints").glob("*") if p.name.isdigit()] if (killed / "checkpoints").exists() else []
        if steps and max(steps) >= 3:
            break
        assert proc.poll() is None, "run finished before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (killed / "summary.json").exists()

    resumed = subprocess.run([*TRAIN, "--resume", str(killed), "--quiet"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads((ref / "summary.json").read_text()), json.loads((killed / "summary.json").read_text())
    assert a["final_returns"] == b["final_returns"]
    strip = lambda r: {k: v for k, v in r.items() if not k.endswith("_per_second")}  # noqa: E731
    rows_a, rows_b = _rows(ref / "metrics.jsonl"), _rows(killed / "metrics.jsonl")
    assert len(rows_a) == len(rows_b) == 256  # 65536 / (4 * 64) updates
    assert [strip(r) for r in rows_a] == [strip(r) for r in rows_b]
    step_a, leaves_a = _restore_newest(ref)
    step_b, leaves_b = _restore_newest(killed)
    assert step_a == step_b
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and np.array_equal(x, y)  # parameters, optimiser, env state, keys: bit-identical


class _State(NamedTuple):
    w: jax.Array
    key: jax.Array
    step: jax.Array


def _state(value):
    return _State(jnp.full((3, 4), value, jnp.float32), jax.random.PRNGKey(value), jnp.asarray(value, jnp.int32))


def test_interrupted_save_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path / "ck", keep=3)
    ckpt.save(1, _state(1), {"chunks_done": 1})
    ckpt.save(2, _state(2), {"chunks_done": 2})

    original = checkpoint_module.MsgpackPyTreeHandler.save

    def crash_midway(self, directory, args):
        (Path(directory) / "state.msgpack").write_bytes(b"\x00partial")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(checkpoint_module.MsgpackPyTreeHandler, "save", crash_midway)
    with pytest.raises(BaseException):
        ckpt.save(3, _state(3), {"chunks_done": 3})
    monkeypatch.setattr(checkpoint_module.MsgpackPyTreeHandler, "save", original)

    fresh = Checkpointer(tmp_path / "ck", keep=3)
    assert fresh.steps() == [1, 2]
    step, state, meta = fresh.restore(jax.eval_shape(lambda: _state(0)))
    assert step == 2 and meta == {"chunks_done": 2}
    np.testing.assert_array_equal(state.w, np.full((3, 4), 2.0))
    assert state.key.dtype == np.uint32 and int(state.step) == 2


def test_damaged_newest_checkpoint_falls_back_and_keep_limit(tmp_path):
    ckpt = Checkpointer(tmp_path / "ck", keep=2)
    for i in range(1, 5):
        ckpt.save(i, _state(i), {"chunks_done": i})
    assert ckpt.steps() == [3, 4]  # only the newest `keep`
    path = tmp_path / "ck" / "4" / "state" / "state.msgpack"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    step, state, _ = ckpt.restore(jax.eval_shape(lambda: _state(0)))
    assert step == 3 and int(state.step) == 3


@jax.tree_util.register_pytree_node_class
class _OpaqueNode:
    """A pytree node flax's state dicts do not know (as MuJoCo XLA's ``Data`` inside a brax ``mjx`` state)."""

    def __init__(self, qpos, qvel):
        self.qpos, self.qvel = qpos, qvel

    def tree_flatten(self):
        return (self.qpos, self.qvel), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


def test_checkpoint_holds_any_registered_pytree_and_reads_the_earlier_format(tmp_path):
    from flax import serialization

    state = {"env": _OpaqueNode(np.arange(3.0, dtype=np.float32), np.ones((2, 2), np.int32)), "step": np.int32(7)}
    ckpt = Checkpointer(tmp_path / "ck")
    ckpt.save(1, state, {"chunks_done": 1})
    _, restored, _ = ckpt.restore(jax.eval_shape(lambda: state))
    assert isinstance(restored["env"], _OpaqueNode) and int(restored["step"]) == 7
    np.testing.assert_array_equal(restored["env"].qpos, state["env"].qpos)
    np.testing.assert_array_equal(restored["env"].qvel, state["env"].qvel)
    # A checkpoint in the earlier payload format (flax state dicts) still restores.
    older = _state(5)
    handler = checkpoint_module.MsgpackPyTreeHandler()
    (tmp_path / "old").mkdir()
    payload = serialization.msgpack_serialize(serialization.to_state_dict(older))
    (tmp_path / "old" / "state.msgpack").write_bytes(payload)
    import hashlib

    (tmp_path / "old" / "state.sha256").write_text(hashlib.sha256(payload).hexdigest())
    template = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), jax.eval_shape(lambda: _state(0)))
    back = handler.restore(tmp_path / "old", checkpoint_module.MsgpackRestore(template))
    assert int(back.step) == 5


TINY = ["--env", "CartPole-v1", "--total-timesteps", "4096", "--num-envs", "4", "--rollout-len", "64",
        "--num-chunks", "4", "--eval-episodes", "4", "--quiet"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main([*TINY, "--num-seeds", "2", "--normalize-obs", "--out-dir", str(out)]) == 0
    return out


def test_load_policy_acts_like_training(tiny_run):
    policy = load_policy(tiny_run, member=1)
    env = envs.make("CartPole-v1")
    _, obs = env.reset(jax.random.PRNGKey(0), env.default_params)
    action = policy(obs)
    assert action.shape == () and action.dtype == jnp.int32
    batch = jnp.stack([obs, obs * 0.5])
    assert policy(batch).shape == (2,)
    assert policy.obs_stats is not None  # the run normalised observations: stats are carried over
    with pytest.raises(ValueError):
        load_policy(tiny_run, member=2)


def test_evaluate_policy_cli(tiny_run, tmp_path):
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "evaluate_policy.py"), "--run", str(tiny_run),
                           "--episodes", "5", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "seed 0:" in proc.stdout and "seed 1:" in proc.stdout
    result = json.loads(out.read_text())
    assert [len(m["returns"]) for m in result["members"]] == [5, 5]
    assert all(r >= 1 for m in result["members"] for r in m["returns"])  # CartPole pays 1 per step


def test_reproducibility_record(tiny_run):
    record = json.loads((tiny_run / "reproducibility.json").read_text())
    assert record["packages"]["jax"] == jax.__version__
    assert record["jax_backend"] == "cpu" and record["devices"]
    assert "--out-dir" in record["command_line"]
    assert "git_commit" in record


@pytest.mark.parametrize("argv,hint", [
    (["--resume", "{missing}"], "not a run directory"),
    (["--resume", "{no_ckpt}"], "no committed checkpoint"),
    (["--resume", "{run}", "--lr", "1"], "give only --resume"),
])
def test_resume_bad_input(argv, hint, tiny_run, tmp_path, capsys):
    no_ckpt = tmp_path / "no_ckpt"
    no_ckpt.mkdir()
    (no_ckpt / "config.yaml").write_text("env: CartPole-v1\n")
    subs = {"missing": str(tmp_path / "missing"), "no_ckpt": str(no_ckpt), "run": str(tiny_run)}
    before = (tiny_run / "summary.json").read_text()
    assert main([a.format(**subs) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and hint in err and "--resume" in err, err
    assert (tiny_run / "summary.json").read_text() == before


def test_resume_with_every_checkpoint_damaged(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--keep-checkpoints", "2", "--out-dir", str(out)]) == 0
    for f in (out / "checkpoints").glob("*/state/state.msgpack"):
        f.write_bytes(b"garbage")
    summary = (out / "summary.json").read_text()
    assert main(["--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no intact checkpoint" in err, err
    assert (out / "summary.json").read_text() == summary


class NaNAfter(envs.Wrapper):
    """Reward 1 per step (a truncated constant-reward probe), until the env has taken
    ``limit`` steps in total; NaN after that."""

    def __init__(self, limit: int = 1000):
        super().__init__(TruncatedConstantReward())
        self.limit = limit

    def reset(self, key, params):
        state, obs = self.env.reset(key, params)
        return (state, jnp.zeros((), jnp.int32)), obs

    def step(self, key, state, action, params):
        inner, total = state
        inner, ts = self.env.step(key, inner, action, params)
        reward = jnp.where(total >= self.limit, jnp.nan, ts.reward)
        return (inner, total + 1), ts._replace(reward=reward)


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path, capsys):
    envs.register("test/NaNAfter", NaNAfter)
    out = tmp_path / "nan"
    # 4 envs x 16 steps = 64 steps per update per env-set; each env reaches 1000 steps at update 63.
    cfg = resolve(["--env", "test/NaNAfter", "--total-timesteps", str(64 * 100), "--num-envs", "4", "--rollout-len", "16",
                   "--num-minibatches", "2", "--num-chunks", "10", "--num-seeds", "2", "--eval-episodes", "2",
                   "--quiet", "--out-dir", str(out)])
    result = run_experiment(cfg, write=True)
    err = capsys.readouterr().err
    assert result.diverged
    assert "non-finite" in err and "seed 0" in err and "seed 1" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged"
    bad = summary["diverged_members"]
    assert [m["seed"] for m in bad] == [0, 1]
    assert all(m["update"] == 63 for m in bad), bad  # the first update whose rollout holds a NaN reward
    # chunks of 10 updates: the NaN appears in chunk 7, so chunks 1-6 were checkpointed and nothing after.
    steps = Checkpointer(out / "checkpoints").steps()
    assert steps[-1] == 6
    rows = _rows(out / "metrics.jsonl")
    assert rows[-1]["update"] == 70  # what it had is written, up to the end of the diverged chunk
    assert main(["--resume", str(out), "--quiet"]) in (0, 3)  # the kept checkpoint is loadable


def test_nan_policy_mask_keeps_sweep_running(tmp_path, capsys):
    out = tmp_path / "mask"
    code = main([*TINY, "--num-seeds", "2", "--sweep", "lr=2.5e-4,1e30", "--nan-policy", "mask", "--out-dir", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert {(m["grid_index"], m["seed"]) for m in summary["diverged_members"]} == {(1, 0), (1, 1)}
    assert summary["grid"][1]["final_returns"] == [None, None]
    assert all(r is not None and r > 0 for r in summary["grid"][0]["final_returns"])
    assert "grid point 1 (lr=1e+30)" in capsys.readouterr().err


def test_tensorboard_and_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "logged"
    assert main([*TINY, "--tensorboard", "--wandb", "--out-dir", str(out)]) == 0
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert b"return_mean" in events[0].read_bytes()
    assert list((out / "wandb").glob("offline-run-*"))


def test_progress_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(1000, stream=stream)
    progress.update(500, 250.0, **{"return": 12.5})
    progress.update(1000, 250.0, **{"return": 20.0})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].startswith("[ 50.0%]") and "return 12.5" in lines[0] and "250 steps/s" in lines[0] and "ETA 0:00:02" in lines[0]


def test_progress_eta_of_many_members():
    """Steps count one member's, throughput all members': 10 members at 250 steps/s together do one member's
    remaining 500 steps in 20 s."""
    stream = io.StringIO()
    Progress(1000, stream=stream, members=10).update(500, 250.0)
    assert "250 steps/s" in stream.getvalue() and "ETA 0:00:20" in stream.getvalue()


def test_progress_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = Progress(1000, stream=stream)
    progress.update(250, 100.0)
    progress.close()
    assert stream.getvalue().startswith("\r[######------------------]") and stream.getvalue().endswith("\n")


def test_overwrite_clears_the_previous_runs_checkpoints(tmp_path):
    out = tmp_path / "again"
    assert main([*TINY, "--out-dir", str(out)]) == 0
    assert Checkpointer(out / "checkpoints").steps() == [2, 3, 4]
    (out / "notes.txt").write_text("mine")
    assert main([*TINY, "--num-chunks", "2", "--out-dir", str(out), "--overwrite"]) == 0
    assert Checkpointer(out / "checkpoints").steps() == [1, 2]  # no stale step 3/4 to resume from
    assert (out / "notes.txt").read_text() == "mine"  # files jaxrl did not write are left alone
