"""Joining a multi-process run (``jax.distributed``) from an entry point's flags or its launcher's environment.

``jax.distributed.initialize`` must run before JAX touches a device, and
importing gymnax already builds arrays, so this module imports nothing of
jaxrl's and the entry points (``experiments/*.py``, through
:func:`run_entry_point`) join before they import the driver. The flags are
``--coordinator-address HOST:PORT --num-processes N --process-id I``; without
them the environment of SLURM or Open MPI (more than one task), or
``JAX_COORDINATOR_ADDRESS`` with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``,
starts a multi-process run. On CPU the cross-process collectives use gloo.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import re
import sys
from typing import Callable, Sequence

import jax


class DistributedFlagError(ValueError):
    """A bad multi-process flag or environment variable (one line for the user)."""


DISTRIBUTED_FLAGS = ("--coordinator-address", "--num-processes", "--process-id")
_JOINED = False  # jax.distributed.initialize runs once per process


@dataclasses.dataclass(frozen=True)
class DistributedOptions:
    """How this process joins a multi-process run (all unset: a single process).

    Attributes:
        coordinator_address: ``host:port`` of process 0's coordinator service.
        num_processes: processes in the run.
        process_id: this process's index, ``0 <= process_id < num_processes``.
        source: where the values came from (``"flags"``, ``"environment"`` or a launcher's name), for messages.
    """

    coordinator_address: str = ""
    num_processes: int = 0
    process_id: int = -1
    source: str = ""

    @property
    def multi_process(self) -> bool:
        return bool(self.source)


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """The three flags of a multi-process run, in their own ``--help`` group (any entry point)."""
    group = parser.add_argument_group(
        "several processes (jax.distributed; default: one process, or the launcher's environment under "
        "SLURM / Open MPI / JAX_COORDINATOR_ADDRESS)")
    group.add_argument("--coordinator-address", metavar="HOST:PORT", action=_TakenByMain,
                       help="address of process 0's coordinator, the same on every process (default: '')")
    group.add_argument("--num-processes", metavar="N", action=_TakenByMain, help="number of processes in the run (default: 1)")
    group.add_argument("--process-id", metavar="I", action=_TakenByMain,
                       help="this process's index, 0 to N-1; process 0 writes the run directory (default: 0)")


class _TakenByMain(argparse.Action):
    """The entry point's ``main`` takes these flags out before parsing; here they are listed for ``--help`` only."""

    def __call__(self, parser, namespace, values, option_string=None):
        from jaxrl.config import ConfigError

        raise ConfigError(f"{option_string}: joins a multi-process run, so it is read by the entry point's main() "
                          f"(experiments/*.py) before JAX starts, not by a config resolver")


def _int_flag(flag: str, text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise DistributedFlagError(f"{flag}: expected an integer, got {text!r}") from None


def parse_distributed(argv: Sequence[str], environ=None) -> tuple[DistributedOptions, list[str]]:
    """Takes the distributed flags out of ``argv``; returns ``(options, remaining argv)``.

    Without flags, the environment of a launcher decides: ``JAX_COORDINATOR_ADDRESS`` with
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``, or SLURM / Open MPI with more than one
    task (jax detects their addresses itself). Raises DistributedFlagError naming the flag.
    """
    environ = os.environ if environ is None else environ
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in DISTRIBUTED_FLAGS:
        pre.add_argument(flag)
    try:
        known, rest = pre.parse_known_args(list(argv))
    except SystemExit:  # a flag without its value
        raise DistributedFlagError("--coordinator-address / --num-processes / --process-id: each takes a value") from None
    given = {k: v for k, v in vars(known).items() if v is not None}
    if given:
        if set(given) != {"coordinator_address", "num_processes", "process_id"}:
            missing = [f for f in DISTRIBUTED_FLAGS if f[2:].replace("-", "_") not in given]
            raise DistributedFlagError(f"{missing[0]}: a multi-process run needs all of --coordinator-address, "
                              f"--num-processes and --process-id")
        address, count, index = given["coordinator_address"], given["num_processes"], given["process_id"]
        names, source = DISTRIBUTED_FLAGS, "flags"
    elif environ.get("JAX_COORDINATOR_ADDRESS"):
        address = environ["JAX_COORDINATOR_ADDRESS"]
        count, index = environ.get("JAX_NUM_PROCESSES"), environ.get("JAX_PROCESS_ID")
        names, source = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"), "environment"
        if count is None or index is None:
            raise DistributedFlagError("JAX_COORDINATOR_ADDRESS is set: set JAX_NUM_PROCESSES and JAX_PROCESS_ID too")
    else:
        for launcher, size_var in (("SLURM", "SLURM_NTASKS"), ("Open MPI", "OMPI_COMM_WORLD_SIZE")):
            size = environ.get(size_var, "")
            if size.isdigit() and int(size) > 1:
                return DistributedOptions(source=launcher), rest
        return DistributedOptions(), rest
    count, index = _int_flag(names[1], count), _int_flag(names[2], index)
    if not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", address):
        raise DistributedFlagError(f"{names[0]}: expected HOST:PORT, got {address!r}")
    if count < 1:
        raise DistributedFlagError(f"{names[1]}: must be >= 1, got {count}")
    if not 0 <= index < count:
        raise DistributedFlagError(f"{names[2]}: must be between 0 and {count - 1} (--num-processes {count}), got {index}")
    return DistributedOptions(address, count, index, source), rest


def initialize_distributed(options: DistributedOptions) -> None:
    """Joins the multi-process run described by ``options`` (no-op for a single process).

    Must run before JAX touches a device. On CPU, cross-process collectives
    (gathering metrics to every process) need gloo, selected here.
    """
    global _JOINED
    if not options.multi_process or _JOINED:
        return
    _JOINED = True
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        if options.coordinator_address:
            jax.distributed.initialize(options.coordinator_address, options.num_processes, options.process_id)
        else:  # SLURM / Open MPI: jax reads the launcher's environment
            jax.distributed.initialize()
    except RuntimeError as e:
        if "must be called before" not in str(e):
            raise
        raise DistributedFlagError(
            f"{DISTRIBUTED_FLAGS[0]}: JAX had already started in this process; pass the multi-process flags to "
            f"experiments/*.py (or call jaxrl.distributed.run_entry_point) so they are read before jaxrl is imported"
        ) from None


def distributed_main(main: Callable[[list], int], argv: Sequence[str], prog: str) -> int:
    """Runs an entry point's ``main(argv)`` after joining the multi-process run its flags describe.

    Bad distributed flags give one line on stderr and exit code 2, like any other flag.
    """
    try:
        options, rest = parse_distributed(argv)
        initialize_distributed(options)
    except DistributedFlagError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return main(rest)


def run_entry_point(module: str, prog: str, argv: Sequence[str] | None = None,
                    cpu_threads: Callable[[list], int] | None = None) -> int:
    """Joins the multi-process run (if any), then imports ``module`` and returns ``module.main(rest, prog=prog)``.

    ``cpu_threads(rest)``, if given, reads the size of XLA:CPU's thread pool from the
    arguments (0: XLA's default); it is set before the import starts JAX (:mod:`jaxrl.runtime`).
    ``experiments/train.py`` is ``sys.exit(run_entry_point("jaxrl.programs.train", "train.py", cpu_threads=...))``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)

    def main(rest):
        if cpu_threads is not None:
            from jaxrl.runtime import size_cpu_thread_pool

            size_cpu_thread_pool(cpu_threads(rest))
        return importlib.import_module(module).main(rest, prog=prog)

    return distributed_main(main, argv, prog)


def train_main() -> int:
    """The ``jaxrl-train`` console script: ``experiments/train.py`` installed on the PATH."""
    from jaxrl.runtime import cpu_threads_for_argv

    return run_entry_point("jaxrl.programs.train", "jaxrl-train", cpu_threads=cpu_threads_for_argv)
