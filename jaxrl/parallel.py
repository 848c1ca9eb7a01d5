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
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrl.cli import ConfigError

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
                 available: int | None = None) -> tuple[int, int]:
    """Checks that the members split over devices and batches; returns ``(num_devices, batch_size)``.

    Args:
        devices: the ``--devices`` value (``"all"`` or a count).
        num_seeds, num_grid: ``M = num_seeds * num_grid`` members.
        seed_batch: ``--seed-batch`` (0: all members in one batch).
        available: local device count (default ``jax.local_device_count()``).

    Raises:
        ConfigError: one line naming ``--devices`` / ``--num-seeds`` / ``--seed-batch``.
    """
    available = jax.local_device_count() if available is None else available
    num_devices = parse_devices(devices, available)
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
        raise ConfigError(f"--devices: {members} members ({what}) do not split evenly over {num_devices} devices; "
                        f"choose --num-seeds so that the member count is a multiple of {num_devices}, "
                        f"or --devices dividing {members}")
    return num_devices, batch


def member_mesh(num_devices: int) -> Mesh:
    """A 1-D mesh ``("members",)`` over the first ``num_devices`` local devices."""
    return Mesh(np.asarray(jax.local_devices()[:num_devices]), (MEMBER_AXIS,))


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
        """Places a member batch (every leaf ``[M, ...]``) with its member axis sharded."""
        return jax.device_put(tree, self.members)

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


def concat_members(trees: list):
    """Inverse of :func:`split_members` on host arrays: leaves ``[K, ...]`` x B -> ``[B * K, ...]``."""
    if len(trees) == 1:
        return trees[0]
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *trees)
