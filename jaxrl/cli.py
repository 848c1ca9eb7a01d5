"""Experiment configuration from defaults, a YAML preset and command-line flags.

Precedence: dataclass defaults < ``--config file.yaml`` < flags. Everything is
validated on the host before anything is compiled; user mistakes raise
:class:`ConfigError`, which entry points turn into one line on stderr and exit
code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

from jaxrl.agents import ALGORITHMS
from jaxrl.config import ConfigError, bound_problem, field_meta, option, traced_fields  # noqa: F401


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Options of a training experiment that are not specific to the algorithm."""

    algo: str = option("ppo", "algorithm", choices=tuple(ALGORITHMS))
    env: str = option("CartPole-v1", "environment name (gymnax id, brax/<name> or probe/<name>)")
    env_kwargs: dict = option({}, "keyword arguments for the environment, e.g. backend=spring,episode_length=1000")
    total_timesteps: int = option(500_000, "environment steps per seed", minimum=1)
    num_seeds: int = option(1, "independent seeds trained together in one program", minimum=1)
    seed: int = option(0, "base random seed")
    sweep: dict = option({}, "hyperparameter grid: --sweep lr=1e-4,3e-4 (repeatable; traced options only)")
    num_chunks: int = option(20, "compiled chunks per run: metrics, progress and evaluation after each", minimum=1)
    eval_episodes: int = option(16, "evaluation episodes per seed after each chunk", minimum=1)
    eval_stochastic: bool = option(False, "evaluate the stochastic policy instead of its mode")
    out_dir: str = option("", "run directory (default runs/<algo>_<env>)")
    checkpoint_every: int = option(1, "save the complete runner state every N chunks (0: never)", minimum=0)
    keep_checkpoints: int = option(3, "number of newest checkpoints kept", minimum=1)
    nan_policy: str = option("stop", "on a non-finite loss or parameter: stop the run, or mask the member and go on", choices=("stop", "mask"))
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


RUN_ONLY_OPTIONS = ("resume", "overwrite", "quiet")  # how to run, not what the run is: not saved in config.yaml


COUNT_OR_ALL_OPTIONS = ("devices",)  # strings holding a count or "all": YAML may give them as integers


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def options_to_argv(options: dict) -> list[str]:
    """Keyword options of a notebook entry point (``train(num_seeds=4, ...)``) as CLI flags:
    booleans as ``--x`` / ``--no-x``, dicts as ``k=v,...``, sequences comma-separated."""
    argv = []
    for key, value in options.items():
        flag = _flag(key)
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            argv += [flag, ",".join(f"{k}={v}" for k, v in value.items())]
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        raise ConfigError(message)


def _parse_kv_list(text: str, what: str) -> dict[str, str]:
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


def _coerce(name: str, value: Any, default: Any, where: str):
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
                return {k: _yaml_scalar(v) for item in value for k, v in _parse_kv_list(item, where).items()}
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        kind = type(default).__name__ if not isinstance(default, tuple) else "comma-separated integers"
        raise ConfigError(f"{where}: expected {kind}, got {value!r}") from None
    return value


def _parse_sweep(items, where: str, algo_cls) -> dict[str, list[float]]:
    """``["lr=1e-4,3e-4", ...]`` or a YAML mapping -> ``{"lr": [1e-4, 3e-4]}``, checked against traced options."""
    allowed = traced_fields(algo_cls)
    pairs = []
    if isinstance(items, dict):
        pairs = [(k, v) for k, v in items.items()]
    else:
        for item in items:
            if "=" not in item:
                raise ConfigError(f"{where}: expected name=v1,v2,..., got {item!r}")
            key, values = item.split("=", 1)
            pairs.append((key.strip(), values.split(",")))
    sweep = {}
    for key, values in pairs:
        if key not in allowed:
            raise ConfigError(f"{where}: {key!r} cannot be swept{_suggest(key, allowed)}; sweepable: {', '.join(allowed)}")
        if not isinstance(values, (list, tuple)):
            values = [values]
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
            problem = bound_problem(field_meta(algo_cls)[key], v)
            if problem:
                raise ConfigError(f"{where}: {key} {problem}")
        if key in sweep:
            raise ConfigError(f"{where}: {key!r} is swept twice")
        sweep[key] = parsed
    return sweep


def build_parser(algo_cls, prog: str = "train.py") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Train an agent; seeds and sweeps run together in one compiled program.",
                     argument_default=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML preset; flags override its values")
    for group_name, cls in (("experiment", ExperimentConfig), (f"algorithm ({algo_cls.__name__})", algo_cls)):
        add_option_arguments(parser.add_argument_group(group_name), cls, mark_sweepable=True)
    from jaxrl.parallel import add_distributed_arguments  # parallel imports this module

    add_distributed_arguments(parser)
    return parser


def add_option_arguments(group, cls, skip=(), mark_sweepable: bool = False) -> None:
    """One flag per field of the option dataclass ``cls`` (see :func:`jaxrl.config.option`), its help showing
    the default: booleans as ``--x / --no-x``, dicts (``--env-kwargs``) and ``--sweep`` repeatable."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        extra = " [sweepable]" if mark_sweepable and meta.get("traced") else ""
        choices = f" {{{','.join(meta['choices'])}}}" if meta.get("choices") else ""
        help_text = f"{meta['help']}{choices}{extra} (default: {shown!r})"
        if f.name == "sweep":
            group.add_argument("--sweep", action="append", metavar="NAME=V1,V2", help=help_text)
        elif isinstance(default, bool):
            group.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, help=help_text)
        elif isinstance(default, dict):  # repeatable: --env-kwargs backend=mjx --env-kwargs episode_length=500
            group.add_argument(_flag(f.name), action="append", metavar="K=V,...", help=help_text + " (repeatable, merged)")
        else:
            group.add_argument(_flag(f.name), metavar=f.name.upper(), help=help_text)


def load_yaml_config(path: str) -> dict:
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


@dataclasses.dataclass(frozen=True)
class ResolvedConfig:
    experiment: ExperimentConfig
    algo: Any  # the algorithm's config dataclass
    command_line: tuple = ()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self.experiment)
        d.update(dataclasses.asdict(self.algo))
        for name in RUN_ONLY_OPTIONS:
            d.pop(name, None)
        return d


def _validate_values(cls, values: dict, sources: dict) -> None:
    meta = field_meta(cls)
    for name, value in values.items():
        m = meta[name]
        where = sources.get(name, _flag(name))
        if m.get("choices") and value not in m["choices"]:
            raise ConfigError(f"{where}: {value!r} is not allowed; choose from {', '.join(m['choices'])}")
        problem = bound_problem(m, value)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        if isinstance(value, tuple) and (not value or any(v < 1 for v in value)):
            raise ConfigError(f"{where}: expected positive layer sizes, got {value!r}")


def resolve(argv: list[str], prog: str = "train.py") -> ResolvedConfig:
    """Parses flags (and the ``--config`` file they name) into validated configs."""
    pre = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    pre.add_argument("--config")
    pre.add_argument("--algo")
    known, _ = pre.parse_known_args(argv)
    file_values = load_yaml_config(known.config) if getattr(known, "config", None) else {}
    algo = getattr(known, "algo", None) or file_values.get("algo", "ppo")
    if algo not in ALGORITHMS:
        raise ConfigError(f"--algo: unknown algorithm {algo!r}{_suggest(str(algo), ALGORITHMS)}; choose from {', '.join(ALGORITHMS)}")
    algo_cls = ALGORITHMS[algo].config_cls
    args = vars(build_parser(algo_cls, prog).parse_args(argv))
    args.pop("config", None)

    exp_fields = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    algo_fields = {f.name: f for f in dataclasses.fields(algo_cls)}
    all_fields = {**exp_fields, **algo_fields}
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in file_values.items():
        if key not in all_fields:
            raise ConfigError(f"--config: unknown key {key!r} in {known.config}{_suggest(str(key), all_fields)}")
        merged[key] = value
        sources[key] = f"{known.config}: {key}"
    for key, value in args.items():
        merged[key] = value
        sources[key] = _flag(key)

    values = {}
    for key, value in merged.items():
        f = all_fields[key]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if key == "sweep":
            values[key] = _parse_sweep(value, sources[key], algo_cls)
        else:
            values[key] = _coerce(key, value, default, sources[key])
    exp_values = {k: v for k, v in values.items() if k in exp_fields}
    algo_values = {k: v for k, v in values.items() if k in algo_fields}
    _validate_values(ExperimentConfig, exp_values, sources)
    _validate_values(algo_cls, algo_values, sources)
    experiment = ExperimentConfig(**exp_values)
    algo_cfg = algo_cls(**algo_values)
    if not experiment.out_dir:
        experiment = dataclasses.replace(experiment, out_dir=f"runs/{experiment.algo}_{experiment.env.replace('/', '_')}")
    resolved = ResolvedConfig(experiment, algo_cfg, tuple(sys.argv[:1]) + tuple(argv))
    _check_consistency(resolved, sources)
    return resolved


def _check_consistency(cfg: ResolvedConfig, sources: dict) -> None:
    """Cross-field checks that need the environment or several options."""
    from jaxrl import envs

    exp, algo = cfg.experiment, cfg.algo
    if exp.env not in envs.registered_envs():
        raise ConfigError(f"--env: {envs.registry.unknown_env_message(exp.env)}")
    from jaxrl.parallel import plan_members
    from jaxrl.training.sweep import expand_grid

    plan_members(exp.devices, exp.num_seeds, len(expand_grid(exp.sweep)), exp.seed_batch)
    if hasattr(algo, "num_minibatches"):
        batch = algo.num_envs * algo.rollout_len
        if batch % algo.num_minibatches:
            raise ConfigError(
                f"--num-minibatches: {algo.num_minibatches} does not divide num_envs * rollout_len = {batch}"
            )
        if getattr(algo, "recurrent", "none") != "none" and algo.num_envs % algo.num_minibatches:
            # A recurrent minibatch holds whole env sequences (memory needs the steps in order).
            where = sources.get("num_minibatches", sources.get("num_envs", "--num-minibatches"))
            raise ConfigError(f"{where}: {algo.num_minibatches} minibatches do not divide num_envs = {algo.num_envs}; "
                              f"with --recurrent {algo.recurrent} minibatches are split over environments")
        if exp.total_timesteps < batch:
            raise ConfigError(f"--total-timesteps: {exp.total_timesteps} is less than one update of {batch} steps (num_envs * rollout_len)")
    if getattr(algo, "value_loss", "mse") == "hl_gauss":  # a categorical value head needs a proper support
        if algo.value_min >= algo.value_max:
            where = sources.get("value_max", sources.get("value_min", "--value-max"))
            raise ConfigError(f"{where}: the value support needs value_min < value_max, got [{algo.value_min}, {algo.value_max}]")
        if getattr(algo, "value_sigma_ratio", 1.0) <= 0:
            raise ConfigError(f"{sources.get('value_sigma_ratio', '--value-sigma-ratio')}: must be > 0 with --value-loss hl_gauss, got {algo.value_sigma_ratio}")
