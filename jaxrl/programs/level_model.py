"""``experiments/level_model.py``: the dataset of a level space's target distribution and DRED's level VAE.

``python experiments/level_model.py --env Maze --dataset-size 1024 --steps 2000 --out runs/level_models/maze_caves``
draws the dataset (Maze: cellular-automaton caves from a fixed seed), trains the VAE
(:mod:`jaxrl.curricula.level_model`) and writes ``model.json`` (options, losses, reconstruction
accuracy on the dataset and on held-out levels of the same distribution), ``params.msgpack``,
``dataset.npz`` and images of dataset levels, their reconstructions and latent interpolations.
``ued.py --method dred`` loads the directory named by ``--level-model`` and builds it first when missing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATASET_SEED = 0  # the dataset of every run; held-out levels of the same distribution use HELD_OUT_SEED


def dataset_levels(space, size: int):
    """``size`` levels of ``space``'s target distribution (always the same ones for a size)."""
    return space.dataset(size, DATASET_SEED)


def build_level_model(space, size: int, steps: int, out: Path, log=print) -> dict:
    """Draws the dataset, trains and saves the VAE under ``out``; returns its ``model.json`` info."""
    import jax

    from jaxrl.curricula.level_model import fit_level_model, make_interpolator, make_vae, save_level_model
    from jaxrl.envs.levels.spaces import HELD_OUT_SEED
    from jaxrl.io.images import level_grid, save_image

    dataset = dataset_levels(space, size)
    held_out = space.dataset(200, HELD_OUT_SEED)
    log(f"level model: training a VAE on {size} levels for {steps} steps -> {out}")
    cfg, params, info = fit_level_model(dataset, held_out, steps)
    save_level_model(out, cfg, params, dataset, info)
    vae = make_vae(cfg)
    samples = jax.jit(jax.vmap(make_interpolator(vae, params, dataset)))(jax.random.split(jax.random.PRNGKey(1), 16))
    save_image(out / "dataset.png", level_grid(dataset, 16, render=space.render), "dataset levels")
    save_image(out / "interpolations.png", level_grid(samples, 16, render=space.render), "VAE latent interpolations")
    rec = info["reconstruction_dataset"], info["reconstruction_held_out"]
    log(f"level model: reconstruction (posterior mean) of dataset levels: walls {rec[0]['wall_cells']:.3f}, goal "
        f"{rec[0]['goal']:.3f}, start {rec[0]['start']:.3f}, exact {rec[0]['exact_levels']:.3f}; held-out levels: walls "
        f"{rec[1]['wall_cells']:.3f}, goal {rec[1]['goal']:.3f}, start {rec[1]['start']:.3f}, exact {rec[1]['exact_levels']:.3f}")
    return info


def load_or_build(space, size: int, steps: int, path: Path, log=print):
    """``(vae, params, dataset)`` from ``path``, built first if it holds no model. Raises ValueError (naming the flag)
    when the saved model was trained on a dataset of another size."""
    from jaxrl.curricula.level_model import load_level_model, make_vae

    if not (path / "model.json").exists():
        build_level_model(space, size, steps, path, log)
    cfg, params, dataset, info = load_level_model(path)
    if info.get("dataset_size") != size:
        raise ValueError(f"--level-model: {path} was trained on {info.get('dataset_size')} levels, --dataset-size is {size}")
    return make_vae(cfg), params, dataset


def main(argv=None, prog: str = "level_model.py") -> int:
    from jaxrl.envs.levels.spaces import LEVEL_SPACES
    from jaxrl.evaluation.policy_cli import OneLineErrorParser

    with_data = [name for name, space in LEVEL_SPACES.items() if space.dataset is not None]
    parser = OneLineErrorParser(prog=prog, description="Draw a level dataset and train DRED's level VAE on it.")
    parser.add_argument("--env", default="Maze", help=f"level space with a dataset ({', '.join(with_data)}; default: Maze)")
    parser.add_argument("--dataset-size", type=int, default=1024, help="levels in the dataset (default: 1024)")
    parser.add_argument("--steps", type=int, default=2000, help="VAE training steps (default: 2000)")
    parser.add_argument("--out", default="runs/level_models/maze_caves", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model in --out")
    args = parser.parse_args(argv)
    if args.env not in with_data:
        parser.error(f"--env: {args.env!r} has no level dataset; choose from {', '.join(with_data)}")
    for flag, value in (("--dataset-size", args.dataset_size), ("--steps", args.steps)):
        if value < 1:
            parser.error(f"{flag}: must be >= 1, got {value}")
    out = Path(args.out)
    if (out / "model.json").exists() and not args.overwrite:
        parser.error(f"--out: {out} already holds a level model (pass --overwrite to replace it)")
    build_level_model(LEVEL_SPACES[args.env], args.dataset_size, args.steps, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
