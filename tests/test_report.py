"""The report command on real (tiny) run directories: every file written, grouping by method,
environment and sweep grid point, normalisation, and bad input refused before anything is written."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrl.evaluation.report import REPORT_FILES
from jaxrl.evaluation.report_cli import main as report_main
from jaxrl.programs.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
EVALUATE = [sys.executable, str(ROOT / "experiments" / "evaluate.py")]
TINY = ["--total-timesteps", "2048", "--num-envs", "4", "--rollout-len", "64", "--num-chunks", "2",
        "--eval-episodes", "4", "--hidden-sizes", "16", "--checkpoint-every", "0", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two run directories: the same learning-rate sweep (2 grid points x 3 seeds) on CartPole and on Acrobot."""
    root = tmp_path_factory.mktemp("runs")
    dirs = {
        "sweep_cp": ["--env", "CartPole-v1", "--num-seeds", "3", "--sweep", "lr=1e-3,1e-4"],
        "sweep_ac": ["--env", "Acrobot-v1", "--num-seeds", "3", "--sweep", "lr=1e-3,1e-4"],
    }
    for name, args in dirs.items():
        assert train_main([*args, *TINY, "--out-dir", str(root / name)]) == 0
    return root


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_writes_every_file_with_groups_per_grid_point(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert report_main([str(runs / "sweep_cp"), str(runs / "sweep_ac"), "--out", str(out), "--reps", "200"]) == 0
    for name in REPORT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    per_task = _csv(out / "per_task.csv")
    # one row per (method, environment): the sweep gives a method per grid point.
    assert {(row["method"], row["env"], row["runs"]) for row in per_task} == {
        (f"ppo [lr={lr}]", env, "3") for lr in ("0.001", "0.0001") for env in ("CartPole-v1", "Acrobot-v1")}
    methods = {row["method"] for row in per_task}

    # CartPole and Acrobot are both in the score table, so the aggregates are of normalised scores
    # over 3 runs x 2 environments, and every interval brackets its point estimate.
    aggregates = _csv(out / "aggregates.csv")
    assert {(row["method"], row["metric"]) for row in aggregates} == {
        (m, metric) for m in methods for metric in ("median", "iqm", "mean", "optimality_gap")}
    for row in aggregates:
        assert (row["num_runs"], row["num_envs"], row["normalised"]) == ("3", "2", "True")
        est, lo, hi = float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"])
        assert lo - 1e-9 <= est <= hi + 1e-9, row
    report = (out / "report.md").read_text()
    assert "normalised per environment" in report and "IQM" in report

    poi = _csv(out / "probability_of_improvement.csv")
    assert len(poi) == 2  # ordered pairs of distinct methods
    for row in poi:
        assert 0.0 <= float(row["ci_low"]) <= float(row["p_x_better"]) <= float(row["ci_high"]) <= 1.0
    # P(X > Y) + P(Y > X) = 1 (ties count one half each)
    assert abs(float(poi[0]["p_x_better"]) + float(poi[1]["p_x_better"]) - 1.0) < 1e-6

    efficiency = _csv(out / "sample_efficiency.csv")
    assert {row["method"] for row in efficiency} == methods
    assert "IQM" in capsys.readouterr().out


def test_labels_and_dirname_methods(runs, tmp_path):
    from jaxrl.evaluation.report import load_groups

    groups = load_groups([runs / "sweep_cp"], method_from="dirname", log=lambda _: None)
    assert sorted(g.method for g in groups) == ["sweep_cp [lr=0.0001]", "sweep_cp [lr=0.001]"]
    groups = load_groups([runs / "sweep_cp"], labels={str(runs / "sweep_cp"): "mine"}, log=lambda _: None)
    assert sorted(g.method for g in groups) == ["mine [lr=0.0001]", "mine [lr=0.001]"]
    assert all(g.scores.shape == (3,) and len(g.curves) == 1 and g.curves[0].shape[1] == 3 for g in groups)


def test_report_refuses_to_overwrite_and_names_the_flag(runs, tmp_path):
    out = tmp_path / "report"
    args = [str(runs / "sweep_ac"), "--out", str(out), "--reps", "200"]
    assert report_main(args) == 0
    before = {name: (out / name).read_bytes() for name in REPORT_FILES}

    # The second time through the entry script: its exit code and its one-line message, no traceback.
    again = subprocess.run([*EVALUATE, *args], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "--out" in again.stderr and "Traceback" not in again.stderr
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before


@pytest.mark.parametrize("argv, flag", [
    (["no_such_run_dir"], "runs"),
    (["{run}", "--reps", "10"], "--reps"),
    (["{run}", "--confidence", "1.5"], "--confidence"),
    (["{run}", "--label", "elsewhere=PPO"], "--label"),
    (["{run}", "--normalize", "sometimes"], "--normalize"),
])
def test_bad_input_is_one_line_exit_2(runs, tmp_path, capsys, argv, flag):
    argv = [a.format(run=runs / "sweep_ac") for a in argv]
    with pytest.raises(SystemExit) as exc:
        report_main([*argv, "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_unknown_environment_cannot_be_normalised(runs, tmp_path, capsys):
    """A table normalisation requested for an environment without random/reference scores is a clear error."""
    table = tmp_path / "scores.csv"
    table.write_text("env,random,reference,source\nPendulum-v1,-1224,-180,test\n")
    run = runs / "sweep_ac"
    config = (run / "config.yaml").read_text()
    assert "Acrobot-v1" in config
    code = report_main([str(run), "--out", str(tmp_path / "r"), "--normalize", "table", "--reps", "200",
                        "--score-table", str(table)])
    # the built-in table has Acrobot-v1, so this succeeds; an environment in neither table must not.
    assert code == 0
    renamed = tmp_path / "other_env"
    renamed.mkdir()
    for f in run.iterdir():
        if f.is_file():
            (renamed / f.name).write_bytes(f.read_bytes())
    (renamed / "config.yaml").write_text(config.replace("Acrobot-v1", "MountainCar-v0"))
    summary = json.loads((renamed / "summary.json").read_text())
    if "env" in summary:
        summary["env"] = "MountainCar-v0"
        (renamed / "summary.json").write_text(json.dumps(summary))
    code = report_main([str(renamed), "--out", str(tmp_path / "r2"), "--normalize", "table", "--reps", "200"])
    assert code == 2
    err = capsys.readouterr().err
    assert "MountainCar-v0" in err and "--normalize" in err
    assert not any((tmp_path / "r2" / f).exists() for f in REPORT_FILES)


def test_report_of_curriculum_runs_scores_held_out_solve_rates(tmp_path, capsys):
    """Curriculum runs (ued.py) enter the same report: each held-out level is a task and a seed's
    score is its solve rate there, aggregated without a score table."""
    from jaxrl.programs.ued import main as ued_main
    from jaxrl.evaluation.report import load_groups

    tiny = ["--env", "CartPole-v1", "--num-seeds", "3", "--total-timesteps", str(4 * 16 * 2), "--num-levels", "4",
            "--rollout-len", "16", "--num-minibatches", "2", "--num-epochs", "1", "--hidden-sizes", "8", "--capacity", "8",
            "--min-fill", "0.25", "--num-chunks", "2", "--eval-episodes", "2", "--checkpoint-every", "0", "--quiet"]
    runs = [tmp_path / m for m in ("dr", "robust_plr")]
    for run in runs:
        assert ued_main(["--method", run.name, *tiny, "--out-dir", str(run)]) == 0
    out = tmp_path / "report"
    assert report_main([*map(str, runs), "--out", str(out), "--reps", "200"]) == 0
    summaries = {r.name: json.loads((r / "summary.json").read_text()) for r in runs}
    groups = {(g.method, g.env): g for g in load_groups(runs)}
    assert len(groups) == 2 * 5 and all(g.solve_rates for g in groups.values())
    for method, summary in summaries.items():
        for level, rates in summary["held_out_solve_rates"].items():
            assert list(groups[(method, f"CartPole-v1/{level}")].scores) == rates
    rows = _csv(out / "aggregates.csv")
    assert {r["method"] for r in rows} == {"dr", "robust_plr"}
    assert all(r["normalised"] == "True" and r["num_runs"] == "3" and r["num_envs"] == "5" for r in rows)
    for r in rows:  # solve rates are fractions: every estimate and interval stays in [0, 1]
        assert all(0.0 <= float(r[k]) <= 1.0 for k in ("estimate", "ci_low", "ci_high"))
    assert "solve rate" in (out / "report.md").read_text()
