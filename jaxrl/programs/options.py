"""Options of every program: defaults <- program defaults <- YAML preset <- flags, validated on the host.

A program's options are a few frozen dataclasses (option *groups*): the run
options every program shares (:class:`RunOptions`: seeds, chunks, output,
checkpoints, devices, logging), and its own (the environment and budget, the
algorithm, the curriculum, the search...). Each field is declared once with
:func:`jaxrl.config.option`, which gives its flag, help, allowed values and
bounds, and whether it is *traced*: a traced option is a scalar leaf of the
program's hyperparameter pytree, so ``--sweep name=v1,v2`` over it is a
``vmap`` of one compiled program.

Everything here runs before anything compiles. User mistakes raise
:class:`~jaxrl.config.ConfigError` with one line naming the flag (or the preset
file and key) and what is allowed; entry points turn it into exit code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml

from jaxrl.config import ConfigError, bound_problem, field_meta, option, traced_fields


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run is carried out, shared by every program (its program may change the defaults)."""

    num_seeds: int = option(1, "independent seeds run together in one compiled program", minimum=1)
    seed: int = option(0, "base random seed")
    sweep: dict = option({}, "grid over traced options: --sweep name=v1,v2 (repeatable; each grid point runs every seed, "
                             "all in one program)")
    num_chunks: int = option(20, "compiled chunks per run: metrics, progress, evaluation and checkpoint after each", minimum=1)
    eval_episodes: int = option(16, "evaluation episodes per seed after each chunk", minimum=1)
    out_dir: str = option("", "run directory (default runs/<program>_<method>_<env>)")
    checkpoint_every: int = option(1, "save the complete state every N chunks (0: never)", minimum=0)
    keep_checkpoints: int = option(3, "number of newest checkpoints kept", minimum=1)
    nan_policy: str = option("stop", "on a non-finite loss or parameter: stop the run (exit 3), or mask the member and go on",
                             choices=("stop", "mask"))
    tensorboard: bool = option(False, "also write TensorBoard event files to <out_dir>/tensorboard")
    wandb: bool = option(False, "also log to Weights & Biases (WANDB_MODE=offline works without network)")
    wandb_project: str = option("jaxrl", "Weights & Biases project")
    resume: str = option("", "continue the run in this directory from its newest intact checkpoint, with its saved config")
    overwrite: bool = option(False, "replace an existing run directory")
    quiet: bool = option(False, "no progress output")
    devices: str = option("1", "local devices the members (seeds x grid points) are sharded over: a count or 'all'; "
                               "the member count must be a multiple of it")
    seed_batch: int = option(0, "run the members in sequential batches of this many (one compiled program, same "
                                "results and run directory); must divide the member count (0: all at once)", minimum=0)
    cpu_threads: int = option(0, "threads of XLA:CPU's intra-op pool (0: XLA's default, one per core); 1 speeds up "
                                 "one-seed runs of small networks (DQN/PPO CartPole) and slows bigger programs", minimum=0)
    compile_cache: str = option("auto", "JAX's persistent compilation cache: a directory, 'auto' "
                                        "(~/.cache/jaxrl/xla, or $JAXRL_COMPILE_CACHE) or 'off'; an unchanged "
                                        "configuration then skips XLA compilation")


RUN_ONLY_OPTIONS = ("resume", "overwrite", "quiet")  # how to run, not what the run is: not saved in config.yaml
COUNT_OR_ALL_OPTIONS = ("devices",)  # strings holding a count or "all": YAML may give them as integers
PROGRAM_KEY = "program"  # config.yaml names the program that wrote it


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def options_to_argv(options: dict) -> list[str]:
    """Keyword options of a Python entry (``train(num_seeds=4, ...)``) as CLI flags: booleans as ``--x`` /
    ``--no-x``, dicts as ``k=v,...`` (``sweep`` as one ``--sweep k=v1,v2`` per key), sequences comma-separated."""
    argv = []
    for key, value in options.items():
        name = flag(key)
        if key == "sweep" and isinstance(value, dict):
            for k, values in value.items():
                values = values if isinstance(values, (list, tuple)) else [values]
                argv += ["--sweep", f"{k}=" + ",".join(map(str, values))]
        elif isinstance(value, bool):
            argv.append(name if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            argv += [name, ",".join(f"{k}={v}" for k, v in value.items())]
        elif isinstance(value, (list, tuple)):
            argv += [name, ",".join(map(str, value))]
        else:
            argv += [name, str(value)]
    return argv


def suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a :class:`ConfigError` (one line, exit code 2, no usage dump)."""

    def error(self, message):
        raise ConfigError(message)


def parse_kv_list(text: str, what: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise ConfigError(f"{what}: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _yaml_scalar(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce(name: str, value: Any, default: Any, where: str):
    """Converts ``value`` to the type of ``default``; raises ConfigError naming ``where``."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                lowered = value.lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError
            if isinstance(value, bool):
                return value
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(str(value).replace("_", ""))
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, tuple):
            if value in ("", (), []):  # an empty list of layer sizes: a linear network
                return ()
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(int(v) for v in items)
        if isinstance(default, str):
            if name in COUNT_OR_ALL_OPTIONS and isinstance(value, int) and not isinstance(value, bool):
                return str(value)  # "devices: 4" in a YAML file
            if not isinstance(value, str):
                raise ValueError
            return value
        if isinstance(default, dict):
            if isinstance(value, str):
                value = [value]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):  # repeated flags merge, later keys win
                return {k: _yaml_scalar(v) for item in value for k, v in parse_kv_list(item, where).items()}
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        kind = type(default).__name__ if not isinstance(default, tuple) else "comma-separated integers"
        raise ConfigError(f"{where}: expected {kind}, got {value!r}") from None
    return value


def parse_sweep(items, where: str, groups: tuple[type, ...]) -> dict[str, list[float]]:
    """``["lr=1e-4,3e-4", ...]`` or a YAML mapping -> ``{"lr": [1e-4, 3e-4]}``, checked against the traced
    options of the program's groups (bounds included)."""
    meta = {name: m for cls in groups for name, m in field_meta(cls).items()}
    allowed = [name for cls in groups for name in traced_fields(cls)]
    pairs = list(items.items()) if isinstance(items, dict) else []
    if not isinstance(items, dict):
        for item in items:
            if "=" not in item:
                raise ConfigError(f"{where}: expected name=v1,v2,..., got {item!r}")
            key, values = item.split("=", 1)
            pairs.append((key.strip(), values.split(",")))
    sweep = {}
    for key, values in pairs:
        if key not in allowed:
            sweepable = ", ".join(allowed) if allowed else "none"
            raise ConfigError(f"{where}: {key!r} cannot be swept{suggest(key, allowed)}; sweepable: {sweepable}")
        values = values if isinstance(values, (list, tuple)) else [values]
        parsed = []
        for v in values:
            try:
                if isinstance(v, bool):
                    raise ValueError
                parsed.append(float(v))
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: value {v!r} for {key!r} is not a number") from None
        if not parsed:
            raise ConfigError(f"{where}: no values for {key!r}")
        for v in parsed:
            problem = bound_problem(meta[key], v)
            if problem:
                raise ConfigError(f"{where}: {key} {problem}")
        if key in sweep:
            raise ConfigError(f"{where}: {key!r} is swept twice")
        sweep[key] = parsed
    return sweep


def add_option_arguments(group, cls, skip=(), defaults: dict | None = None, mark_sweepable: bool = True) -> None:
    """One flag per field of the option dataclass ``cls``, its help showing the default (``defaults`` override
    the dataclass's): booleans as ``--x / --no-x``, dicts (``--env-kwargs``) and ``--sweep`` repeatable."""
    defaults = defaults or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        default = defaults.get(f.name, field_default(f))
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        extra = " [sweepable]" if mark_sweepable and meta.get("traced") else ""
        choices = f" {{{','.join(meta['choices'])}}}" if meta.get("choices") else ""
        help_text = f"{meta['help']}{choices}{extra} (default: {shown!r})".replace("%", "%%")
        if f.name == "sweep":
            group.add_argument("--sweep", action="append", metavar="NAME=V1,V2", help=help_text)
        elif isinstance(default, bool):
            group.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, help=help_text)
        elif isinstance(default, dict):  # repeatable: --env-kwargs backend=mjx --env-kwargs episode_length=500
            group.add_argument(flag(f.name), action="append", metavar="K=V,...", help=help_text + " (repeatable, merged)")
        else:
            group.add_argument(flag(f.name), metavar=f.name.upper(), help=help_text)


def load_yaml_config(path: str) -> dict:
    """A preset or saved ``config.yaml`` as a mapping; raises ConfigError naming ``--config``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config: file {path!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"--config: {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of option: value")
    return data


def validate_values(cls, values: dict, sources: dict) -> None:
    """Choices and bounds of the given values of ``cls``'s options; raises ConfigError naming their source."""
    meta = field_meta(cls)
    for name, value in values.items():
        m = meta[name]
        where = sources.get(name, flag(name))
        if m.get("choices") and value not in m["choices"]:
            raise ConfigError(f"{where}: {value!r} is not allowed; choose from {', '.join(m['choices'])}")
        problem = bound_problem(m, value)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        if isinstance(value, tuple) and any(v < 1 for v in value):
            raise ConfigError(f"{where}: expected positive layer sizes, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """A program's validated options: the shared :class:`RunOptions` and the program's own groups.

    Attributes:
        program: the program's name (``train``, ``evolve``, ``meta_train``, ``ued``...).
        run: the run options.
        groups: group name -> options dataclass instance (e.g. ``{"experiment": ..., "algo": PPOConfig(...)}``).
        sources: option name -> where its value came from (a flag or ``preset: key``), for error messages.
        command_line: the command that asked for the run (``reproducibility.json``).
    """

    program: str
    run: RunOptions
    groups: dict
    sources: dict = dataclasses.field(default_factory=dict, compare=False)
    command_line: tuple = ()

    def __getattr__(self, name):  # cfg.algo, cfg.curriculum ... : a group by name
        groups = self.__dict__.get("groups", {})
        if name in groups:
            return groups[name]
        raise AttributeError(name)

    def value(self, name: str):
        """An option's value, whichever group holds it."""
        for group in (self.run, *self.groups.values()):
            if name in {f.name for f in dataclasses.fields(group)}:
                return getattr(group, name)
        raise KeyError(name)

    def where(self, name: str) -> str:
        """Where the option ``name`` was set (a flag, or ``preset.yaml: key``), for error messages."""
        return self.sources.get(name, flag(name))

    def replace_group(self, name: str, **changes) -> "Config":
        groups = dict(self.groups)
        groups[name] = dataclasses.replace(groups[name], **changes)
        return dataclasses.replace(self, groups=groups)

    def to_dict(self) -> dict:
        """The flat ``config.yaml`` of the run (run-only options left out), naming the program."""
        out = {PROGRAM_KEY: self.program}
        for group in (*self.groups.values(), self.run):
            out.update(dataclasses.asdict(group))
        for name in RUN_ONLY_OPTIONS:
            out.pop(name, None)
        return out
