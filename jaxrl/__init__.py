"""jaxrl: reinforcement-learning research in JAX; whole runs, sweeps, evolution and curricula as compiled programs.

The Python entries of the programs (each returns a :class:`~jaxrl.programs.driver.RunResult`):
``from jaxrl import train, evolve, meta_train, ued, qd, adversarial, reward_opt``.
"""
from __future__ import annotations

_ENTRIES = ("train", "evolve", "meta_train", "ued", "qd", "adversarial", "reward_opt")


def __getattr__(name: str):  # imported on first use: ``import jaxrl.envs`` does not build every program
    if name in _ENTRIES:
        from jaxrl.programs import program_module

        return getattr(program_module(name), name)
    raise AttributeError(f"module 'jaxrl' has no attribute {name!r}")


__all__ = list(_ENTRIES)
