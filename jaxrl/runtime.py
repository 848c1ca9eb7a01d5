"""XLA:CPU's intra-op thread pool, sized per run (``--cpu-threads``).

XLA:CPU runs a compiled program as a graph of small kernels ("thunks"). Where
the graph has independent branches, its executor hands ready kernels to an
intra-op thread pool, one thread per core by default. In a one-seed run of a
small network nearly every kernel takes well under a microsecond, and handing
kernels between threads costs more than running them side by side gains: on a
2-core Xeon, one-seed DQN CartPole ran 1.44x the env steps per second with a
one-thread pool and one-seed PPO CartPole 1.29x. Bigger programs share their
kernels well and lose with one thread: one-seed SAC Pendulum (256-256 networks)
ran 28% slower, PPO Breakout-MinAtar with 64 envs 39%, DQN Breakout-MinAtar
20%, and PPO CartPole with 16 seeds 6% (README, "Run defaults measured").
No size estimate known before JAX starts separates these cases reliably, so
XLA's default stays the default and one thread is a choice.

XLA sizes the pool from the CPU affinity mask when JAX's backends start, and
offers no option for it. :func:`size_cpu_thread_pool` therefore narrows the
starting thread's mask, starts the backends, and restores the mask of every
thread of the process: only the pool's size changes, and compilation and the
host-side work still use every core. It can only act before anything has
started JAX's backends (any array, device query or compilation; importing
gymnax creates arrays), which is why the entry point reads the option from its
arguments (:func:`cpu_threads_for_argv`) before importing the driver.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def available_cores() -> int:
    """Cores this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_threads_for_argv(argv) -> int:
    """``--cpu-threads`` of ``experiments/train.py argv``, read before JAX starts.

    From the flags, else ``--config`` or the ``--resume`` run's saved config,
    else 0 (XLA's default). A value it cannot read counts as 0; the full option
    resolution (:func:`jaxrl.programs.driver.resolve`) that follows reports it properly.
    """
    import yaml

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in ("--config", "--resume", "--cpu-threads"):
        parser.add_argument(flag)
    try:
        known, _ = parser.parse_known_args(list(argv))
        if known.cpu_threads is not None:
            return max(int(known.cpu_threads), 0)
        path = known.config or (str(Path(known.resume) / "config.yaml") if known.resume else None)
        saved = yaml.safe_load(Path(path).read_text()) if path and Path(path).is_file() else {}
        return max(int(saved.get("cpu_threads", 0)), 0) if isinstance(saved, dict) else 0
    except (ValueError, TypeError, OSError, yaml.YAMLError, SystemExit):
        return 0


POOL_THREAD_NAME = "tf_XLAEigen"  # what XLA:CPU names its intra-op pool's threads


def _thread_ids() -> list[int]:
    """Ids of this process's threads (``[0]``, the calling thread, where ``/proc`` does not list them)."""
    return [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]


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
        for task in _thread_ids():
            try:
                os.sched_setaffinity(task, set(cores))
            except OSError:  # a thread that has already exited
                pass
    return True


def intra_op_pool_threads() -> int | None:
    """Threads of XLA:CPU's intra-op pool now running (``None`` where threads cannot be listed)."""
    if not os.path.isdir("/proc/self/task"):
        return None
    count = 0
    for task in _thread_ids():
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                count += f.read().strip() == POOL_THREAD_NAME
        except OSError:  # a thread that has already exited
            pass
    return count
