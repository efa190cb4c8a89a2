"""Per-step time of the vdit-tiny recipe against the stock preset and a matmul, interleaved in one process.

    .venv/bin/python -m bench.recipe_step_time CORPUS [--threads 1] [--rounds 3] [--steps 5]

On a shared machine wall-clock times mean little, but ratios measured in the same minutes do: each
round times ``--steps`` real training steps (``Trainer.loss`` + backward + AdamW + EMA, the work of
one ``skyloom train`` step, data loading included) of the recipe (``configs/model/vdit-tiny.yaml``),
the same of the stock preset it replaced (trainable 77-token text encoder, shift 1, RoPE only,
dense + short captions, lr 6e-4), and a 1024^3 fp32 matmul. Reported: medians of the per-round
ratios recipe/stock and recipe/matmul, the 1-minute load average before and after, and the
recipe's idle step time extrapolated as ``ratio x`` an idle reference (the stock preset's idle
step time, docs/model.md) — the extrapolation is labelled as such. JSON in
``bench/out/recipe_step_time.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from skyloom.config import apply_overrides, load
from skyloom.model.config import TrainConfig
from skyloom.model.train import Trainer, step_generator

OUT = Path(__file__).resolve().parent / "out"
# What the recipe changed relative to the preset before it (docs/model.md, "vdit-tiny recipe").
STOCK = ["text.trainable=true", "text.max_length=77", "dit.abs_pos=false", "schedule.shift_base_tokens=256",
         "data.caption_kinds=[dense, short, vlm]", "data.caption_mode=random", "optim.lr=0.0006"]
# Idle per-step times of the stock preset (`skyloom train`, 1 and 2 threads), measured on the 2-core
# machine while it was otherwise idle (docs/model.md).
IDLE_STOCK_S = {1: 0.367, 2: 0.210}


def timed_steps(tr: Trainer, n: int) -> float:
    """Seconds per step of ``n`` training steps (what one ``Trainer.run`` iteration does, minus logging)."""
    t0 = time.perf_counter()
    for _ in range(n):
        batch = next(tr.loader)
        loss, _ = tr.loss(batch.video, batch.captions, step_generator(tr.cfg.seed, tr.step, 0))
        tr.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tr.trainable.parameters(), tr.cfg.optim.grad_clip)
        tr.opt.step()
        tr.step += 1
        tr.ema.update(tr.ema_modules, tr.step)
    return (time.perf_counter() - t0) / n


def matmul_s(n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    t0 = time.perf_counter()
    a @ b
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    recipe = apply_overrides(load(TrainConfig, "vdit-tiny", [], group="model"), [f"num_threads={args.threads}"])
    stock = apply_overrides(recipe, STOCK)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        trs = {name: Trainer(cfg, args.corpus, Path(tmp) / name, resume=False)
               for name, cfg in (("recipe", recipe), ("stock", stock))}
        torch.set_num_threads(args.threads)
        for tr in trs.values():
            timed_steps(tr, 2)  # warm-up
        rows = []
        for _ in range(args.rounds):
            mm = min(matmul_s() for _ in range(3))
            r = timed_steps(trs["recipe"], args.steps)
            s = timed_steps(trs["stock"], args.steps)
            rows.append({"recipe_s": r, "stock_s": s, "matmul_s": mm, "load": os.getloadavg()[0]})
    ratio = statistics.median(r["recipe_s"] / r["stock_s"] for r in rows)
    res = {"threads": args.threads, "rounds": rows, "load_before": load0, "load_after": os.getloadavg()[0],
           "recipe_over_stock": ratio,
           "recipe_over_matmul1024": statistics.median(r["recipe_s"] / r["matmul_s"] for r in rows),
           "idle_recipe_s_extrapolated": ratio * IDLE_STOCK_S[args.threads] if args.threads in IDLE_STOCK_S else None}
    OUT.mkdir(exist_ok=True)
    (OUT / "recipe_step_time.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
