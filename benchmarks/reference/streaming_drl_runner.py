"""Runs one unmodified script of the reference streaming-RL code (github.com/mohmdelsayed/streaming-drl, PyTorch) and
times its env steps; used by ``benchmarks/stream_throughput.py`` as the side-by-side baseline.

Run it with an interpreter that has torch, gymnasium and MinAtar (``pip install torch gymnasium minatar``)::

    python benchmarks/reference/streaming_drl_runner.py --reference-dir /path/to/streaming-drl \\
        --script stream_q_minatar.py --env MinAtar/Breakout-v1 --steps 20000 --torch-threads 1

Around the script, only what the installed versions need: MinAtar's gymnasium ids are registered
(``minatar.gym.register_envs``; gymnasium >= 1.0 no longer loads plugins by itself), torch's thread count is set, and
the script runs in a temporary working directory (it pickles its returns there). torch, gymnasium and the script's
own modules are imported before the clock starts; the timed span is the script's ``main`` for ``--steps`` steps
(env creation included, negligible at these lengths). Prints ``RESULT {json}``.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-dir", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--work-dir", default="", help="run there and keep the script's pickled returns (default: a "
                        "temporary directory, deleted)")
    args = parser.parse_args()

    import gymnasium
    import minatar.gym
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    minatar.gym.register_envs()
    sys.path.insert(0, os.path.abspath(args.reference_dir))
    script = os.path.join(os.path.abspath(args.reference_dir), args.script)
    with tempfile.TemporaryDirectory() as temporary:
        work = os.path.abspath(args.work_dir) if args.work_dir else temporary
        os.makedirs(work, exist_ok=True)
        os.chdir(work)
        sys.argv = [script, "--env_name", args.env, "--total_steps", str(args.steps), "--seed", str(args.seed)]
        start = time.perf_counter()
        runpy.run_path(script, run_name="__main__")
        seconds = time.perf_counter() - start
    print("RESULT " + json.dumps({"implementation": "reference (PyTorch)", "script": args.script, "env": args.env,
                                  "steps": args.steps, "seconds": seconds, "env_steps_per_second": args.steps / seconds,
                                  "torch": torch.__version__, "gymnasium": gymnasium.__version__,
                                  "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
