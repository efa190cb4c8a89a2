"""``skyloom eval score``: score a folder of mp4s with one metric (FVD, CLIPSIM, physics, ...).

``register(eval_app)`` adds the command to the ``skyloom eval`` group (called from ``eval/cli/commands.py``).
Unreadable videos are skipped and listed in the result (``details.skipped``), never fatal.
"""

from __future__ import annotations

import ast
import glob
import json
import logging
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from skyloom.errors import InputNotFoundError, InvalidInputError, UserError

log = logging.getLogger(__name__)

SCORE_HELP = """Score videos with one metric and print the result (value, n, extractor, weights hash,
preprocessing). Examples:

  [cyan]skyloom eval score --metric fvd --videos gen/ --reference real/ --weights ~/i3d_pretrained_400.pt[/]
  [cyan]skyloom eval score --metric clipsim --videos gen/ --prompts prompts.json --weights openai[/]
  [cyan]skyloom eval score --metric warping_error --videos 'gen/*.mp4' --json[/]
  [cyan]skyloom eval score --metric physics_iq --videos gen/ --reference CORPUS/clips --gt CORPUS/gt[/]
"""


def list_videos(spec: str) -> list[Path]:
    """A folder (its ``*.mp4``, sorted) or a glob pattern; error if nothing matches."""
    p = Path(spec).expanduser()
    files = sorted(p.glob("*.mp4")) if p.is_dir() else sorted(Path(x) for x in glob.glob(str(p)))
    if not files:
        raise InputNotFoundError(f"no videos at {spec!r} (expected a folder of .mp4 files or a glob pattern)")
    return files


def read_prompts(path: Path, stems: list[str]) -> dict[str, str]:
    """Prompts by video stem from .json ({stem: prompt} or [prompt, ...] in video order), .jsonl
    ({"id"|"item_id", "prompt"}) or text (``stem<TAB>prompt`` lines, or one prompt per line)."""
    text = Path(path).read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, list):
            if len(data) != len(stems):
                raise InvalidInputError(f"{path}: {len(data)} prompts for {len(stems)} videos")
            return dict(zip(stems, map(str, data)))
        return {str(k): str(v) for k, v in data.items()}
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return {str(r.get("id", r.get("item_id"))): str(r["prompt"]) for r in rows}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if all("\t" in ln for ln in lines):
        return dict(ln.split("\t", 1) for ln in lines)
    if len(lines) != len(stems):
        raise InvalidInputError(f"{path}: {len(lines)} prompt lines for {len(stems)} videos (use 'stem<TAB>prompt')")
    return dict(zip(stems, lines))


def parse_options(opts: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as Python literals when possible (``16``, ``0.5``, ``'dis'``)."""
    out: dict[str, Any] = {}
    for o in opts or []:
        if "=" not in o:
            raise InvalidInputError(f"--option {o!r}: expected key=value")
        k, v = o.split("=", 1)
        try:
            out[k.strip()] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k.strip()] = v
    return out


# Where `eval score` takes each declared metric input from (skyloom.eval.metrics.inputs.INPUTS).
INPUT_OPTIONS: dict[str, str] = {"prompts": "--prompts", "reference": "--reference", "ground_truth": "--gt",
                                 "specs": "--gt", "real_videos": "--reference"}


def build_metric(metric: str, extractor: str | None, weights: str | None, random_init: bool,
                 options: dict[str, Any]) -> Any:
    """The metric from ``METRICS`` with its extractor built from the command-line options."""
    from skyloom.config import ConfigError
    from skyloom.eval.metrics import METRICS

    cls = METRICS.get(metric)
    default = getattr(cls, "default_extractor", None)
    if extractor and default is None:
        raise ConfigError(f"metric {metric!r} takes no --extractor (it works on pixels)")
    kwargs: dict[str, Any] = {}
    name = extractor or default
    if name is not None:
        ekw: dict[str, Any] = {}
        if weights:
            ekw["pretrained" if name == "clip" else "weights"] = weights
        if random_init:
            ekw["random_init"] = True
        from skyloom.eval.features.base import get_extractor

        kwargs["extractor"] = get_extractor(name, **ekw)
    elif weights:
        raise InvalidInputError(f"metric {metric!r} takes no extractor/weights (it works on pixels)")
    return METRICS.build(metric, options=options, where="--option", **kwargs)


def score_videos(metric: str, videos: str, reference: str | None = None, prompts: Path | None = None,
                 gt: Path | None = None, extractor: str | None = None, weights: str | None = None,
                 random_init: bool = False, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the videos; returns ``MetricResult.to_dict()`` plus ``details.skipped`` (path, reason).

    The metric's declared inputs (:mod:`skyloom.eval.metrics.inputs`) say what is read: prompts from
    ``prompts``, the simulator's clip of the same name from ``reference`` (or, for a set-level
    metric, every real clip there), ground truth and scene specs from ``gt``.
    """
    from skyloom.eval.metrics import METRICS
    from skyloom.eval.metrics import inputs as dispatch
    from skyloom.video import VideoError, probe_video, read_video

    METRICS.get(metric)  # an unknown name fails first, with the closest known names
    files = list_videos(videos)
    m = build_metric(metric, extractor, weights, random_init, options or {})
    per_file_fps = hasattr(m, "fps") and "fps" not in (options or {}) and metric == "dynamic_degree"
    if per_file_fps:  # recorded with the result: the frame step follows each file's rate
        m.identity()["preprocessing"].update(fps="each file's own", frames="every max(1, round(fps/8))-th (VBench)")
    given = {"--prompts": prompts, "--reference": reference, "--gt": gt}
    needs = set(dispatch.required_inputs(m)) - {"videos", "item_ids"}
    for name in sorted(needs):
        opt = INPUT_OPTIONS.get(name)
        if opt is None:
            raise InvalidInputError(f"metric {metric!r} needs {name} ({dispatch.INPUTS[name]}), which eval score "
                                    "cannot read; score it in a suite")
        if given[opt] is None:
            raise InvalidInputError(f"metric {metric!r} needs {name} ({dispatch.INPUTS[name]}): pass {opt}")
    wanted = needs | set(dispatch.optional_inputs(m))
    skipped: list[dict[str, str]] = []
    stems = [f.stem for f in files]
    prompt_map = read_prompts(Path(prompts), stems) if prompts and "prompts" in wanted else None
    ref_dir = Path(reference).expanduser() if reference else None

    def load(p: Path) -> Any:
        try:
            return read_video(p)
        except VideoError as e:
            skipped.append({"path": str(p), "reason": str(e)})
            return None

    if dispatch.is_set_metric(m):
        for p in list_videos(str(ref_dir)):
            v = load(p)
            if v is not None:
                _safe(m, skipped, p, lambda v=v: m.update([v], real=True))
    for f in files:
        item: dict[str, Any] = {"item_id": f.stem, "prompt": (prompt_map or {}).get(f.stem)}
        if "reference" in wanted and ref_dir is not None:
            if not (ref_dir / f.name).is_file():
                skipped.append({"path": str(f), "reason": f"no reference clip {ref_dir / f.name} (--reference)"})
                continue
            item["reference"] = load(ref_dir / f.name)
            if item["reference"] is None:
                continue
        gtd = _read_gt(gt, f.stem) if gt and wanted & {"ground_truth", "specs"} else None
        if gtd is not None:
            item["ground_truth"], item["specs"] = gtd, gtd.get("spec")
        lacking = dispatch.missing_inputs(m, item)
        if lacking:
            skipped.append({"path": str(f), "reason": "; ".join(
                f"no {n} for this video ({INPUT_OPTIONS.get(n, 'a suite')})" for n in lacking)})
            continue
        v = load(f)
        if v is None:
            continue
        if per_file_fps:  # dynamic_degree: VBench's frame step follows each file's own rate
            m.fps = probe_video(f).fps or None
        _safe(m, skipped, f, lambda v=v, item=item: m.update([v], **dispatch.update_kwargs(m, [item], [v])))
    r = m.compute()
    if not math.isfinite(r.value) and r.details.get("note"):  # e.g. flickering on videos that all move
        raise InvalidInputError(f"{r.name}: {r.details['note']}")
    res = r.to_dict()
    res["details"]["skipped"] = skipped
    return res


def _safe(m: Any, skipped: list[dict[str, str]], path: Path, fn: Any) -> None:
    try:
        fn()
    except UserError as e:  # bad clip (too short, wrong shape, ...): record and go on
        skipped.append({"path": str(path), "reason": str(e)})


def _read_gt(gt_dir: Path, stem: str) -> dict[str, Any] | None:
    """``gt_dir/<stem>.json``, checked against the ``skyloom-gt`` format (:func:`skyloom.groundtruth.check_gt`)."""
    from skyloom.groundtruth import GroundTruthError, check_gt

    p = Path(gt_dir) / f"{stem}.json"
    if not p.is_file():
        return None
    try:
        gt = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GroundTruthError(f"{p}: not valid JSON ({e})") from None
    check_gt(gt, where=str(p))
    return gt


def register(eval_app: typer.Typer) -> None:
    """Add ``score`` to the ``skyloom eval`` command group."""

    @eval_app.command("score", help=SCORE_HELP)
    def score(
        metric: Annotated[str, typer.Option("--metric", "-m", help="A registered metric (fvd, kvd, clipsim, "
                                            "clipsim_x100, subject_consistency, background_consistency, clip_temp, "
                                            "temporal_flickering, warping_error, physics_iq, physics_trajectory, "
                                            "or a plug-in's; `skyloom plugins` lists them).")],
        videos: Annotated[str, typer.Option("--videos", help="Folder of .mp4 files or a glob pattern.")],
        reference: Annotated[str | None, typer.Option(help="Real clips (FVD/KVD) or simulator clips with the same "
                                                           "file names (physics).")] = None,
        prompts: Annotated[Path | None, typer.Option(help="Prompts: .json {stem: prompt}, .jsonl "
                                                          "or stem<TAB>prompt.")] = None,
        gt: Annotated[Path | None, typer.Option("--gt", help="Folder of skyloom-gt <stem>.json "
                                                "(physics metrics).")] = None,
        extractor: Annotated[str | None, typer.Option(
            help="Feature extractor (i3d, i3d-torchscript, clip, dino, pixels, "
            "...); default per metric: i3d, clip, dino (subject).")] = None,
        weights: Annotated[str | None, typer.Option(help="Weights file (or an open_clip tag in its cache). "
                                                         "Never downloaded.")] = None,
        random_init: Annotated[bool, typer.Option("--random-init", help="Random weights (smoke tests only; "
                                                                      "recorded as 'random-init').")] = False,
        option: Annotated[list[str] | None, typer.Option(
            "--option", metavar="KEY=VALUE", help="Metric setting key=value "
            "(e.g. num_frames=16, flow='farneback', cond_frames=4).")] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the result JSON here.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        from skyloom.cli_common import check_out_apart, console, data_console, fail

        if out is not None:
            if out.is_dir():
                fail(f"--out {out} is a folder; give the JSON file to write")
            vdir = Path(videos)
            check_out_apart(out, {"--videos folder": vdir if vdir.is_dir() else None,
                                  "--reference folder": reference if reference and Path(reference).is_dir() else None})
        res = score_videos(metric, videos, reference, prompts, gt, extractor, weights, random_init,
                           parse_options(option))
        if out:
            from skyloom.fsutil import atomic_write_json

            atomic_write_json(out, res)
        if as_json:
            print(json.dumps(res, indent=2, default=str))
            return
        from rich.table import Table

        t = Table(title=f"{res['name']} (v{res['metric_version']})")
        t.add_column("field")
        t.add_column("value")
        for k in ("value", "n", "stderr", "higher_is_better", "extractor", "weights"):
            t.add_row(k, str(res[k]))
        t.add_row("preprocessing", json.dumps(res["preprocessing"], default=str))
        t.add_row("details", json.dumps({k: v for k, v in res["details"].items() if k != "skipped"}, default=str))
        t.add_row("skipped", str(len(res["details"]["skipped"])))
        data_console.print(t)
        for s in res["details"]["skipped"]:
            console.print(f"[yellow]skipped[/] {s['path']}: {s['reason']}")
