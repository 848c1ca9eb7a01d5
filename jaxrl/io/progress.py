"""Progress reporting between chunks: a live line on a terminal, plain lines otherwise."""
from __future__ import annotations

import sys
import time


def _fmt_steps(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{int(n)}"


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Shows steps, return, throughput and ETA after every chunk.

    On an interactive terminal the line is redrawn in place with a bar; when
    output is redirected (logs, CI) one plain line is printed per chunk.
    """

    def __init__(self, total_steps: float, stream=None, enabled: bool = True, members: int = 1):
        """``total_steps`` and the ``steps`` of :meth:`update` count one member's steps; ``steps_per_second``
        counts all ``members``' together (what the run's throughput is), so the ETA divides by it per member."""
        self.total = float(total_steps)
        self.members = int(members)
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()

    def update(self, steps: float, steps_per_second: float, **fields):
        if not self.enabled:
            return
        frac = min(1.0, steps / self.total) if self.total else 1.0
        eta = (self.total - steps) * self.members / steps_per_second if steps_per_second > 0 else float("nan")
        parts = [f"{_fmt_steps(steps)}/{_fmt_steps(self.total)} steps"]
        parts += [f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()]
        parts += [f"{_fmt_steps(steps_per_second)} steps/s", f"elapsed {_fmt_time(time.perf_counter() - self.start)}"]
        parts += [f"ETA {_fmt_time(eta) if eta == eta else '?'}"]
        text = " | ".join(parts)
        if self.tty:
            width = 24
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            self.stream.write(f"\r[{bar}] {frac * 100:5.1f}% {text}\033[K")
        else:
            self.stream.write(f"[{frac * 100:5.1f}%] {text}\n")
        self.stream.flush()

    def close(self):
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
