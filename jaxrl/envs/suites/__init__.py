"""Environment suites beyond gymnax and brax, each behind jaxrl's Env protocol and installed as an optional extra.

A suite's environments are named ``<prefix>/<id>`` in the one registry (:func:`jaxrl.envs.make`). Their names are
listed statically, so ``--env`` accepts them and, when the suite is not installed, says in one line which extra
to install instead of failing on an import deep inside a program.

    prefix      extra        package
    xminigrid   xminigrid    XLand-MiniGrid (MiniGrid tasks; XLand rule-set tasks, rule sets generated locally)
    jumanji     jumanji      Jumanji (Snake, Game2048, Maze: generators that need no download)
    playground  playground   MuJoCo Playground (the DM Control suite; Go1, G1 and Berkeley Humanoid locomotion)
    craftax     craftax      Craftax (Classic and full, symbolic observations)
"""
from __future__ import annotations

import importlib

# prefix -> (adapter module, extra, package imported, names the adapter accepts)
SUITES = {
    "xminigrid": ("jaxrl.envs.suites.xminigrid", "xminigrid", "xminigrid",
                  ("MiniGrid-BlockedUnlockPickUp", "MiniGrid-DoorKey-5x5", "MiniGrid-DoorKey-6x6", "MiniGrid-DoorKey-8x8",
                   "MiniGrid-DoorKey-16x16", "MiniGrid-Empty-5x5", "MiniGrid-Empty-6x6", "MiniGrid-Empty-8x8",
                   "MiniGrid-Empty-16x16", "MiniGrid-EmptyRandom-5x5", "MiniGrid-EmptyRandom-6x6",
                   "MiniGrid-EmptyRandom-8x8", "MiniGrid-EmptyRandom-16x16", "MiniGrid-FourRooms", "MiniGrid-LockedRoom",
                   "MiniGrid-MemoryS8", "MiniGrid-MemoryS16", "MiniGrid-MemoryS32", "MiniGrid-MemoryS64",
                   "MiniGrid-MemoryS128", "MiniGrid-Playground", "MiniGrid-Unlock", "MiniGrid-UnlockPickUp",
                   "XLand-MiniGrid-R1-9x9", "XLand-MiniGrid-R1-11x11", "XLand-MiniGrid-R1-13x13",
                   "XLand-MiniGrid-R1-15x15", "XLand-MiniGrid-R1-17x17", "XLand-MiniGrid-R2-9x9",
                   "XLand-MiniGrid-R2-11x11", "XLand-MiniGrid-R2-13x13", "XLand-MiniGrid-R2-15x15",
                   "XLand-MiniGrid-R2-17x17", "XLand-MiniGrid-R4-9x9", "XLand-MiniGrid-R4-11x11",
                   "XLand-MiniGrid-R4-13x13", "XLand-MiniGrid-R4-15x15", "XLand-MiniGrid-R4-17x17",
                   "XLand-MiniGrid-R6-13x13", "XLand-MiniGrid-R6-17x17", "XLand-MiniGrid-R6-19x19",
                   "XLand-MiniGrid-R9-16x16", "XLand-MiniGrid-R9-19x19", "XLand-MiniGrid-R9-25x25")),
    "jumanji": ("jaxrl.envs.suites.jumanji", "jumanji", "jumanji", ("Snake-v1", "Game2048-v1", "Maze-v0")),
    "playground": ("jaxrl.envs.suites.playground", "playground", "mujoco_playground",
                   ("AcrobotSwingup", "AcrobotSwingupSparse", "BallInCup", "CartpoleBalance", "CartpoleBalanceSparse",
                    "CartpoleSwingup", "CartpoleSwingupSparse", "CheetahRun", "FingerSpin", "FingerTurnEasy",
                    "FingerTurnHard", "FishSwim", "HopperHop", "HopperStand", "HumanoidStand", "HumanoidWalk",
                    "HumanoidRun", "PendulumSwingup", "PointMass", "ReacherEasy", "ReacherHard", "SwimmerSwimmer6",
                    "WalkerRun", "WalkerStand", "WalkerWalk",
                    "Go1JoystickFlatTerrain", "Go1JoystickRoughTerrain", "Go1Getup", "Go1Handstand", "Go1Footstand",
                    "G1JoystickFlatTerrain", "G1JoystickRoughTerrain", "BerkeleyHumanoidJoystickFlatTerrain",
                    "BerkeleyHumanoidJoystickRoughTerrain")),
    "craftax": ("jaxrl.envs.suites.craftax", "craftax", "craftax", ("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1")),
}


class MissingSuiteError(ValueError):
    """A suite's environment was asked for but the suite is not installed."""


def suite_names() -> list[str]:
    return [f"{prefix}/{name}" for prefix, (_, _, _, names) in SUITES.items() for name in names]


def is_suite_name(name: str) -> bool:
    return name.split("/", 1)[0] in SUITES and "/" in name


def make_suite_env(name: str, **kwargs):
    """The adapted env ``<prefix>/<id>``; :class:`MissingSuiteError` (one line naming the extra) when the suite's
    package is not installed."""
    prefix, env_id = name.split("/", 1)
    module, extra, package, _ = SUITES[prefix]
    try:
        importlib.import_module(package)
    except ImportError:
        raise MissingSuiteError(f"{name} needs the {extra!r} extra: pip install -e '.[{extra}]'") from None
    return importlib.import_module(module).make(env_id, **kwargs)
