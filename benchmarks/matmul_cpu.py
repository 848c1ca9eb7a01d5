"""Dense-layer matmul speed on one CPU core: XLA:CPU (what jaxrl's compiled programs run) vs torch (what
stable-baselines3 runs), for the layer shapes of the throughput benchmarks.

At one seed the PPO and DQN CartPole programs are bound by their networks'
forward and backward passes (see the README's throughput sections), so the
per-core speed of these small matmuls sets a ceiling on jaxrl's single-seed
ratio to stable-baselines3 that no change to the training loop lifts. This
script measures that ceiling directly: for each ``(m, k, n)`` it times the
three products a dense layer's training step makes (forward ``X W``, weight
gradient ``X^T dY``, input gradient ``dY W^T``), float32, on one thread.

* XLA:CPU: ``reps`` products inside one jitted ``lax.scan`` (as inside a
  training program, so dispatch is not counted), each on a different slice of
  the input so nothing is hoisted out of the loop.
* torch: the same products in a Python loop with ``torch.set_num_threads(1)``
  (each call's dispatch counted, as SB3 pays it).

Both sides run in this one process, side by side, each best of ``--repeats``.

Usage::

    python benchmarks/matmul_cpu.py                # writes results/matmul_cpu.md and .json
    python benchmarks/matmul_cpu.py --reps 500 --out-name smoke
"""
from __future__ import annotations

import argparse
import json
import time

from bench_common import RESULTS, loadavg, machine_info

# (m, k, n): batch rows x input features -> output features, and where the shape comes from.
SHAPES = [
    (128, 64, 64, "PPO CartPole minibatch, 64-64 hidden layer"),
    (128, 4, 64, "PPO CartPole minibatch, input layer"),
    (1024, 64, 64, "PPO CartPole rollout values (obs and next obs)"),
    (128, 120, 84, "DQN CartPole batch, 120-84 hidden layer"),
    (256, 256, 256, "SAC Pendulum batch, 256-256 hidden layer"),
]
PRODUCTS = ("forward X W", "weight grad X^T dY", "input grad dY W^T")


def time_xla(m: int, k: int, n: int, reps: int, repeats: int) -> list[float]:
    """Seconds per product for each of :data:`PRODUCTS`, XLA:CPU, best of ``repeats``."""
    import jax
    import jax.numpy as jnp

    key_x, key_w, key_dy = jax.random.split(jax.random.PRNGKey(0), 3)
    xs = jax.random.normal(key_x, (reps, m, k))
    w = jax.random.normal(key_w, (k, n))
    dys = jax.random.normal(key_dy, (reps, m, n))
    products = [
        lambda x, dy: x @ w,
        lambda x, dy: x.T @ dy,
        lambda x, dy: dy @ w.T,
    ]
    seconds = []
    for product in products:
        @jax.jit
        def loop(xs, dys, product=product):
            def body(total, inputs):
                return total + jnp.sum(product(*inputs)) * 1e-9, None  # consumed, so not eliminated
            return jax.lax.scan(body, jnp.float32(0.0), (xs, dys))[0]

        loop(xs, dys).block_until_ready()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            loop(xs, dys).block_until_ready()
            best = min(best, time.perf_counter() - start)
        seconds.append(best / reps)
    return seconds


def time_torch(m: int, k: int, n: int, reps: int, repeats: int) -> list[float]:
    """Seconds per product for each of :data:`PRODUCTS`, torch on one thread, best of ``repeats``."""
    import torch

    torch.set_num_threads(1)
    x, w, dy = torch.randn(m, k), torch.randn(k, n), torch.randn(m, n)
    products = [lambda: x @ w, lambda: x.T @ dy, lambda: dy @ w.T]
    seconds = []
    with torch.no_grad():
        for product in products:
            for _ in range(min(reps, 100)):
                product()
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(reps):
                    product()
                best = min(best, time.perf_counter() - start)
            seconds.append(best / reps)
    return seconds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=2000, help="products per timed loop")
    p.add_argument("--repeats", type=int, default=3, help="timed loops per row; the fastest is kept")
    p.add_argument("--out-name", default="matmul_cpu", help="results/<name>.md and .json")
    args = p.parse_args(argv)
    if args.reps < 1 or args.repeats < 1:
        p.error("--reps and --repeats must be at least 1")

    load_start = loadavg()
    rows = []
    for m, k, n, where in SHAPES:
        xla = time_xla(m, k, n, args.reps, args.repeats)
        tch = time_torch(m, k, n, args.reps, args.repeats)
        flops = 2.0 * m * k * n
        for product, t_xla, t_torch in zip(PRODUCTS, xla, tch):
            rows.append({"m": m, "k": k, "n": n, "where": where, "product": product,
                         "xla_us": t_xla * 1e6, "torch_us": t_torch * 1e6,
                         "xla_gflops": flops / t_xla / 1e9, "torch_gflops": flops / t_torch / 1e9})
            print(f"{m}x{k}x{n} {product:20s} XLA {t_xla * 1e6:8.2f} us ({flops / t_xla / 1e9:5.0f} GFLOP/s)   "
                  f"torch {t_torch * 1e6:8.2f} us ({flops / t_torch / 1e9:5.0f} GFLOP/s)", flush=True)

    import jax
    import torch

    result = {"machine": machine_info(), "jax": jax.__version__, "torch": torch.__version__, "reps": args.reps,
              "repeats": args.repeats, "load_start": load_start, "load_end": loadavg(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Dense-layer matmul speed on one CPU core: XLA:CPU vs torch",
        "",
        f"- machine: {result['machine']}",
        f"- jax {result['jax']} (XLA:CPU, products inside one jitted scan), torch {result['torch']} (1 thread, Python loop)",
        f"- {args.reps} products per timed loop, best of {args.repeats}; 1-minute load {load_start} at start, {result['load_end']} at end",
        "",
        "| shape m x k x n | from | product | XLA:CPU us | torch us | XLA GFLOP/s | torch GFLOP/s | torch / XLA speed |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['m']}x{r['k']}x{r['n']} | {r['where']} | {r['product']} | {r['xla_us']:.2f} | {r['torch_us']:.2f} | "
                     f"{r['xla_gflops']:.0f} | {r['torch_gflops']:.0f} | {r['xla_us'] / r['torch_us']:.2f}x |")
    (RESULTS / f"{args.out_name}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / args.out_name}.md")


if __name__ == "__main__":
    main()
