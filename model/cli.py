"""``skyloom train`` and ``skyloom sample``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from skyloom.cli_common import RayAddressOpt, SetOpt, console, existing_path, fail


def _resolve_config(out: Path, preset: str | None, sets: list[str] | None, stage: str | None, steps: int | None,
                    max_minutes: float | None, fresh: bool):
    """Preset (default: the run's saved config when resuming, else vdit-tiny) + overrides."""
    from skyloom.cli_common import load_config
    from skyloom.config import apply_overrides, apply_values, from_dict, load_yaml
    from skyloom.model.config import TrainConfig

    saved = out / "config.yaml"
    if preset is None and saved.exists() and not fresh:
        cfg = apply_overrides(from_dict(TrainConfig, load_yaml(saved)), list(sets or []))
        console.print(f"resuming with the run's saved config {saved}")
    else:
        cfg = load_config(TrainConfig, "model", preset or ("vae" if stage == "vae" else "vdit-tiny"), sets)
    given = {"stage": stage, "steps": steps, "max_minutes": max_minutes}
    cfg = apply_values(cfg, {k: v for k, v in given.items() if v is not None})
    _check_components(cfg)
    return cfg


def _check_components(cfg) -> None:
    """Fail before a run folder is written: unknown text/ae kinds, options that do not fit the plug-in."""
    from skyloom.model.autoencoder import AUTOENCODERS
    from skyloom.model.text import TEXT_ENCODERS

    TEXT_ENCODERS.options(cfg.text.kind, cfg.text.options, where="text.options")
    AUTOENCODERS.options(cfg.ae.kind, cfg.ae.options, where="ae.options")


def _check_train(cfg, corpus: Path, out: Path, allow_uncaptioned: bool) -> None:
    """Refuse, before anything is written, settings that cannot train: counts below 1, a run folder in
    (or equal to) its corpus, and a text-to-video model on a corpus without one usable caption."""
    from skyloom.cli_common import check_out_apart, check_positive

    check_positive({"steps (--steps)": cfg.steps, "log_every": cfg.log_every, "ckpt_every": cfg.ckpt_every,
                    "sampler.steps": cfg.sampler.steps, "data.frame_stride": cfg.data.frame_stride,
                    "optim.lr": cfg.optim.lr, "data.shuffle_buffer": cfg.data.shuffle_buffer})
    check_positive({"max_minutes (--max-minutes)": cfg.max_minutes, "keep_checkpoints": cfg.keep_checkpoints,
                    "data.max_clips": cfg.data.max_clips, "optim.warmup_steps": cfg.optim.warmup_steps,
                    "data.cache_mb": cfg.data.cache_mb},
                   allow_zero=True)
    if not cfg.data.buckets:
        fail("data.buckets is empty: give at least one bucket (height, width, num_frames, batch_size)")
    for i, b in enumerate(cfg.data.buckets):
        check_positive({f"data.buckets[{i}].{k}": getattr(b, k) for k in ("height", "width", "num_frames",
                                                                          "batch_size")})
    check_out_apart(out, {"corpus": corpus}, flag="--out (the run folder)")
    if cfg.stage != "dit" or allow_uncaptioned or cfg.data.source != "corpus":  # wds: the manifest is not read
        return
    from skyloom.model.data_index import captioned_count

    n, captioned = captioned_count(corpus, cfg.data)
    kinds = tuple(cfg.data.caption_kinds)
    if n and not captioned:
        fail(f"corpus {corpus}: none of the {n} clip(s) of split {cfg.data.split!r} has a caption of kind "
             f"{', '.join(kinds)} (data.caption_kinds), so a text-to-video model would learn from empty prompts; "
             f"caption it first (skyloom caption {corpus}) or pass --allow-uncaptioned")


def register(app: typer.Typer) -> None:
    @app.command("train", rich_help_panel="model")
    def train_cmd(
        corpus: Annotated[Path, typer.Argument(help="Corpus directory to train on.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (created; resumed if it exists).")],
        preset: Annotated[str | None, typer.Option(
            help="Model preset in configs/model/ (vdit-tiny, vdit-s, vdit-b, vdit-xl, vae) or a YAML path. "
                 "Default: the run's saved config when resuming, else vdit-tiny.")] = None,
        stage: Annotated[str | None, typer.Option(help="dit (the video model) or vae (the autoencoder).")] = None,
        steps: Annotated[int | None, typer.Option(help="Total optimizer steps of the run.")] = None,
        max_minutes: Annotated[float | None, typer.Option(
            help="Stop after this many minutes of this invocation (a checkpoint is written).")] = None,
        resume: Annotated[bool, typer.Option("--resume/--fresh",
                                             help="Continue from RUN's latest checkpoint, or start over.")] = True,
        sets: SetOpt = None,
        ray_address: RayAddressOpt = None,
        num_workers: Annotated[int, typer.Option(help="Ray Train workers (1 without --ray-address: in-process).")] = 1,
        gpu: Annotated[bool, typer.Option("--gpu/--cpu", help="One GPU per Ray Train worker.")] = False,
        device: Annotated[str | None, typer.Option(help="In-process device (default: cuda if available).")] = None,
        allow_uncaptioned: Annotated[bool, typer.Option(
            "--allow-uncaptioned", help="Train a text-to-video model even when no clip has a caption "
            "(every prompt is empty: an unconditional model).")] = False,
    ) -> None:
        """Train a video DiT (or, with [bold]--stage vae[/], its autoencoder) on a corpus.

        Writes RUN/config.yaml (resolved config), RUN/metrics.jsonl and checkpoints (step 0 first).
        Rerunning the same command resumes exactly where the last checkpoint left off.

        Example: [cyan]skyloom train corpora/balls --out runs/tiny --preset vdit-tiny --max-minutes 8[/]
        """
        from skyloom.cli_common import stage_timer

        if stage not in (None, "dit", "vae"):
            fail(f"--stage must be dit or vae, got {stage!r}")
        existing_path(corpus, "corpus")
        if num_workers < 1:
            fail(f"--num-workers {num_workers}: at least 1")
        cfg = _resolve_config(out, preset, sets, stage, steps, max_minutes, fresh=not resume)
        _check_train(cfg, corpus, out, allow_uncaptioned)
        with stage_timer(f"train {cfg.name} ({cfg.stage})"):
            if ray_address or num_workers > 1:
                from skyloom.model.ray_train import run_ray

                res = run_ray(cfg, corpus, out, num_workers=num_workers, use_gpu=gpu, address=ray_address,
                              resume=resume, fresh=not resume)
            else:
                from skyloom.model.train import train

                res = train(cfg, corpus, out, resume=resume, fresh=not resume, device=device)
        last = res.losses[-1][1] if res.losses else float("nan")
        console.print(f"step {res.step} (stopped: {res.stopped}), last loss {last:.4f}, checkpoint "
                      f"{res.last_checkpoint}")

    @app.command("sample", rich_help_panel="model")
    def sample_cmd(
        ckpt: Annotated[Path, typer.Option("--ckpt", help="Run directory (latest checkpoint) or checkpoint folder.")],
        prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text prompt.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output .mp4 (H.264).")],
        image: Annotated[Path | None, typer.Option(help="First frame (PNG/JPEG): image-to-video.")] = None,
        video: Annotated[Path | None, typer.Option(help="Prefix video: extension (its frames are kept).")] = None,
        prefix_frames: Annotated[int | None, typer.Option(
            help="How many frames of --video to keep (default: half the model's length).")] = None,
        seed: Annotated[int, typer.Option(help="Noise seed (same seed + prompt -> same video).")] = 0,
        steps: Annotated[int | None, typer.Option(help="Sampler steps (default: the checkpoint's).")] = None,
        guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
        method: Annotated[str | None, typer.Option(help="euler or heun.")] = None,
        num_frames: Annotated[int | None, typer.Option(help="Video length (default: the training length).")] = None,
        device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
        no_ema: Annotated[bool, typer.Option("--no-ema", help="Use the raw weights, not the EMA.")] = False,
        png: Annotated[Path | None, typer.Option(help="Also write a PNG contact sheet of every 2nd frame.")] = None,
    ) -> None:
        """Generate one video from a prompt (text-to-video), a first frame (image-to-video) or a prefix video.

        The seed and sampler settings are stored in the mp4's metadata.

        Example: [cyan]skyloom sample --ckpt runs/tiny --prompt "a red ball bounces" --seed 3 --out red.mp4[/]
        """
        # Every input is checked before torch and the model load (seconds to minutes).
        if image is not None and video is not None:
            fail("give --image or --video, not both")
        existing_path(ckpt, "--ckpt")
        if method is not None and method not in ("euler", "heun"):
            fail(f"--method {method!r} is not one of euler, heun")
        if out.suffix.lower() != ".mp4":
            fail(f"--out {out} must end in .mp4 (the video is written as H.264 mp4)")
        from skyloom.cli_common import check_out_apart, check_positive

        check_positive({"--steps": steps, "--num-frames": num_frames, "--prefix-frames": prefix_frames})
        check_positive({"--seed": seed, "--guidance": guidance}, allow_zero=True)
        check_out_apart(out, {"--ckpt": ckpt})
        bgr = None
        if image is not None:
            existing_path(image, "--image")
            import cv2

            bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
            if bgr is None:
                fail(f"--image {image} is not a readable image (PNG or JPEG expected)")
        if video is not None:
            existing_path(video, "--video")
        import numpy as np

        from skyloom.model.pipeline import load_pipeline
        from skyloom.video import read_video, write_video

        pipe = load_pipeline(ckpt, device=device, use_ema=not no_ema)
        cond, mode = None, "t2v"
        if bgr is not None:
            cond, mode = bgr[None, None, :, :, ::-1].copy(), "i2v"  # (1, 1, H, W, 3) RGB
        elif video is not None:
            T = num_frames or pipe.num_frames
            k = prefix_frames or max(1, T // 2)
            if not 1 <= k < T:
                fail(f"--prefix-frames must be in [1, {T - 1}], got {k}")
            frames = read_video(video, num_frames=k)
            cond, mode = frames[None], "extension"
        vids = pipe.generate([prompt], [seed], cond_frames=cond, steps=steps, guidance=guidance,
                             num_frames=num_frames, method=method)
        meta = {"prompt": prompt, "seed": seed, "mode": mode, **pipe.settings(steps, guidance),
                "given_frames": 0 if cond is None else int(cond.shape[1])}
        if method:
            meta["method"] = method
        write_video(out, np.ascontiguousarray(vids[0]), fps=pipe.fps, metadata=meta)
        if png is not None:
            import cv2

            from skyloom.model.pipeline import frames_grid

            png.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(png), frames_grid(vids)[:, :, ::-1])
        console.print(f"wrote {out} ({vids.shape[1]} frames {pipe.width}x{pipe.height}, {mode}, seed {seed})")
