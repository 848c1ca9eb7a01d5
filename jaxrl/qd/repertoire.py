"""MAP-Elites repertoires: a grid or CVT archive of elites, one per cell of the descriptor space.

A repertoire is a pytree of fixed-size arrays (``C`` cells), so it lives in a
run's state: vmapped over seeds, carried through the compiled loop,
checkpointed. An empty cell has fitness ``-inf``. Cells are Voronoi cells of
``centroids``: a descriptor belongs to its nearest centroid. For a grid the
centroids are the cell centres, so the nearest centroid is the grid cell the
descriptor falls in (and a descriptor outside the bounds goes to the nearest
border cell); for a CVT archive they are k-means centroids of uniform samples
of the descriptor box (Vassiliades et al. 2018), as QDax's
``compute_cvt_centroids`` computes them.

Insertion keeps the fittest per cell: of the batch's candidates for a cell
only the fittest (the first one among equals) competes, and it replaces the
incumbent only if strictly fitter. Non-finite fitnesses are never inserted.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Repertoire(NamedTuple):
    """An archive of ``C`` elites.

    Attributes:
        genotypes: pytree, leaves ``[C, ...]`` (policy parameters; zeros in empty cells).
        fitnesses: ``[C]``, ``-inf`` where a cell is empty.
        descriptors: ``[C, D]`` the elite's measured descriptor (zeros where empty).
        centroids: ``[C, D]`` the cells' centroids.
    """

    genotypes: Any
    fitnesses: jax.Array
    descriptors: jax.Array
    centroids: jax.Array

    @property
    def filled(self) -> jax.Array:
        """``[C]`` bool: cells holding an elite."""
        return self.fitnesses > -jnp.inf


def grid_centroids(cells_per_dim, minval, maxval) -> np.ndarray:
    """Centres of a regular grid: ``prod(cells_per_dim)`` rows of ``[D]``, the last dimension varying fastest.

    Args:
        cells_per_dim: ``[D]`` ints; minval / maxval: ``[D]`` bounds of the descriptor box.
    """
    axes = [lo + (np.arange(n) + 0.5) * (hi - lo) / n for n, lo, hi in zip(cells_per_dim, minval, maxval)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1).astype(np.float32)


def cvt_centroids(key, num_cells: int, num_samples: int, minval, maxval, iterations: int = 50) -> jax.Array:
    """Centroids of a centroidal Voronoi tessellation of the box ``[minval, maxval]``.

    Lloyd's k-means on ``num_samples`` uniform samples, started from ``num_cells`` of those samples
    (QDax: scikit-learn's ``KMeans`` on the same samples); a centroid left without samples keeps its place.

    Returns:
        ``[num_cells, D]`` float32.
    """
    minval, maxval = jnp.asarray(minval, jnp.float32), jnp.asarray(maxval, jnp.float32)
    if num_samples < num_cells:
        raise ValueError(f"a CVT of {num_cells} cells needs at least as many samples, got {num_samples}")
    key_samples, key_init = jax.random.split(key)
    samples = jax.random.uniform(key_samples, (num_samples, minval.shape[0]), minval=minval, maxval=maxval)
    init = samples[jax.random.choice(key_init, num_samples, (num_cells,), replace=False)]

    def lloyd(centroids, _):
        owner = cell_indices(samples, centroids)
        sums = jax.ops.segment_sum(samples, owner, num_cells)
        counts = jax.ops.segment_sum(jnp.ones((num_samples,)), owner, num_cells)
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centroids), None

    centroids, _ = jax.lax.scan(lloyd, init, None, length=iterations)
    return centroids


def cell_indices(descriptors: jax.Array, centroids: jax.Array) -> jax.Array:
    """Nearest centroid of each descriptor: ``[N, D], [C, D] -> int32 [N]`` (ties: the lowest index)."""
    sq = jnp.sum(descriptors**2, -1)[:, None] - 2.0 * descriptors @ centroids.T + jnp.sum(centroids**2, -1)[None, :]
    return jnp.argmin(sq, axis=-1).astype(jnp.int32)


def empty_repertoire(genotype_example, centroids: jax.Array) -> Repertoire:
    """A repertoire with every cell empty; ``genotype_example`` is one genotype (no batch axis)."""
    num_cells = centroids.shape[0]
    genotypes = jax.tree.map(lambda x: jnp.zeros((num_cells, *jnp.shape(x)), jnp.asarray(x).dtype), genotype_example)
    return Repertoire(genotypes, jnp.full((num_cells,), -jnp.inf, jnp.float32),
                      jnp.zeros_like(centroids), jnp.asarray(centroids, jnp.float32))


def insert(repertoire: Repertoire, genotypes, descriptors: jax.Array, fitnesses: jax.Array) -> tuple[Repertoire, jax.Array]:
    """Adds a batch: each candidate competes for its descriptor's cell.

    Args:
        genotypes: leaves ``[N, ...]``; descriptors: ``[N, D]``; fitnesses: ``[N]``.

    Returns:
        ``(repertoire, added [N] bool)``: ``added`` marks the candidates now in the repertoire.
    """
    num_cells, n = repertoire.fitnesses.shape[0], fitnesses.shape[0]
    fitnesses = jnp.where(jnp.isfinite(fitnesses), fitnesses, -jnp.inf)
    cells = cell_indices(descriptors, repertoire.centroids)
    best_in_batch = jax.ops.segment_max(fitnesses, cells, num_cells)  # [C]
    is_best = fitnesses == best_in_batch[cells]
    first_best = jax.ops.segment_min(jnp.where(is_best, jnp.arange(n), n), cells, num_cells)  # ties: first wins
    winner = jnp.arange(n) == first_best[cells]
    added = winner & (fitnesses > repertoire.fitnesses[cells])
    target = jnp.where(added, cells, num_cells)  # out of range: dropped by the scatter

    def put(store, new):
        return store.at[target].set(new.astype(store.dtype), mode="drop")

    return Repertoire(jax.tree.map(put, repertoire.genotypes, genotypes), put(repertoire.fitnesses, fitnesses),
                      put(repertoire.descriptors, descriptors), repertoire.centroids), added


def select_uniform(key, repertoire: Repertoire, num: int):
    """``num`` elites drawn uniformly (with replacement) among the filled cells.

    Returns:
        ``(genotypes [num, ...], descriptors [num, D], cells [num])``. An empty repertoire gives cell 0's zeros.
    """
    filled = repertoire.filled
    p = jnp.where(jnp.any(filled), filled / jnp.maximum(jnp.sum(filled), 1), 1.0 / filled.shape[0])
    cells = jax.random.choice(key, filled.shape[0], (num,), p=p)
    return jax.tree.map(lambda x: x[cells], repertoire.genotypes), repertoire.descriptors[cells], cells


class QDMetrics(NamedTuple):
    """Scalars of a repertoire.

    Attributes:
        qd_score: sum over filled cells of ``fitness + offset`` (QDax's QD-score with the task's offset, so adding
            an elite never lowers it).
        coverage: percentage of cells filled.
        max_fitness: the best elite's fitness (``-inf`` when empty).
        mean_fitness: mean elite fitness (0 when empty).
    """

    qd_score: jax.Array
    coverage: jax.Array
    max_fitness: jax.Array
    mean_fitness: jax.Array


def qd_metrics(repertoire: Repertoire, fitness_offset: float) -> QDMetrics:
    filled = repertoire.filled
    count = jnp.sum(filled)
    total = jnp.sum(jnp.where(filled, repertoire.fitnesses, 0.0))
    return QDMetrics(total + fitness_offset * count, 100.0 * count / filled.shape[0], jnp.max(repertoire.fitnesses),
                     total / jnp.maximum(count, 1))
