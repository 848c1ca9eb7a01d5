"""Helpers shared by the throughput benchmarks: per-process peak RSS, load average, running a
configuration in a fresh subprocess (a worker, or an experiment's entry point), machine description, and timing jaxrl's chunk loop exactly as
:mod:`jaxrl.programs.driver` drives it."""
from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def peak_rss_mib() -> float:
    """This process's peak resident set size (MiB).

    ``VmHWM`` of ``/proc/self/status`` (the high-water mark of this process's
    own address space) where available. ``ru_maxrss`` is not used as the peak:
    on Linux it survives ``fork``/``exec``, so a child starts with its parent's
    peak already recorded.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return ru_maxrss_mib()




def ru_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB




def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]




def run_worker(script, args: list[str], timeout: float = 900.0, attempts: int = 2) -> dict:
    """Runs ``script --worker ARGS`` in a fresh interpreter and returns the JSON it printed after ``RESULT``;
    a run that exceeds ``timeout`` seconds is retried once."""
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", *args]
    for attempt in range(attempts):
        print("  $", " ".join(cmd[1:]), flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            print(f"  worker exceeded {timeout:.0f}s (attempt {attempt + 1}/{attempts}), load {loadavg()}", flush=True)
    else:
        raise SystemExit(f"worker timed out {attempts} times: {' '.join(args)}")
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker failed ({proc.returncode}): {' '.join(args)}")
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"worker printed no result: {' '.join(args)}\n{proc.stdout}{proc.stderr}")




def run_experiment_once(entry_point: str, args: list[str], run_dir: Path, label: str) -> dict:
    """``experiments/<entry_point> ARGS --out-dir run_dir`` in a fresh interpreter, unless the run directory already
    holds a ``summary.json`` (a study resumes by reading the runs it has); the run's summary."""
    summary = run_dir / "summary.json"
    if not summary.is_file():
        cmd = [sys.executable, str(HERE.parent / "experiments" / entry_point), *args, "--out-dir", str(run_dir),
               "--overwrite", "--quiet", "--checkpoint-every", "0"]
        print("  $", " ".join(cmd[1:]), flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"run failed ({proc.returncode}): {label}")
        print(f"  {label}: {time.perf_counter() - start:.0f}s | {proc.stdout.strip().splitlines()[-1]}", flush=True)
    return json.loads(summary.read_text())


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib import metadata  # no heavy imports in the parent (keeps its RSS small)

    versions = {}
    for dist in ("jax", "jaxlib", "flax", "optax", "gymnax", "torch", "stable-baselines3", "gymnasium", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        import psutil

        mem_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001
        mem_gib = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("XLA_", "JAX_", "OMP_", "MKL_"))},
    }




def distinct_pool_sizes(requested: list[int]) -> list[int]:
    """The ``--cpu-threads`` values of ``requested`` that give distinct pool sizes (first of each kept)."""
    from jaxrl.runtime import available_cores

    kept, sizes = [], set()
    for threads in requested:
        size = min(threads or available_cores(), available_cores())
        if size not in sizes:
            kept.append(threads)
            sizes.add(size)
    return kept


def pool_label(r: dict) -> str:
    """``" (N XLA threads)"`` for a jaxrl row that recorded its pool size, else ``""``."""
    n = r.get("cpu_intra_op_threads")
    return "" if n is None else f" ({n} XLA:CPU thread{'s' if n != 1 else ''})"


def time_jaxrl_chunks(runner, keys, hparams, on_compiled=None) -> dict:
    """AOT-compiles ``init`` and ``run_chunk`` mapped over members (state donated) as :mod:`jaxrl.programs.driver` does,
    then runs every chunk, timing compile (including one init call) and the chunk calls separately.

    ``on_compiled()``, if given, is called between compilation and the first chunk (e.g. to read the RSS).

    Returns:
        ``compile_seconds``, ``run_seconds``, ``chunk_seconds`` (list), ``state`` and ``metrics``
        (host copies of every chunk's metrics, in order).
    """
    import jax
    import numpy as np

    from jaxrl.training.loop import map_members

    t0 = time.perf_counter()
    init_fn = jax.jit(map_members(runner.init, (0, 0))).lower(keys, hparams).compile()
    state = init_fn(keys, hparams)
    chunk_fn = (
        jax.jit(map_members(runner.run_chunk, (0, 0, None)), donate_argnums=0)
        .lower(state, hparams, np.int32(0))
        .compile()
    )
    jax.block_until_ready(state)
    compile_seconds = time.perf_counter() - t0
    if on_compiled is not None:
        on_compiled()
    run_seconds, chunk_seconds, all_metrics = 0.0, [], []
    for chunk in range(runner.num_chunks):
        t = time.perf_counter()
        state, metrics = chunk_fn(state, hparams, np.int32(chunk * runner.chunk_len))
        metrics = jax.device_get(metrics)  # the host round-trip is part of the timed loop, as in the driver
        seconds = time.perf_counter() - t
        run_seconds += seconds
        chunk_seconds.append(round(seconds, 4))
        all_metrics.append(metrics)
    return {"compile_seconds": compile_seconds, "run_seconds": run_seconds, "chunk_seconds": chunk_seconds,
            "state": state, "metrics": all_metrics}
