"""Per-environment score normalisation: one table of random and reference scores.

``score_table.csv`` (beside this file) holds, per environment, the mean return
of a uniformly random policy (measured with :func:`random_policy_returns`,
see ``benchmarks/random_scores.py``) and a reference score with its source.
A normalised score is ``(return - random) / (reference - random)``: 0 is a
random policy, 1 the reference. Users extend or override it with their own
CSV of the same columns.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

DEFAULT_TABLE = Path(__file__).with_name("score_table.csv")
COLUMNS = ("env", "random", "reference", "source")


class ScoreRef(NamedTuple):
    random: float
    reference: float
    source: str


def load_score_table(*paths) -> dict[str, ScoreRef]:
    """Reads the default table, then each CSV in ``paths`` (later rows override earlier ones).

    Raises:
        ValueError: a file lacks the columns ``env, random, reference`` or has a
            row whose reference equals its random score.
    """
    table: dict[str, ScoreRef] = {}
    for path in (DEFAULT_TABLE, *paths):
        with open(path, newline="") as f:
            reader = csv.DictReader(line for line in f if not line.startswith("#"))
            missing = {"env", "random", "reference"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"score table {path}: missing column(s) {', '.join(sorted(missing))}")
            for row in reader:
                ref = ScoreRef(float(row["random"]), float(row["reference"]), row.get("source", "") or "")
                if ref.reference == ref.random:
                    raise ValueError(f"score table {path}: {row['env']} has reference == random")
                table[row["env"]] = ref
    return table


def random_policy_returns(key, env_name: str, episodes: int = 1000):
    """``[episodes]`` undiscounted returns of a uniformly random policy on ``env_name``
    (actions sampled uniformly from the action space; one jitted program)."""
    from jaxrl.envs import Discrete, make, make_vec_env
    from jaxrl.evaluation.rollout import evaluate_episodes

    env = make(env_name)
    params = env.default_params
    space = env.action_space(params)
    vec_env = make_vec_env(env, episodes)

    def act(obs, k):
        batch = (obs.shape[0],) + tuple(space.shape)
        if isinstance(space, Discrete):
            return jax.random.randint(k, batch, 0, space.n)
        if not space.is_bounded:
            raise ValueError(f"{env_name}: a uniform random policy needs a bounded action space")
        return jax.random.uniform(k, batch, minval=jnp.asarray(space.low), maxval=jnp.asarray(space.high))

    run = jax.jit(lambda k: evaluate_episodes(k, act, vec_env, params, env.max_episode_steps(params)))
    return run(key)
