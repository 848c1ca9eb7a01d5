"""A generative model of maze levels for DRED (Garcin et al. 2024): a small flax VAE over level tensors.

A level is encoded as ``[H, W, 3]`` one-hot channels (wall, goal, start). The encoder (MLP over the
flattened tensor) gives a diagonal Gaussian ``q(z | level)``; the decoder maps ``z`` to per-cell wall
logits and two categorical distributions over cells, one for the goal and one for the start. The
loss is the negative ELBO with a ``beta``-weighted KL: wall cross-entropy summed over cells, goal
and start cross-entropies, ``beta * KL(q || N(0, I))``.

:func:`decode_level` always returns a valid level: the goal is the most likely goal cell and the
start the most likely other cell, and both are cleared of walls (reachability is not guaranteed,
as with the random generator). :func:`make_interpolator` is DRED's level generator: two dataset
levels, their posterior means interpolated spherically (linearly when nearly parallel, as the
reference's ``slerp``) at a uniform ``t``, standard deviations linearly, a sample decoded.

Deviations from the reference (``uoe-agents/dred``): the reference encodes MiniGrid levels as grid
graphs with a GIN encoder and a 1024-dimensional latent and decodes the start conditioned on the
layout and goal; here an MLP over the grid tensor with a 32-dimensional latent (the maze has
walls, a goal and a start only), start and goal decoded independently from ``z``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.envs.levels.maze import Level


class LevelModelConfig(NamedTuple):
    height: int = 13
    width: int = 13
    latent: int = 32
    hidden: tuple = (512, 256)
    beta: float = 1.0


def levels_to_tensor(levels: Level) -> jax.Array:
    """``levels`` (leaves ``[N, ...]``) -> ``[N, H, W, 3]`` float32 one-hot channels: wall, goal, start."""
    wall = levels.wall_map.astype(jnp.float32)
    height, width = wall.shape[-2:]

    def one_hot_cell(pos):  # pos [N, 2] (x, y) -> [N, H, W]
        flat = pos[..., 1] * width + pos[..., 0]
        return jax.nn.one_hot(flat, height * width).reshape(pos.shape[:-1] + (height, width))

    return jnp.stack([wall, one_hot_cell(levels.goal_pos), one_hot_cell(levels.agent_pos)], axis=-1)


class LevelVAE(nn.Module):
    """``encode(x [N, H, W, 3]) -> (mean, log_std) [N, latent]``; ``decode(z) -> (wall, goal, start)`` logits
    ``[N, H, W]``, ``[N, H * W]``, ``[N, H * W]``."""

    height: int = 13
    width: int = 13
    latent: int = 32
    hidden: Sequence[int] = (512, 256)

    def setup(self):
        self.encoder = [nn.Dense(h) for h in self.hidden]
        self.to_stats = nn.Dense(2 * self.latent)
        self.decoder = [nn.Dense(h) for h in reversed(self.hidden)]
        self.to_cells = nn.Dense(self.height * self.width * 3)

    def encode(self, x):
        h = x.reshape(x.shape[0], -1)
        for layer in self.encoder:
            h = nn.relu(layer(h))
        mean, log_std = jnp.split(self.to_stats(h), 2, axis=-1)
        return mean, jnp.clip(log_std, -6.0, 2.0)

    def decode(self, z):
        h = z
        for layer in self.decoder:
            h = nn.relu(layer(h))
        cells = self.to_cells(h).reshape(z.shape[0], self.height * self.width, 3)
        return cells[..., 0].reshape(z.shape[0], self.height, self.width), cells[..., 1], cells[..., 2]

    def __call__(self, x, key):
        mean, log_std = self.encode(x)
        z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return (mean, log_std), self.decode(z)


def make_vae(cfg: LevelModelConfig) -> LevelVAE:
    return LevelVAE(cfg.height, cfg.width, cfg.latent, tuple(cfg.hidden))


def vae_loss(vae: LevelVAE, params, x, key, beta) -> tuple[jax.Array, dict]:
    """Negative ELBO per level (mean over the batch ``x [N, H, W, 3]``) and its parts."""
    (mean, log_std), (wall, goal, start) = vae.apply(params, x, key)
    n = x.shape[0]
    wall_nll = jnp.sum(optax.sigmoid_binary_cross_entropy(wall, x[..., 0]), axis=(1, 2))
    goal_nll = optax.softmax_cross_entropy(goal, x[..., 1].reshape(n, -1))
    start_nll = optax.softmax_cross_entropy(start, x[..., 2].reshape(n, -1))
    kl = 0.5 * jnp.sum(jnp.exp(2 * log_std) + mean ** 2 - 1.0 - 2 * log_std, axis=-1)
    loss = wall_nll + goal_nll + start_nll + beta * kl
    return jnp.mean(loss), {"wall_nll": jnp.mean(wall_nll), "goal_nll": jnp.mean(goal_nll),
                            "start_nll": jnp.mean(start_nll), "kl": jnp.mean(kl)}


def train_vae(key, cfg: LevelModelConfig, data: jax.Array, steps: int, batch_size: int = 128, lr: float = 1e-3):
    """Trains the VAE on ``data [N, H, W, 3]`` with Adam; returns ``(params, losses [steps])``: one compiled scan."""
    vae = make_vae(cfg)
    key_init, key_train = jax.random.split(key)
    params = vae.init(key_init, data[:1], key_init)
    opt = optax.adam(lr)

    @jax.jit
    def run(params, key):
        def step(carry, key):
            params, opt_state = carry
            key_batch, key_noise = jax.random.split(key)
            batch = data[jax.random.randint(key_batch, (batch_size,), 0, data.shape[0])]
            (loss, _), grads = jax.value_and_grad(lambda p: vae_loss(vae, p, batch, key_noise, cfg.beta), has_aux=True)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, steps))
        return params, losses

    return run(params, key_train)


def decode_level(vae: LevelVAE, params, z: jax.Array, direction: jax.Array) -> Level:
    """One valid level from one latent ``z [latent]``: walls where the wall logit is positive, the goal at the most
    likely goal cell, the start at the most likely other cell, both cleared of walls; ``direction []`` int32."""
    wall, goal, start = vae.apply(params, z[None], method=LevelVAE.decode)
    height, width = wall.shape[-2:]
    goal_cell = jnp.argmax(goal[0])
    start_cell = jnp.argmax(jnp.where(jnp.arange(height * width) == goal_cell, -jnp.inf, start[0]))
    walls = (wall[0] > 0).reshape(-1).at[goal_cell].set(False).at[start_cell].set(False).reshape(height, width)
    to_xy = lambda c: jnp.stack([c % width, c // width]).astype(jnp.int32)  # noqa: E731
    return Level(walls, to_xy(goal_cell), to_xy(start_cell), jnp.asarray(direction, jnp.int32))


def slerp(a: jax.Array, b: jax.Array, t) -> jax.Array:
    """Spherical interpolation of ``a`` and ``b [D]`` at ``t``; linear when they are nearly parallel (|cos| > 0.9995)."""
    cos = jnp.sum(a * b) / jnp.maximum(jnp.linalg.norm(a) * jnp.linalg.norm(b), 1e-8)
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    spherical = (jnp.sin((1 - t) * omega) * a + jnp.sin(t * omega) * b) / jnp.maximum(jnp.sin(omega), 1e-8)
    return jnp.where(jnp.abs(cos) > 0.9995, (1 - t) * a + t * b, spherical)


def make_interpolator(vae: LevelVAE, params, dataset: Level) -> Callable:
    """``key -> level``: DRED's generator, an interpolation in latent space between two random dataset levels."""
    mean, log_std = vae.apply(params, levels_to_tensor(dataset), method=LevelVAE.encode)  # [N, latent]
    std = jnp.exp(log_std)

    def interpolate(key):
        key_pair, key_t, key_z, key_dir = jax.random.split(key, 4)
        i, j = jax.random.randint(key_pair, (2,), 0, mean.shape[0])
        t = jax.random.uniform(key_t)
        z = slerp(mean[i], mean[j], t) + ((1 - t) * std[i] + t * std[j]) * jax.random.normal(key_z, mean.shape[1:])
        return decode_level(vae, params, z, jax.random.randint(key_dir, (), 0, 4))

    return interpolate


def reconstruction_accuracy(vae: LevelVAE, params, levels: Level) -> dict:
    """Decoding the posterior mean of each level: the fraction of wall cells right, of goals and starts exactly
    placed, and of levels reconstructed exactly (walls, goal and start)."""
    mean, _ = vae.apply(params, levels_to_tensor(levels), method=LevelVAE.encode)
    decoded = jax.vmap(lambda z, d: decode_level(vae, params, z, d))(mean, levels.agent_dir)
    walls_right = decoded.wall_map == levels.wall_map
    goal = jnp.all(decoded.goal_pos == levels.goal_pos, -1)
    start = jnp.all(decoded.agent_pos == levels.agent_pos, -1)
    exact = jnp.all(walls_right, axis=(1, 2)) & goal & start
    return {name: float(jnp.mean(v.astype(jnp.float32))) for name, v in
            (("wall_cells", walls_right), ("goal", goal), ("start", start), ("exact_levels", exact))}


# ------------------------------------------------------------------------------------------ artifacts


def save_level_model(path: Path, cfg: LevelModelConfig, params, dataset: Level, info: dict) -> None:
    """Writes ``model.json`` (config and ``info``), ``params.msgpack`` and ``dataset.npz`` under ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.msgpack").write_bytes(flax.serialization.to_bytes(params))
    np.savez_compressed(path / "dataset.npz", **{k: np.asarray(v) for k, v in dataset._asdict().items()})
    (path / "model.json").write_text(json.dumps({"config": cfg._asdict(), **info}, indent=1))


def load_level_model(path: Path) -> tuple[LevelModelConfig, dict, Level, dict]:
    """``(config, params, dataset levels, info)`` of a saved level model."""
    meta = json.loads((path / "model.json").read_text())
    options = meta.pop("config")
    cfg = LevelModelConfig(**{**options, "hidden": tuple(options["hidden"])})
    with np.load(path / "dataset.npz") as data:
        dataset = Level(**{k: jnp.asarray(data[k]) for k in Level._fields})
    vae = make_vae(cfg)
    template = vae.init(jax.random.PRNGKey(0), levels_to_tensor(jax.tree.map(lambda x: x[:1], dataset)), jax.random.PRNGKey(0))
    params = flax.serialization.from_bytes(template, (path / "params.msgpack").read_bytes())
    return cfg, params, dataset, meta


def fit_level_model(dataset: Level, held_out: Level, steps: int, seed: int = 0,
                    cfg: LevelModelConfig = LevelModelConfig(beta=0.1)) -> tuple[LevelModelConfig, dict, dict]:
    """Trains the VAE on ``dataset`` and measures reconstruction on it and on ``held_out`` levels of the same
    distribution; returns ``(config, params, info)`` (``info``: losses and accuracies, for ``model.json``)."""
    height, width = dataset.wall_map.shape[-2:]
    cfg = cfg._replace(height=int(height), width=int(width))
    params, losses = train_vae(jax.random.PRNGKey(seed), cfg, levels_to_tensor(dataset), steps)
    vae = make_vae(cfg)
    losses = np.asarray(losses)
    info = {"dataset_size": int(dataset.wall_map.shape[0]), "steps": steps, "seed": seed,
            "loss_first_100": float(losses[:100].mean()), "loss_last_100": float(losses[-100:].mean()),
            "reconstruction_dataset": reconstruction_accuracy(vae, params, dataset),
            "reconstruction_held_out": reconstruction_accuracy(vae, params, held_out)}
    return cfg, params, info
