"""Programs: what a researcher runs, each on the one host driver (:mod:`jaxrl.programs.driver`).

``PROGRAMS`` maps a program's name (``config.yaml``'s ``program``) to the module
that defines its :class:`~jaxrl.programs.driver.Program` as ``PROGRAM``, its
Python entry (named like the program) and ``main`` for its entry point
``experiments/<name>.py``. Modules are imported on first use, so importing
one program does not build every other's dependencies. The entries are
``from jaxrl import train, evolve, meta_train, ued, qd, adversarial, reward_opt``.
"""
from __future__ import annotations

import importlib

PROGRAMS = {
    "train": "jaxrl.programs.train",
    "evolve": "jaxrl.programs.evolve",
    "meta_train": "jaxrl.programs.meta_train",
    "ued": "jaxrl.programs.ued",
    "qd": "jaxrl.programs.qd",
    "adversarial": "jaxrl.programs.adversarial",
    "reward_opt": "jaxrl.programs.reward_opt",
}


def program_module(name: str):
    """The module of program ``name`` (KeyError for an unknown one)."""
    return importlib.import_module(PROGRAMS[name])


def get_program(name: str):
    """The :class:`~jaxrl.programs.driver.Program` registered as ``name``."""
    return program_module(name).PROGRAM


def program_for_config(values: dict) -> str:
    """The program a ``config.yaml`` or preset belongs to: its ``program`` key, or (presets and runs written
    before configs named their program) the program whose options it holds."""
    if values.get("program"):
        return str(values["program"])
    if {"inner_timesteps", "inner_config", "seeds_per_member", "normalize_fitness"} & set(values):
        return "meta_train"
    if "emitter" in values:
        return "qd"
    if "strategy" in values and "algo" not in values:
        return "meta_train" if "objective" in values else "evolve"
    return "ued" if "method" in values else "train"
