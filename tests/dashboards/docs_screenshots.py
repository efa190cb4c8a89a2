"""Regenerate the screenshots of docs/dashboard.md from a demo's output (not a test).

Usage::

    skyloom demo --config configs/demo-tiny.yaml --out /tmp/demo     # outside the repository
    skyloom eval --suite physics --ckpt /tmp/demo/runs/vdit-tiny/checkpoints/step-00000000 \\
        --set suite.physics.num_scenes=2 --set suite.generation.steps=2   # a second physics checkpoint
    python -m tests.dashboards.docs_screenshots /tmp/demo

Serves the demo's runs and corpus on a free local port, drives Debian's Chromium through Playwright
and writes ``docs/img/dashboard-*.png``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def main(demo: Path) -> None:
    from playwright.sync_api import sync_playwright

    from skyloom.corpus import Corpus
    from skyloom.dashboards import Dashboard, create_app, serve_in_thread
    from tests.dashboards.conftest import launch_chromium

    corpus = Corpus(demo / "corpus")
    synthetic = [r for r in corpus.records() if r.source_kind == "synthetic" and r.gt_path]
    clip = max(synthetic, key=lambda r: len(json.loads((corpus.root / r.gt_path).read_text())["events"]))
    licensed = next(r for r in corpus.records() if r.source_kind == "licensed")
    with tempfile.TemporaryDirectory() as cache:
        dash = Dashboard(demo / "runs", corpora=[demo / "corpus"], cache_dir=cache)
        with serve_in_thread(create_app(dash)) as url, sync_playwright() as p:
            b = launch_chromium(p)
            pg = b.new_page(viewport={"width": 1280, "height": 900})

            def view(v: str) -> None:
                pg.goto(f"{url}#{v}")
                pg.wait_for_selector(f"#view-{v.split('?')[0]}[data-ready='1']", timeout=60000)

            def videos_ready(sel: str, n: int) -> None:
                pg.wait_for_function(f"Array.from(document.querySelectorAll('{sel}')).length >= {n} && "
                                     f"Array.from(document.querySelectorAll('{sel}')).every(v => v.readyState >= 2)",
                                     timeout=300000)

            def scrub(prefix: str, t: float) -> None:
                pg.eval_on_selector(f"#{prefix}-scrub",
                                    f"(r) => {{ r.value = '{t}'; r.dispatchEvent(new Event('input')); }}")
                pg.wait_for_timeout(600)

            view("leaderboard")
            pg.select_option("#lb-suite", label="smoke")
            pg.screenshot(path=str(DOCS_IMG / "dashboard-leaderboard.png"), full_page=True)
            evals = {}
            for s in dash.leaderboard()["suites"]:
                evals[s["suite"]] = [r["eval_id"] for r in sorted(s["rows"], key=lambda r: r["step"] or 0)]
            view(f"compare?suite=smoke&evals={','.join(evals['smoke'])}")
            videos_ready("#cmp-body video", 2)
            scrub("sync", 1.0)
            pg.screenshot(path=str(DOCS_IMG / "dashboard-compare.png"))
            view(f"compare?suite=physics&evals={','.join(evals['physics'])}")
            videos_ready("#cmp-body .ref-perturbed video", 1)
            videos_ready("#cmp-body video", 3 + len(evals["physics"]))
            scrub("sync", 1.2)
            pg.locator("#cmp-body .prompt-row").first.screenshot(path=str(DOCS_IMG / "dashboard-physics.png"))
            view(f"corpus?corpus=0&clip={clip.id}")
            pg.wait_for_function("document.getElementById('clip-detail').dataset.seg === '1'", timeout=60000)
            pg.locator(".tl-event").first.click()
            pg.check("#gt-seg")
            pg.wait_for_timeout(600)
            pg.locator(".clip-detail").screenshot(path=str(DOCS_IMG / "dashboard-clip.png"))
            view(f"corpus?corpus=0&clip={licensed.id}")
            pg.wait_for_selector(f".clip-detail[data-id='{licensed.id}']")
            pg.wait_for_timeout(600)
            pg.locator(".clip-detail").screenshot(path=str(DOCS_IMG / "dashboard-provenance.png"))
            view("prompt")
            from PIL import Image

            first = Path(cache) / "first-frame.png"  # image-to-video: the clip's first frame as the given frame
            Image.fromarray(corpus.read_clip(clip.id, num_frames=1)[0]).save(first)
            pg.set_input_files("#pr-image", str(first))
            pg.fill("#pr-text", clip.caption("short") or "a red ball bounces on a light grey floor")
            pg.fill("#pr-steps", "10")
            pg.click("#pr-go")
            n = pg.locator("#pr-cks input:checked").count()
            videos_ready("#pr-out video", n)
            scrub("gen", 0.06)  # frame 1: the given first frame
            pg.screenshot(path=str(DOCS_IMG / "dashboard-prompt.png"))
            b.close()
        dash.close()
    print(f"wrote {sorted(p.name for p in DOCS_IMG.glob('dashboard-*.png'))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
