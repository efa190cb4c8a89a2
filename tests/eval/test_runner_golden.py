"""Golden file for the results JSON format (lm-evaluation-harness-like; documented in docs/eval.md).

Volatile fields (paths, hashes, dates, timings) are replaced by placeholders, and floats by
``"<float>"``: the golden file pins the format (keys, structure, types, non-numeric values), not
numbers, because H.264 encoding through PyAV is not always bit-identical between runs (observed:
~1 encode in 5 differs at 32x32), which moves scores of decoded videos in the 3rd decimal.
The values themselves are checked approximately below.
Regenerate after an intended format change with ``SKYLOOM_UPDATE_GOLDEN=1 pytest tests/eval/test_runner_golden.py``
and describe the change in docs/eval.md (bump RESULTS_FORMAT_VERSION if readers must adapt).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from skyloom.eval.harness.runner import RESULTS_FORMAT_VERSION, EvalConfig, run_eval
from tests.eval import fakes

GOLDEN = Path(__file__).parent / "golden" / "results_fake.json"


def _normalise(doc, eval_id: str, tmp: Path):
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            if k in ("git_hash", "eval_created_at", "results_written_at", "total_evaluation_time_seconds"):
                out[k] = f"<{k}>"
            elif k == "versions":
                out[k] = {s: str(x).split("+")[0] + "+<content hash>" for s, x in v.items()}
            else:
                out[k] = _normalise(v, eval_id, tmp)
        return out
    if isinstance(doc, list):
        return [_normalise(x, eval_id, tmp) for x in doc]
    if isinstance(doc, float):
        return "<float>"
    if isinstance(doc, str):
        return doc.replace(eval_id, "<eval_id>").replace(str(tmp), "<tmp>")
    return doc


def test_results_json_matches_golden(tmp_path):
    fakes.register_fake_extractor()
    ref = fakes.make_reference_corpus(tmp_path / "ref")
    suite = fakes.write_suite(tmp_path / "fake.yaml", reference=ref, extra_prompts=(
        '  - {id: purple, text: "a purple ball", category: odd}\n'))
    ck = fakes.make_checkpoint(tmp_path / "runs", "golden", 10, noise=8.0, fail_words=["purple"])
    res = run_eval(EvalConfig(suite=str(suite), checkpoints=(str(ck),), cache_dir=str(tmp_path / "cache"),
                              pipeline_loader=fakes.LOADER, n_boot=300, set_boot=20), metrics=fakes.FAKE_METRICS)
    e = res.evals[0]
    doc = json.loads(Path(e.results_path).read_text())
    assert doc["format_version"] == RESULTS_FORMAT_VERSION
    got = _normalise(doc, e.eval_id, tmp_path)
    if os.environ.get("SKYLOOM_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert got == want
    # what lm-evaluation-harness readers look for
    task = doc["results"]["fake"]
    assert {"colour_match,none", "colour_match_stderr,none", "jitter,none", "mean_distance,none"} <= set(task)
    assert doc["higher_is_better"]["fake"] == {"colour_match": True, "jitter": False, "mean_distance": False}
    assert doc["n-samples"]["fake"] == {"original": 8, "effective": 6}
    assert [f["stage"] for f in doc["failures"]] == ["generate", "generate"]
    ci = doc["confidence_intervals"]["fake"]["colour_match,none"]
    assert 0.8 < task["colour_match,none"] < 0.95 and ci["low"] < task["colour_match,none"] < ci["high"]
    assert 0.01 < task["jitter,none"] < 0.06 and doc["n"] == {"colour_match": 8, "jitter": 8, "mean_distance": 8}
    # the two failed items count in n and are listed with their reasons: no silent drop
    assert doc["details"]["colour_match"]["n_scored"] == 6 and doc["details"]["colour_match"]["n_failed"] == 2
    assert set(doc["details"]["jitter"]["failed_items"]) == {"purple-s0", "purple-s1"}


def test_lm_eval_make_table_reads_results_json(tmp_path):
    """lm-evaluation-harness's own table writer reads results.json: one row per metric, value ± stderr,
    the suite's version and n-shot; the CI bounds are not mistaken for metrics."""
    from lm_eval.utils import make_table

    fakes.register_fake_extractor()
    ref = fakes.make_reference_corpus(tmp_path / "ref")
    suite = fakes.write_suite(tmp_path / "fake.yaml", reference=ref)
    ck = fakes.make_checkpoint(tmp_path / "runs", "golden", 10, noise=8.0)
    res = run_eval(EvalConfig(suite=str(suite), checkpoints=(str(ck),), cache_dir=str(tmp_path / "cache"),
                              pipeline_loader=fakes.LOADER, n_boot=100, set_boot=10), metrics=fakes.FAKE_METRICS)
    doc = json.loads(Path(res.evals[0].results_path).read_text())
    table = make_table(doc)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:] if line.strip()]
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    assert header[:5] == ["Tasks", "Version", "Filter", "n-shot", "Metric"]
    by_metric = {r[4]: r for r in rows}
    assert set(by_metric) == {"colour_match", "jitter", "mean_distance"}  # no *_ci_low / *_ci_high rows
    assert rows[0][0] == "fake" and rows[0][1] == doc["versions"]["fake"]  # later rows leave them blank
    for m, r in by_metric.items():
        assert r[2] == "none" and r[3] == "0"
        assert float(r[6]) == pytest.approx(doc["results"]["fake"][f"{m},none"], abs=1e-4)
        assert r[7] == "±" and float(r[8]) == pytest.approx(doc["results"]["fake"][f"{m}_stderr,none"], abs=1e-4)
    assert by_metric["colour_match"][5] == "↑" and by_metric["jitter"][5] == "↓"
