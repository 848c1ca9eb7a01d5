"""Config fields with help text, and the static / traced split.

Static fields fix array shapes or program structure (number of envs, rollout
length, layer sizes): changing them recompiles. Traced fields are scalars
(learning rate, discount, clip range ...) that become leaves of an ``HParams``
pytree, so sweeping them is a ``vmap``, not a recompile.
"""
from __future__ import annotations

import dataclasses
from typing import Any


class ConfigError(Exception):
    """A user mistake in flags or config files; the message names the flag or file (exit code 2, one line)."""


def option(default: Any, help: str, traced: bool = False, choices: tuple | None = None, minimum: float | None = None,
           positive: bool = False, maximum: float | None = None):
    """A dataclass field carrying its CLI help, whether it is traced (sweepable), allowed values and bounds
    (``minimum`` / ``maximum``, inclusive; ``positive``: strictly above 0).

    A traced option is a leaf of the program's hyperparameter pytree: ``--sweep name=v1,v2`` over it is a
    ``vmap`` of one compiled program. Its bounds are checked for every swept value too."""
    meta = {"help": help, "traced": traced, "choices": choices, "minimum": minimum, "positive": positive,
            "maximum": maximum}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def traced_fields(cfg_cls) -> list[str]:
    """Names of the traced (sweepable) fields of a config dataclass."""
    return [f.name for f in dataclasses.fields(cfg_cls) if f.metadata.get("traced")]


def field_meta(cfg_cls) -> dict[str, dict]:
    return {f.name: dict(f.metadata) for f in dataclasses.fields(cfg_cls)}


def bound_problem(meta: dict, value) -> str | None:
    """Why ``value`` breaks an option's bounds (``minimum``, ``maximum``, ``positive``), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if meta.get("minimum") is not None and value < meta["minimum"]:
        return f"must be >= {meta['minimum']}, got {value}"
    if meta.get("maximum") is not None and value > meta["maximum"]:
        return f"must be <= {meta['maximum']}, got {value}"
    if meta.get("positive") and not value > 0:
        return f"must be > 0, got {value}"
    return None
