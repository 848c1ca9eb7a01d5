"""The experiment CLI end to end: run directory, sweeps, presets, --help and bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from jaxrl.programs import PROGRAMS

from jaxrl.programs.options import load_yaml_config
from jaxrl.programs.train import resolve
from jaxrl.programs import get_program, program_for_config
from jaxrl.programs.driver import resolve as resolve_program
from jaxrl.programs.train import main, run as run_experiment

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--env", "CartPole-v1", "--total-timesteps", "2048", "--num-envs", "4", "--rollout-len", "64",
        "--num-chunks", "2", "--eval-episodes", "2", "--quiet"]


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "experiments" / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_train_cli_writes_complete_run_directory(tmp_path):
    out = tmp_path / "run"
    proc = run_cli(*TINY, "--num-seeds", "3", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("config.yaml", "metrics.jsonl", "learning_curve.png", "summary.json", "curves.npz"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert isinstance(summary["final_return_mean"], float)
    assert len(summary["final_returns"]) == 3
    assert summary["final_return_mean"] == pytest.approx(np.mean(summary["final_returns"]))
    assert summary["total_env_steps"] == 3 * 2048
    assert summary["env_steps_per_second"] > 0 and summary["compile_seconds"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == list(range(1, 9))  # 2048 / (4 * 64) updates
    assert rows[-1]["env_steps"] == 2048
    assert {"return_mean", "return_std", "policy_loss", "value_loss", "entropy", "eval_return_mean", "steps_per_second"} <= set(rows[-1])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["num_seeds"] == 3 and config["rollout_len"] == 64
    # The PNG is a real image.
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_grid_in_one_program(tmp_path):
    out = tmp_path / "sweep"
    code = main([*TINY, "--num-seeds", "2", "--sweep", "lr=1e-3,3e-4", "--sweep", "ent_coef=0.0,0.01", "--out-dir", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    grid = summary["grid"]
    assert [g["hparams"] for g in grid] == [
        {"lr": 1e-3, "ent_coef": 0.0}, {"lr": 1e-3, "ent_coef": 0.01},
        {"lr": 3e-4, "ent_coef": 0.0}, {"lr": 3e-4, "ent_coef": 0.01},
    ]
    assert all(len(g["final_returns"]) == 2 for g in grid)
    assert len(summary["final_returns"]) == 8
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["grid_index"] for r in rows} == {0, 1, 2, 3}


def test_config_file_then_flags_override(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("env: Acrobot-v1\nnum_envs: 8\nlr: 0.001\nhidden_sizes: [32, 32]\n")
    cfg = resolve(["--config", str(preset), "--num-envs", "4"])
    assert cfg.experiment.env == "Acrobot-v1"
    assert cfg.algo.num_envs == 4  # the flag wins
    assert cfg.algo.lr == 0.001 and cfg.algo.hidden_sizes == (32, 32)


def test_every_preset_resolves():
    presets = sorted((ROOT / "configs").glob("*.yaml"))
    assert presets, "no presets in configs/"
    programs = set()
    for preset in presets:
        name = program_for_config(load_yaml_config(str(preset)))
        programs.add(name)
        resolve_program(get_program(name), ["--config", str(preset)])
    assert programs == set(PROGRAMS)  # every program has a preset


def test_help_lists_every_option_with_default():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for flag in ("--env", "--num-seeds", "--total-timesteps", "--sweep", "--config", "--lr", "--num-minibatches",
                 "--clip-eps", "--normalize-obs", "--out-dir", "--eval-episodes"):
        assert flag in proc.stdout, flag
    assert "(default: 0.00025)" in proc.stdout and "[sweepable]" in proc.stdout


BAD_INPUTS = [
    (["--env", "CartPol-v1"], "--env", "CartPole-v1"),
    (["--algo", "ppp"], "--algo", "ppo"),
    (["--num-seeds", "0"], "--num-seeds", ">= 1"),
    (["--num-seeds", "-3"], "--num-seeds", ">= 1"),
    (["--total-timesteps", "abc"], "--total-timesteps", "expected int"),
    (["--num-minibatches", "3"], "--num-minibatches", "does not divide"),
    (["--sweep", "learning_rate=1e-3"], "--sweep", "sweepable: lr"),
    (["--sweep", "lr=1e-3,fast"], "--sweep", "not a number"),
    (["--sweep", "lr"], "--sweep", "name=v1,v2"),
    (["--sweep", "num_envs=4,8"], "--sweep", "cannot be swept"),
    (["--activation", "sigmoid"], "--activation", "choose from"),
    (["--sweep", "lr=1e-3,-1e-3"], "--sweep", "lr must be >= 0.0"),  # swept values keep the option's bounds
    (["--algo", "sac", "--env", "Pendulum-v1", "--init-alpha", "0"], "--init-alpha", "must be > 0"),  # learned as log alpha
    (["--algo", "sac", "--env", "Pendulum-v1", "--sweep", "init_alpha=0.1,0"], "--sweep", "init_alpha must be > 0"),
    (["--no-such-flag", "1"], "unrecognized arguments", "--no-such-flag"),
]


@pytest.mark.parametrize("argv,names,hint", BAD_INPUTS)
def test_bad_input_is_one_clear_line(argv, names, hint, capsys, tmp_path):
    code = main([*argv, "--out-dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert names in err and hint in err, err
    assert not (tmp_path / "x").exists()


def test_bad_config_files(tmp_path, capsys):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("env: CartPole-v1\nnum_env: 4\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("env: [CartPole\n")
    for path, hint in ((unknown, "'num_envs'"), (broken, "not valid YAML"), (tmp_path / "missing.yaml", "does not exist")):
        assert main(["--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and hint in err and "--config" in err, err


def test_existing_run_directory_is_not_overwritten(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "summary.json").write_text("precious")
    proc = run_cli(*TINY, "--out-dir", str(out))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--out-dir" in proc.stderr and "--overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (out / "summary.json").read_text() == "precious"


def test_cartpole_learns_within_100k_steps():
    """Reference hyperparameters: deterministic evaluation return above 200 after 100k steps, on every seed."""
    cfg = resolve(["--env", "CartPole-v1", "--total-timesteps", "100000", "--num-seeds", "2", "--num-chunks", "2",
                   "--eval-episodes", "8", "--quiet"])
    result = run_experiment(cfg, write=False)
    assert min(result.summary["final_returns"]) > 200, result.summary["final_returns"]


def test_repeated_env_kwargs_merge():
    from jaxrl.programs.train import resolve

    cfg = resolve(["--env", "brax/inverted_pendulum", "--env-kwargs", "backend=mjx", "--env-kwargs", "episode_length=500,backend=spring"])
    assert cfg.experiment.env_kwargs == {"backend": "spring", "episode_length": 500}  # merged; a later key wins
