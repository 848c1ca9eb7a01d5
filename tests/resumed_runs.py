"""Helpers for "a run resumed from an earlier checkpoint ends as the uninterrupted run" tests."""
import json
import shutil


def resume_copy(main, full, cut, dropped_steps=("3", "4")) -> None:
    """Copies the finished run ``full`` to ``cut``, drops the copy's checkpoints ``dropped_steps`` and resumes it with
    ``main`` (a program's CLI entry). The copy stands for a second, identical run (rerunning a configuration
    reproduces it: test_invariance.py)."""
    shutil.copytree(full, cut)
    for step in dropped_steps:
        shutil.rmtree(cut / "checkpoints" / step)
    assert main(["--resume", str(cut), "--quiet"]) == 0


def logged_rows(run) -> list[dict]:
    """Every row of ``run``'s metrics.jsonl without the wall-clock speeds."""
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("_per_second")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]
