"""XLA:CPU's intra-op thread pool, sized to the program it runs.

XLA:CPU runs a compiled program as a graph of small kernels ("thunks"). Where
the graph has independent branches, its executor hands ready kernels to an
intra-op thread pool, one thread per core by default. For a single training
run (one seed, one environment) nearly every kernel works on a few hundred
numbers and takes well under a microsecond, so handing kernels between
threads costs more than running them side by side gains: on a 2-core Xeon,
one-seed DQN CartPole ran 35-40% more env steps per second with a one-thread
pool, one-seed PPO 18% more, while PPO with 16 and 64 vmapped seeds, whose
kernels are large enough to share, ran 3% and 10% slower
(``benchmarks/offpolicy_throughput.py``, ``benchmarks/ppo_throughput.py``,
``--cpu-threads``).

XLA sizes the pool from the CPU affinity mask when JAX's backends start, and
offers no option for it. :func:`size_cpu_thread_pool` therefore narrows the
starting thread's mask, starts the backends, and restores the mask of every
thread of the process: only the pool's size changes, and compilation and the
host-side work still use every core. It can only act before anything has
started JAX's backends (any array, device query or compilation).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
from pathlib import Path

ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def runs_on_cpu() -> bool:
    """True when JAX's default backend will be the CPU, judged without starting it.

    ``JAX_PLATFORMS`` decides when set; otherwise an installed accelerator plugin
    (CUDA, ROCm, TPU) means JAX will prefer that device.
    """
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        return platforms.split(",")[0].strip().lower() == "cpu"
    return not any(importlib.util.find_spec(name) is not None for name in ACCELERATOR_PLUGINS)


def auto_cpu_threads(requested: int, members_per_program: int, num_processes: int = 1, num_devices: int = 1) -> int:
    """The pool size to ask for: ``requested`` if positive, else (``--cpu-threads 0``, auto)
    1 when one compiled program trains one member on one CPU device in a single process,
    and 0 (XLA's default: one thread per core) otherwise. Several host devices share the
    pool to run side by side, so they keep the default.
    """
    if requested > 0:
        return requested
    if members_per_program == 1 and num_processes == 1 and num_devices == 1 and runs_on_cpu():
        return 1
    return 0


def members_per_program(num_seeds: int, grid_points: int, seed_batch: int = 0) -> int:
    """Members one compiled program holds: ``seed_batch`` (0: all of ``num_seeds * grid_points``)."""
    return seed_batch or num_seeds * grid_points


def cpu_threads_for_argv(argv) -> int:
    """The pool size :func:`auto_cpu_threads` picks for ``experiments/train.py argv``, read before JAX starts.

    JAX's backends start as soon as gymnax is imported, before the full option
    resolution (:func:`jaxrl.cli.resolve`) can run, so this reads just the
    options that decide it (``--num-seeds``, ``--sweep``, ``--seed-batch``,
    ``--devices``, ``--cpu-threads``, from the flags, then ``--config`` or the
    ``--resume`` run's saved config). A value it cannot read leaves XLA's
    default; the resolution that follows reports it properly.
    """
    import yaml

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in ("--config", "--resume", "--num-seeds", "--seed-batch", "--devices", "--cpu-threads"):
        parser.add_argument(flag)
    parser.add_argument("--sweep", action="append", default=[])
    try:
        known, _ = parser.parse_known_args(list(argv))
        path = known.config or (str(Path(known.resume) / "config.yaml") if known.resume else None)
        saved = yaml.safe_load(Path(path).read_text()) if path and Path(path).is_file() else {}
        saved = saved if isinstance(saved, dict) else {}

        def value(name: str, default):
            flag = getattr(known, name)
            return flag if flag is not None else saved.get(name, default)

        sweep = {k: len(v) if isinstance(v, list) else 1 for k, v in (saved.get("sweep") or {}).items()}
        for item in known.sweep:
            key, _, values = item.partition("=")
            sweep[key.strip()] = len(values.split(","))
        devices = str(value("devices", 1))
        members = members_per_program(int(value("num_seeds", 1)), math.prod(sweep.values()), int(value("seed_batch", 0)))
        return auto_cpu_threads(int(value("cpu_threads", 0)), members, num_devices=1 if devices == "1" else 2)
    except (ValueError, TypeError, OSError, yaml.YAMLError, SystemExit):
        return 0


def backends_started() -> bool:
    """True once JAX's backends exist (from then on the pool's size is fixed)."""
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def size_cpu_thread_pool(threads: int) -> bool:
    """Starts JAX's backends with an XLA:CPU intra-op pool of ``threads`` threads.

    Does nothing and returns False when ``threads`` is 0 or at least the number of
    available cores (XLA's default), when the backends have already started, or
    where the platform has no CPU affinity masks. Returns True when it sized the pool.
    """
    if threads <= 0 or not hasattr(os, "sched_setaffinity") or backends_started():
        return False
    cores = sorted(os.sched_getaffinity(0))
    if threads >= len(cores):
        return False
    import jax

    os.sched_setaffinity(0, set(cores[:threads]))
    try:
        jax.devices()  # starts the backends; XLA reads the (narrowed) mask to size its pool
    finally:
        # Threads started meanwhile inherited the narrow mask: give every thread all cores back.
        for task in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]:
            try:
                os.sched_setaffinity(int(task), set(cores))
            except OSError:  # a thread that has already exited
                pass
    return True


def intra_op_pool_threads() -> int | None:
    """Threads of XLA:CPU's intra-op pool now running (``None`` where threads cannot be listed)."""
    if not os.path.isdir("/proc/self/task"):
        return None
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                count += f.read().strip() == "tf_XLAEigen"
        except OSError:
            pass
    return count
