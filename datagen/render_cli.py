"""``skyloom datagen render``: render a preset's physics scenes with ground truth into a corpus."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from skyloom.cli_common import (
    MaxFailuresOpt,
    RayAddressOpt,
    SetOpt,
    WaitOpt,
    check_failures,
    console,
    load_config,
    stage_timer,
)


def register(dg: typer.Typer) -> None:
    """Add the ``render`` command to the ``skyloom datagen`` group."""

    @dg.command("render")
    def render(
        out: Annotated[Path, typer.Option("--out", "-o", help="Corpus directory (created if missing; reruns resume).")],
        preset: Annotated[str, typer.Option("--preset", help="configs/datagen/<preset>.yaml or a YAML path: "
                                            "balls-bounce, tabletop, physics-probe.")] = "balls-bounce",
        num_scenes: Annotated[int | None, typer.Option("--num-scenes", "-n", help="Scenes to render "
                                                       "(default: the preset's).")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Job seed; scene i uses a seed derived "
                                                 "from (seed, i).")] = None,
        specs: Annotated[Path | None, typer.Option("--specs", help="JSON-lines file of scene specs to render "
                                                   "instead of sampling.")] = None,
        ray_address: RayAddressOpt = None,
        sets: SetOpt = None,
        max_failures: MaxFailuresOpt = None,
        wait: WaitOpt = False,
    ) -> None:
        """Render seeded physics scenes (MuJoCo by default, or UnrealCV) with ground truth, as a Ray job.

        Writes clips/<id>.mp4, gt/<id>.json + gt/<id>.npz and manifest rows; failed scenes go to
        quarantine.jsonl with their reason. Rerun the same command after a crash to finish the
        missing scenes. Example: [bold]skyloom datagen render --preset balls-bounce -n 64 --out data/balls[/]
        """
        from skyloom.datagen.render import RenderConfig, run_render

        cfg = load_config(RenderConfig, "datagen", preset, sets)
        changes = {"out": str(out)}
        if num_scenes is not None:
            changes["num_scenes"] = num_scenes
        if seed is not None:
            changes["seed"] = seed
        if specs is not None:
            changes["specs_file"] = str(specs)
        cfg = dataclasses.replace(cfg, **changes)
        with stage_timer(f"datagen render {cfg.preset} ({cfg.renderer})"):
            res = run_render(cfg, ray_address=ray_address, wait=wait)
            from skyloom.fsutil import atomic_write_json, file_stamp

            atomic_write_json(Path(res.corpus) / "reports" / f"render-{file_stamp()}.json",
                              {"format": "skyloom-render-report", "version": 1, **dataclasses.asdict(res)})
            console.print(f"corpus {res.corpus}: [green]{res.rendered} rendered[/], {res.existing} already present, "
                          f"[red]{res.failed} failed[/] ({res.frames} frames, {res.frames_per_s:.1f} frames/s)")
            for f in res.failures[:10]:
                console.print(f"  [red]quarantined[/] {f['id']}: {f['reason']}")
            check_failures("datagen render", res.failed, res.rendered + res.failed, max_failures,
                           [f"{f['id']}: {f['reason']}" for f in res.failures])
