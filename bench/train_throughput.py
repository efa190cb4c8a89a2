"""Training throughput and model FLOP utilisation (MFU) of the video DiT.

    .venv/bin/python -m bench.train_throughput [--steps 6] [--threads 2] [--configs tiny,wide]

For each configuration: a fixed synthetic batch (no data loading), timed full training steps
(forward, backward, AdamW), median over ``--steps`` after a warm-up. Reported: samples/s, tokens/s,
achieved model FLOP/s = 3 x forward matmul FLOPs (:func:`skyloom.model.dit.dit_forward_flops`, checked
against ``torch.utils.flop_counter`` in tests/model/test_dit.py) x samples/s, and MFU = achieved /
peak, where the peak is an fp32 ``torch.matmul`` (2048^3) measured in this process on the same
threads right before and after each configuration (their mean: the peak sees the same contention
as the model). Baseline side by side: ``torch.nn.TransformerEncoder`` (the stock PyTorch
transformer) at the same width, depth, tokens and batch, timed and counted the same way.

On a GPU (``--gpu``; CUDA present) it runs ``vdit-s`` and ``vdit-b`` in bf16 autocast against a
bf16 matmul peak. Prints a table and writes ``bench/out/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

import torch

from skyloom.model.config import DiTConfig
from skyloom.model.dit import VideoDiT, dit_forward_flops

OUT = Path(__file__).resolve().parent / "out"

# name -> (DiTConfig, latent (C, T, H, W), batch, text tokens)
CPU_CONFIGS = {
    # = configs/model/vdit-tiny.yaml (DiT only; the 2-layer text encoder adds ~3% FLOPs, not counted)
    "tiny": (DiTConfig(in_channels=3, patch=(4, 4, 4), dim=128, depth=4, heads=4, text_dim=128, prediction="x0",
                       given_channel=True), (3, 16, 32, 32), 8, 77),
    "wide": (DiTConfig(in_channels=3, patch=(2, 4, 4), dim=384, depth=4, heads=6, text_dim=128),
             (3, 16, 32, 32), 4, 77),
}
GPU_CONFIGS = {  # latent of a 33x256x256 clip through the 4x8x8 VAE: (16, 9, 32, 32), patch 1x2x2 -> 2304 tokens
    "vdit-s": (DiTConfig(in_channels=16, patch=(1, 2, 2), dim=384, depth=12, heads=6, text_dim=512),
               (16, 9, 32, 32), 16, 77),
    "vdit-b": (DiTConfig(in_channels=16, patch=(1, 2, 2), dim=768, depth=12, heads=12, text_dim=512),
               (16, 9, 32, 32), 8, 77),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Best-of-``reps`` FLOP/s of an n x n x n matmul (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def time_steps(step, steps: int, device: torch.device) -> float:
    step()
    step()  # warm-up (allocator, autotuning)
    times = []
    for _ in range(steps):
        sync(device)
        t = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_dit(cfg: DiTConfig, latent: tuple[int, int, int, int], batch: int, L: int, steps: int,
              device: torch.device, amp: bool) -> dict:
    torch.manual_seed(0)
    model = VideoDiT(cfg).to(device)
    for p in model.parameters():  # leave the zero init, so every matmul does real work
        if p.dim() > 1 and p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    x = torch.randn(batch, *latent, device=device)
    t = torch.rand(batch, latent[1], device=device)
    text = torch.randn(batch, L, cfg.text_dim, device=device)
    mask = torch.ones(batch, L, dtype=torch.bool, device=device)
    target = torch.randn_like(x)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            v = model(x, t, text, mask)
        loss = (v.float() - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sec = time_steps(step, steps, device)
    grid = model.grid((batch, *latent))
    tokens = grid[0] * grid[1] * grid[2]
    flops = 3 * dit_forward_flops(cfg, grid, L) * batch
    return {"params_M": sum(p.numel() for p in model.parameters()) / 1e6, "tokens_per_sample": tokens,
            "step_s": sec, "samples_per_s": batch / sec, "tokens_per_s": batch * tokens / sec,
            "model_flops_per_step": flops, "achieved_flops": flops / sec}


def bench_baseline(cfg: DiTConfig, tokens: int, batch: int, steps: int, device: torch.device, amp: bool) -> dict:
    """Stock ``nn.TransformerEncoder`` (self-attention + MLP only) at the same size."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), dropout=0.0,
                                             batch_first=True, norm_first=True, activation="gelu")
    model = torch.nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    x = torch.randn(batch, tokens, cfg.dim, device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            y = model(x)
        loss = y.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sec = time_steps(step, steps, device)
    D, H = cfg.dim, int(cfg.dim * cfg.mlp_ratio)
    fwd = cfg.depth * (2 * tokens * D * 4 * D + 4 * tokens * tokens * D + 4 * tokens * D * H) * batch
    return {"step_s": sec, "samples_per_s": batch / sec, "tokens_per_s": batch * tokens / sec,
            "achieved_flops": 3 * fwd / sec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", default=",".join(CPU_CONFIGS))
    ap.add_argument("--gpu", action="store_true", help="run vdit-s / vdit-b on CUDA in bf16")
    args = ap.parse_args()
    gpu = args.gpu and torch.cuda.is_available()
    if args.gpu and not gpu:
        raise SystemExit("--gpu: no CUDA device here")
    device = torch.device("cuda" if gpu else "cpu")
    torch.set_num_threads(args.threads)
    configs = GPU_CONFIGS if gpu else {k: CPU_CONFIGS[k] for k in args.configs.split(",")}
    dtype = torch.bfloat16 if gpu else torch.float32
    rows = []
    for name, (cfg, latent, batch, L) in configs.items():
        p0 = matmul_peak(device, dtype)
        dit = bench_dit(cfg, latent, batch, L, args.steps, device, amp=gpu)
        base = bench_baseline(cfg, dit["tokens_per_sample"], batch, args.steps, device, amp=gpu)
        peak = (p0 + matmul_peak(device, dtype)) / 2
        rows.append({"config": name, "dit": dataclasses.asdict(cfg), "latent": latent, "batch": batch,
                     "peak_flops": peak, **dit, "mfu": dit["achieved_flops"] / peak,
                     "baseline": {**base, "mfu": base["achieved_flops"] / peak}})
    load = os.getloadavg()
    dev_name = torch.cuda.get_device_name() if gpu else f"CPU, {args.threads} threads"
    print(f"device: {dev_name}; load average {load[0]:.1f}; torch {torch.__version__}")
    print(f"{'config':8} {'params':>7} {'tok/sample':>10} {'samples/s':>10} {'tokens/s':>10} {'GFLOP/s':>8} "
          f"{'peak':>7} {'MFU':>6} | {'baseline MFU':>12}")
    for r in rows:
        print(f"{r['config']:8} {r['params_M']:6.2f}M {r['tokens_per_sample']:10d} {r['samples_per_s']:10.2f} "
              f"{r['tokens_per_s']:10.0f} {r['achieved_flops'] / 1e9:8.1f} {r['peak_flops'] / 1e9:7.1f} "
              f"{r['mfu']:6.1%} | {r['baseline']['mfu']:12.1%}")
    OUT.mkdir(exist_ok=True)
    (OUT / "train_throughput.json").write_text(json.dumps({"device": dev_name, "load_average": load,
                                                           "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
