"""Members over devices: a mesh of local devices and the sharding of the member axis.

Every driver runs ``M`` independent members (seeds x grid points for training,
seeds for evolution and meta-training) as one ``vmap``-ed program whose inputs
and outputs all carry the member axis first (``[M, ...]``). Splitting that axis
over ``D`` devices is a sharding annotation, not a new program: the member
batch is placed with a ``NamedSharding(mesh, P("members"))`` on a 1-D ``Mesh``
and ``jax.jit`` (GSPMD) partitions the vmapped program so that each device runs
``M / D`` members. Members never communicate, so the partitioned program has no
collectives and each member computes what it computes on one device.

Uneven splits are refused, not padded: a padded member would cost a whole
training run, and the refusal names the flags to change (``--devices``,
``--num-seeds``, ``--seed-batch``).

``--seed-batch K`` runs the members in ``M / K`` sequential batches of ``K``
through one compiled program (:func:`split_members` / :func:`concat_members`),
which bounds the memory of the program's intermediates by ``K`` members.

Several hosts (processes) run the same program through JAX's multi-controller
runtime: :mod:`jaxrl.distributed` calls ``jax.distributed.initialize``
from the flags ``--coordinator-address``, ``--num-processes`` and
``--process-id`` (or from the environment of SLURM, Open MPI or JAX's own
``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``), the
mesh then spans ``--devices`` devices of every process, every process builds
the same host inputs and places only its own shard
(:meth:`MemberPlacement.put`), and :func:`to_host` gathers outputs to every
process so that process 0 alone writes the run directory and checkpoints
(:func:`is_primary`). On CPU the collectives that gather go through gloo.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrl.config import ConfigError
from jaxrl.distributed import add_distributed_arguments, distributed_main  # noqa: F401  (the drivers' entry)

MEMBER_AXIS = "members"

def parse_devices(spec: str | int, available: int) -> int:
    """``"all"`` -> ``available``; ``"N"`` -> ``N`` (1 <= N <= available). Raises ConfigError."""
    text = str(spec).strip().lower()
    if text == "all":
        return available
    try:
        count = int(text)
    except ValueError:
        raise ConfigError(f"--devices: expected 'all' or a number of devices, got {spec!r}") from None
    if count < 1:
        raise ConfigError(f"--devices: must be >= 1 or 'all', got {count}")
    if count > available:
        raise ConfigError(f"--devices: {count} requested but only {available} local "
                        f"{'device is' if available == 1 else 'devices are'} available ({jax.default_backend()})")
    return count


def plan_members(devices: str | int, num_seeds: int, num_grid: int = 1, seed_batch: int = 0,
                 available: int | None = None, processes: int | None = None) -> tuple[int, int]:
    """Checks that the members split over devices and batches; returns ``(num_devices, batch_size)``.

    Args:
        devices: the ``--devices`` value (``"all"`` or a count), devices per process.
        num_seeds, num_grid: ``M = num_seeds * num_grid`` members.
        seed_batch: ``--seed-batch`` (0: all members in one batch).
        available: local device count (default ``jax.local_device_count()``).
        processes: process count (default ``jax.process_count()``); ``num_devices``
            counts the devices of all processes.

    Raises:
        ConfigError: one line naming ``--devices`` / ``--num-seeds`` / ``--seed-batch``.
    """
    available = jax.local_device_count() if available is None else available
    num_devices = parse_devices(devices, available) * (jax.process_count() if processes is None else processes)
    members = num_seeds * num_grid
    what = f"--num-seeds {num_seeds}" + (f" x {num_grid} grid points" if num_grid > 1 else "")
    batch = seed_batch or members
    if members % batch:
        raise ConfigError(f"--seed-batch: {seed_batch} does not divide the {members} members ({what}); "
                        f"choose a divisor of {members}")
    if batch % num_devices:
        if seed_batch:
            raise ConfigError(f"--seed-batch: a batch of {batch} members does not split evenly over {num_devices} devices "
                            f"(--devices {devices}); choose --seed-batch a multiple of {num_devices}")
        over = f"{num_devices} devices" if num_devices == parse_devices(devices, available) else (
            f"{num_devices} devices (--devices {devices} x {num_devices // parse_devices(devices, available)} processes)")
        raise ConfigError(f"--devices: {members} members ({what}) do not split evenly over {over}; "
                        f"choose --num-seeds so that the member count is a multiple of {num_devices}, "
                        f"or --devices dividing {members}")
    return num_devices, batch


def member_mesh(num_devices: int) -> Mesh:
    """A 1-D mesh ``("members",)`` over ``num_devices`` devices: the first ``num_devices / P`` of each of the ``P`` processes.

    Devices are ordered by process, so process ``p`` holds the contiguous
    member block ``p``: its members are the ones it computes.
    """
    processes = jax.process_count()
    per_process = num_devices // processes
    by_process = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    chosen = [d for p in range(processes) for d in [d for d in by_process if d.process_index == p][:per_process]]
    return Mesh(np.asarray(chosen), (MEMBER_AXIS,))


@dataclasses.dataclass(frozen=True)
class MemberPlacement:
    """Where the member batch lives: its leading axis sharded over ``mesh``.

    Attributes:
        mesh: 1-D mesh with axis ``"members"``.
    """

    mesh: Mesh

    @classmethod
    def on(cls, num_devices: int) -> "MemberPlacement":
        return cls(member_mesh(num_devices))

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    @property
    def members(self) -> NamedSharding:
        """Leading axis split over the mesh, the rest replicated."""
        return NamedSharding(self.mesh, PartitionSpec(MEMBER_AXIS))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    def put(self, tree):
        """Places a member batch (every leaf ``[M, ...]``) with its member axis sharded.

        Every process passes the whole batch (host or device arrays); with
        several processes each one transfers only the shards of its own devices.
        """
        if jax.process_count() == 1:
            return jax.device_put(tree, self.members)
        return jax.tree.map(lambda x: _global_array(x, self.members), tree)

    def put_replicated(self, tree):
        """The same value on every device of the mesh (hyperparameters shared by all members, chunk indices)."""
        if jax.process_count() == 1:
            return tree
        return jax.tree.map(lambda x: _global_array(x, self.replicated), tree)

    def jit(self, fn: Callable, in_axes: Sequence, donate_argnums=()) -> Callable:
        """``jax.jit(fn)`` with member-sharded inputs where ``in_axes`` is 0, replicated ones where it is None.

        ``fn`` is a vmapped function whose outputs all lead with the member axis
        (``[M, ...]``), so every output stays sharded like the inputs and a
        donated state is reused in place on each device.
        """
        in_shardings = tuple(self.members if axis == 0 else self.replicated for axis in in_axes)
        return jax.jit(fn, in_shardings=in_shardings, out_shardings=self.members, donate_argnums=donate_argnums)


def split_members(tree, num_batches: int) -> list:
    """``[M, ...]`` leaves -> ``num_batches`` trees of ``[M / num_batches, ...]`` leaves, members in order."""
    if num_batches == 1:
        return [tree]
    size = jax.tree.leaves(tree)[0].shape[0] // num_batches if jax.tree.leaves(tree) else 0
    return [jax.tree.map(lambda x: x[b * size:(b + 1) * size], tree) for b in range(num_batches)]


def join_batches(trees: list):
    """Per-batch outputs of a ``--seed-batch`` run -> one ``[M, ...]`` tree (the batch itself, untouched, when there is one)."""
    return trees[0] if len(trees) == 1 else concat_members(to_host(trees))


def concat_members(trees: list):
    """Inverse of :func:`split_members` on host arrays: leaves ``[K, ...]`` x B -> ``[B * K, ...]``."""
    if len(trees) == 1:
        return trees[0]
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *trees)


def _global_array(x, sharding: NamedSharding) -> jax.Array:
    """``x`` (the whole array, known to every process) as a global array: each process fills its own shards."""
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(x))
        return jax.random.wrap_key_data(_global_array(data, sharding), impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_host(tree):
    """Every leaf as a numpy array holding the whole value, on every process.

    Arrays spread over several processes are gathered (a collective: every
    process must call it, in the same order); others are copied from their device.
    """
    leaves = jax.tree.leaves(tree)
    if jax.process_count() == 1 or all(getattr(x, "is_fully_addressable", True) for x in leaves):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def gather(x):
        if getattr(x, "is_fully_addressable", True):
            return np.asarray(jax.device_get(x))
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(gather(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(gather, tree)


def first_seed_to_host(tree):
    """Seed 0's slice of every leaf ``[S, ...]``, on the host as ``[1, ...]`` (figures of seed 0 need no other
    seed's copy). A collective in a multi-process run: every process calls it."""
    return to_host(jax.tree.map(lambda x: x[:1], tree))


def is_primary() -> bool:
    """True on the process that writes run directories, checkpoints and progress (process 0)."""
    return jax.process_index() == 0


def refuse_together(error: Exception | None) -> None:
    """Raises on every process if any process found bad input (a collective in a multi-process run).

    Process 0 alone checks what only the writer can (its run directory, its
    loggers); without agreeing, the other processes would wait forever at the
    first gather of a run that process 0 refused. The process that found the
    error re-raises it; the others raise a ConfigError that points to it.
    """
    if jax.process_count() == 1:
        if error is not None:
            raise error
        return
    from jax.experimental import multihost_utils

    flags = np.asarray(multihost_utils.process_allgather(np.int32(error is not None)))
    if error is not None:
        raise error
    if flags.any():
        bad = ", ".join(str(i) for i in np.flatnonzero(flags))
        raise ConfigError(f"process {bad} refused the run (its error says why); nothing was written")
