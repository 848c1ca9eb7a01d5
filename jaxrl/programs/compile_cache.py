"""JAX's persistent compilation cache, on by default: re-running an unchanged configuration skips XLA.

The cache is keyed by the compiled program (its HLO, compile options, devices
and JAX/XLA versions), so a different configuration, shape or JAX version
compiles anew and a cached executable is the program a cold compile would
give. ``--compile-cache auto`` uses ``$JAXRL_COMPILE_CACHE`` or
``~/.cache/jaxrl/xla`` (``$XDG_CACHE_HOME`` respected); ``off`` disables it.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import jax
from jax import monitoring

from jaxrl.config import ConfigError

CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
_hits = {"count": 0}
_lock = threading.Lock()
_listening = {"on": False}


def default_cache_dir() -> Path:
    if os.environ.get("JAXRL_COMPILE_CACHE"):
        return Path(os.environ["JAXRL_COMPILE_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "jaxrl" / "xla"


def cache_dir_for(option: str) -> Path | None:
    """The directory ``--compile-cache`` names (None: off); raises ConfigError if it cannot be a directory."""
    text = option.strip()
    if text.lower() == "off":
        return None
    path = default_cache_dir() if text.lower() == "auto" else Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--compile-cache: {text!r} exists and is not a directory; give a directory, 'auto' or 'off'")
    return path


def _count_hit(event: str, **kwargs) -> None:
    if event == CACHE_HIT_EVENT:
        with _lock:
            _hits["count"] += 1


def enable(path: Path | None) -> None:
    """Points JAX's persistent cache at ``path`` (None: disables it) for the compilations that follow."""
    if not _listening["on"]:
        monitoring.register_event_listener(_count_hit)
        _listening["on"] = True
    if path is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable cache is not worth failing a run for: compile without it
        jax.config.update("jax_enable_compilation_cache", False)
        return
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Cache every program that takes noticeable time to compile (JAX's default threshold is 1 s).
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    try:  # JAX initialises its cache once; pointing it at a new directory needs a reset
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):
        pass


def hits() -> int:
    """Persistent-cache hits recorded so far in this process (compare before and after a compile)."""
    with _lock:
        return _hits["count"]
