"""Runs an unmodified CleanRL script (e.g. ``cleanrl/dqn_jax.py``) with ``runpy`` and times its env steps.

Used by ``offpolicy_throughput.py`` (in its worker subprocess) for the CleanRL
rows. Nothing of CleanRL's code is changed; the runner only sets up, around
the script, what the installed library versions and the timing need:

* Timing: ``gymnasium.vector.SyncVectorEnv`` (the class the scripts build
  their envs with) is replaced by a subclass whose ``step`` counts env steps
  and reads the clock right after each step returns, as the SB3 rows'
  callback does: the first reading at or past ``learning_starts`` env steps
  marks the start of the learning phase, the last one its end. CleanRL
  compiles its update functions lazily, at their first calls inside the
  learning phase (and again when an argument's weak type changes), so a
  second window starts ``warmup_steps`` env steps later: past every
  compilation, the steady state that jaxrl's rows time (their compile is
  ahead of time, timed apart). JAX's compile events (tracing, lowering,
  XLA compilation, from ``jax.monitoring``) are summed for the whole run
  and counted inside each window. With ``max_seconds`` > 0 the run is
  stopped (an exception raised from ``step``, caught here) at the first step
  that many seconds into the steady-state window.
* gymnasium >= 1.0: vector envs auto-reset on the *next* step by default and
  no longer report ``final_observation`` / a list ``final_info``, which the
  scripts (written for gymnasium 0.29) read. The subclass builds its envs with
  ``autoreset_mode=SAME_STEP`` (0.29's behaviour: reset inside the step that
  ends an episode, the last observation in the info) and rewrites the info to
  0.29's layout (``final_observation``: one entry per env; ``final_info``: a
  list with each finished env's info dict, ``None`` for the others).
* JAX APIs removed since the scripts were written (``jax.tree_map`` ...) are
  aliased to their replacements before the script runs, if the script uses
  them; ``aliases`` in the result names those set.
* ``tqdm.rich`` is made unimportable, so a script that would draw a progress
  bar when tqdm is installed prints its plain ``SPS:`` lines instead
  (recorded: ``progress_bar_disabled``).
* The script runs in a temporary working directory (its TensorBoard event
  files and ``runs/`` go there and are deleted); its stdout is captured in
  memory and only the last ``SPS:`` value is kept.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import sys
import tempfile
import time
from pathlib import Path


class StopRun(Exception):
    """Raised from the env's step once the time limit of the learning phase is reached."""


# Removed JAX names a CleanRL script may still use -> how to get their replacement.
JAX_ALIASES = {"tree_map": "map", "tree_leaves": "leaves", "tree_flatten": "flatten", "tree_unflatten": "unflatten",
               "tree_structure": "structure"}  # jax.<name> -> jax.tree.<value>


def env_info_at(info, i):
    """Env ``i``'s entry of a gymnasium >= 1.0 vector info dict (arrays per env, ``_key`` masks dropped)."""
    if isinstance(info, dict):
        return {k: env_info_at(v, i) for k, v in info.items() if not k.startswith("_")}
    return info[i]


class Tape(io.TextIOBase):
    """Captured stdout of the script: keeps the line count and the last ``SPS:`` value."""

    def __init__(self):
        self.lines, self.last_sps, self._partial = 0, None, ""

    def write(self, text):
        text = self._partial + text
        *lines, self._partial = text.split("\n")
        for line in lines:
            self.lines += 1
            if line.startswith("SPS:"):
                self.last_sps = float(line.split()[1])
        return len(text)


COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


def run_cleanrl(script: str, argv: list[str], cleanrl_dir: str, learning_starts: int, warmup_steps: int = 0,
                max_seconds: float = 0.0) -> dict:
    """Executes ``script`` as ``__main__`` with ``sys.argv = [script] + argv`` and returns its timing.

    Returns:
        ``env_steps`` (steps done); three windows, each ``steps``, ``seconds``, ``env_steps_per_second``,
        ``compile_seconds`` and ``xla_compiles`` (JAX compile time and XLA compilations inside it):
        ``steady_state`` (from the first step at or past ``learning_starts + warmup_steps`` to the last),
        ``learning_phase`` (from ``learning_starts``: CleanRL's lazy JIT included), ``whole_run`` (from the
        first env step); ``compile_seconds`` and ``xla_compiles`` of the whole script; ``script_seconds``
        (``runpy`` start to end: imports, network initialisation and closing too), ``stopped_early``,
        ``last_sps_printed``, ``episode_returns`` (every finished episode's return, in order), ``aliases``,
        ``progress_bar_disabled``.
    """
    import gymnasium as gym
    import jax
    import numpy as np

    script = str(Path(script).resolve())
    source = Path(script).read_text()
    aliases = []
    for name, replacement in JAX_ALIASES.items():
        if not hasattr(jax, name) and re.search(rf"\bjax\.{name}\b", source):
            setattr(jax, name, getattr(jax.tree, replacement))
            aliases.append(f"jax.{name} = jax.tree.{replacement}")
    sys.modules["tqdm.rich"] = None  # `from tqdm.rich import tqdm` raises ImportError: no progress bar
    progress_bar_disabled = "tqdm" in source

    import jax.monitoring

    compile_events = []  # (end time, seconds, event)

    def on_duration(event, duration, **_):
        if event in COMPILE_EVENTS:
            compile_events.append((time.perf_counter(), duration, event))

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    clock = {"count": 0, "first": None, "mark": None, "steady": None, "last": None}
    returns = []
    original = gym.vector.SyncVectorEnv

    class TimedSyncVectorEnv(original):
        def __init__(self, env_fns, *args, **kwargs):
            kwargs.setdefault("autoreset_mode", gym.vector.AutoresetMode.SAME_STEP)
            super().__init__(env_fns, *args, **kwargs)

        def step(self, actions):
            obs, rewards, terminations, truncations, infos = super().step(actions)
            if "final_info" in infos:
                done = infos.pop("_final_info")
                final_info = infos.pop("final_info")
                final_obs = infos.pop("final_obs")
                infos.pop("_final_obs", None)
                per_env = [env_info_at(final_info, i) if done[i] else None for i in range(self.num_envs)]
                infos["final_info"] = np.array(per_env, dtype=object)
                infos["final_observation"] = final_obs
                returns.extend(float(np.asarray(d["episode"]["r"])) for d in per_env if d is not None and "episode" in d)
            now = time.perf_counter()
            clock["count"] += self.num_envs
            if clock["first"] is None:
                clock["first"] = (clock["count"], now)
            if clock["mark"] is None and clock["count"] >= learning_starts:
                clock["mark"] = (clock["count"], now)
            if clock["steady"] is None and clock["count"] >= learning_starts + warmup_steps:
                clock["steady"] = (clock["count"], now)
            clock["last"] = (clock["count"], now)
            if max_seconds > 0 and clock["steady"] is not None and now - clock["steady"][1] >= max_seconds:
                raise StopRun
            return obs, rewards, terminations, truncations, infos

    tape = Tape()
    stopped_early = False
    old_argv, old_cwd, old_path = sys.argv, os.getcwd(), list(sys.path)
    gym.vector.SyncVectorEnv = TimedSyncVectorEnv
    with tempfile.TemporaryDirectory(prefix="cleanrl_run_") as workdir:
        try:
            sys.argv = [script, *argv]
            sys.path[:0] = [str(Path(cleanrl_dir).resolve()), str(Path(script).parent)]
            os.chdir(workdir)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(tape):
                try:
                    runpy.run_path(script, run_name="__main__")
                except StopRun:
                    stopped_early = True
            script_seconds = time.perf_counter() - t0
        finally:
            gym.vector.SyncVectorEnv = original
            jax.monitoring.unregister_event_duration_listener(on_duration)
            sys.argv, sys.path[:] = old_argv, old_path
            os.chdir(old_cwd)

    def compiles(t0=float("-inf"), t1=float("inf")):
        inside = [(d, e) for t, d, e in compile_events if t0 <= t <= t1]
        return sum(d for d, _ in inside), sum(e == COMPILE_EVENTS[-1] for _, e in inside)

    def phase(start):
        if start is None or clock["last"][0] <= start[0]:
            return {"steps": 0, "seconds": 0.0, "env_steps_per_second": float("nan"), "compile_seconds": 0.0, "xla_compiles": 0}
        steps, seconds = clock["last"][0] - start[0], clock["last"][1] - start[1]
        compile_seconds, xla_compiles = compiles(start[1], clock["last"][1])
        return {"steps": steps, "seconds": seconds, "env_steps_per_second": steps / seconds,
                "compile_seconds": compile_seconds, "xla_compiles": xla_compiles}

    compile_seconds, xla_compiles = compiles()
    return {
        "env_steps": clock["count"],
        "steady_state": phase(clock["steady"]),
        "learning_phase": phase(clock["mark"]),
        "whole_run": phase(clock["first"]),
        "compile_seconds": compile_seconds,
        "xla_compiles": xla_compiles,
        "script_seconds": script_seconds,
        "stopped_early": stopped_early,
        "last_sps_printed": tape.last_sps,
        "stdout_lines": tape.lines,
        "episode_returns": returns,
        "aliases": aliases,
        "progress_bar_disabled": progress_bar_disabled,
    }


if __name__ == "__main__":  # python benchmarks/cleanrl_runner.py CLEANRL_DIR SCRIPT LEARNING_STARTS WARMUP MAX_SECONDS -- ARGS...
    import json

    cleanrl_dir, script, starts, warmup, seconds, sep, *rest = sys.argv[1:]
    assert sep == "--", "usage: cleanrl_runner.py CLEANRL_DIR SCRIPT LEARNING_STARTS WARMUP_STEPS MAX_SECONDS -- SCRIPT_ARGS..."
    out = run_cleanrl(script, rest, cleanrl_dir, int(starts), int(warmup), float(seconds))
    out["episode_returns"] = out["episode_returns"][-10:]
    print(json.dumps(out, indent=1))
