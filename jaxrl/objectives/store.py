"""Saved objectives: a directory with ``objective.json`` (what rebuilds it) and
``params.msgpack`` (its parameters), written by meta-training and read by
``--objective DIR``."""
from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import jax
import numpy as np
from flax import serialization

FORMAT_VERSION = 1
SPEC_FILE = "objective.json"
PARAMS_FILE = "params.msgpack"


def is_saved_objective(path) -> bool:
    """Whether ``path`` is a directory holding a saved objective."""
    p = Path(path)
    return (p / SPEC_FILE).is_file() and (p / PARAMS_FILE).is_file()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_objective(directory, objective, meta_params, info: dict | None = None) -> Path:
    """Writes ``objective`` with ``meta_params`` to ``directory`` (created; files replaced atomically).

    Args:
        objective: a learned :class:`~jaxrl.objectives.Objective` (its ``spec`` rebuilds it).
        meta_params: the drift network's parameters (host or device arrays).
        info: extra JSON-able facts kept alongside (fitness, generation, environment...).
    """
    if not objective.spec:
        raise ValueError(f"objective {objective.name!r} has no parameters to save")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    params = jax.tree.map(np.asarray, jax.device_get(meta_params))
    _atomic_write(out / PARAMS_FILE, serialization.msgpack_serialize(serialization.to_state_dict(params)))
    spec = {"format": FORMAT_VERSION, **dict(objective.spec), "info": info or {}}
    _atomic_write(out / SPEC_FILE, (json.dumps(spec, indent=2) + "\n").encode())
    return out


def read_spec(directory) -> dict:
    """The ``objective.json`` of a saved objective."""
    return json.loads((Path(directory) / SPEC_FILE).read_text())


def rebuild(spec: dict):
    """The objective (or LPG update rule, :mod:`jaxrl.agents.lpg`) a saved ``objective.json`` describes."""
    if "rule" in spec:
        from jaxrl.agents.lpg import make_rule

        return make_rule(spec["rule"], spec["hidden"], spec["embed"], spec["y_dim"])
    from jaxrl.objectives import make_objective

    return make_objective(spec["objective"], drift_hidden=spec["drift_hidden"], drift_init="random",
                          ta_log_horizon=spec.get("ta_log_horizon", False))


def load_objective(directory):
    """``(Objective, meta_params)`` of a saved objective (or ``(UpdateRule, params)`` of a saved LPG rule)."""
    spec = read_spec(directory)
    if spec.get("format") != FORMAT_VERSION:
        raise ValueError(f"{directory}: objective format {spec.get('format')!r} is not {FORMAT_VERSION}")
    objective = rebuild(spec)
    template = objective.init(jax.random.PRNGKey(0))
    state = serialization.msgpack_restore((Path(directory) / PARAMS_FILE).read_bytes())
    params = serialization.from_state_dict(template, state)
    shapes_match = jax.tree.map(lambda a, b: np.shape(a) == np.shape(b), template, params)
    if not all(jax.tree.leaves(shapes_match)):
        raise ValueError(f"{directory}: saved parameters do not match the objective's network")
    return objective, jax.tree.map(np.asarray, params)


@functools.lru_cache(maxsize=16)
def _resolve_cached(spec: str, drift_hidden: int, drift_init: str, ta_log_horizon: bool, mtime: float):
    from jaxrl.objectives import make_objective

    if is_saved_objective(spec):
        return load_objective(spec)
    objective = make_objective(spec, drift_hidden, drift_init, ta_log_horizon)
    return objective, jax.tree.map(np.asarray, objective.init(jax.random.PRNGKey(0)))


def resolve_objective(spec: str, drift_hidden: int = 128, drift_init: str = "ppo", ta_log_horizon: bool = False):
    """``(Objective, initial meta_params)`` for an ``--objective`` value: a name or a saved directory.

    A learned objective by name starts from ``init(PRNGKey(0))`` (deterministic, so a
    resumed run rebuilds the same parameters); a saved one from its file.
    """
    mtime = (Path(spec) / PARAMS_FILE).stat().st_mtime if is_saved_objective(spec) else 0.0
    return _resolve_cached(str(spec), int(drift_hidden), str(drift_init), bool(ta_log_horizon), mtime)
