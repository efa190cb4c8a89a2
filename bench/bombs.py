"""Time and peak memory to reject decompression and pixel bombs (issue 25).

Two hostile inputs, each handled in a fresh process so that its peak resident set (``ru_maxrss``)
is the bomb's alone:

* ``gzip``: a 1,827-byte HTTP body sent with ``Content-Encoding: gzip, gzip`` that decodes to
  1 GiB of zeros (``tests/datagen/data/zeros-1gib.gz.gz``), fetched with ``fetch.max_bytes`` = 10 MB;
* ``pixels``: a 5.9 KB MJPEG mp4 whose headers claim 16000 x 16000 frames but whose data are
  64 x 64 (``tests/datagen/data/mjpeg-claims-16000x16000.mp4``: the sizes patched in);
* ``pixels-h264``: a 48 KB H.264 mp4 of one real, black 16000 x 16000 frame
  (``tests/datagen/data/h264-16000x16000.mp4``, x264 ``medium``, crf 51), which decodes;

each pixel bomb run through one ingest source (:func:`skyloom.datagen.ingest.process_source`)
with the default filters.

Each case reports the verdict (the reason string), seconds and peak RSS in MiB; ``baseline`` is
the RSS of the same process before the bomb (Python + the imports). Run it against another
checkout by running this file with that checkout's interpreter.

Usage: ``.venv/bin/python -m bench.bombs [--case gzip|pixels|pixels-h264]``; prints JSON lines
(and, running every case, writes ``bench/out/bombs.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "datagen" / "data"
GZIP_BOMB = DATA / "zeros-1gib.gz.gz"
PIXEL_BOMB = DATA / "mjpeg-claims-16000x16000.mp4"
H264_BOMB = DATA / "h264-16000x16000.mp4"


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gzip_case() -> dict:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from skyloom.datagen.fetch import FetchConfig, FetchError, fetch

    body = GZIP_BOMB.read_bytes()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Encoding", "gzip, gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    import tempfile

    base = _rss_mib()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as d:
            fetch(f"http://127.0.0.1:{httpd.server_address[1]}/bomb.mp4", Path(d),
                  FetchConfig(max_bytes=10_000_000, retries=0, allow_private=True, timeout_s=120))
        verdict = "accepted"
    except FetchError as e:
        verdict = e.reason
    finally:
        httpd.shutdown()
    return {"case": "gzip", "input_bytes": len(body), "decoded_bytes": 1 << 30, "verdict": verdict,
            "seconds": round(time.perf_counter() - t0, 3), "baseline_mib": round(base, 1),
            "peak_rss_mib": round(_rss_mib(), 1)}


def _pixels_case(path: Path = PIXEL_BOMB, case: str = "pixels") -> dict:
    import tempfile
    import time

    from skyloom.datagen.fetch import FetchConfig
    from skyloom.datagen.ingest import IngestConfig, process_source
    from skyloom.datagen.sources import Source

    cfg = IngestConfig(fetch=FetchConfig(allowed_roots=(str(DATA),)))
    with tempfile.TemporaryDirectory() as d:
        from skyloom.corpus import Corpus

        Corpus.create(d)
        base = _rss_mib()
        t0 = time.perf_counter()
        res = process_source(Source(url=str(path), license="CC0-1.0", author="bench"), cfg, d)
        took = time.perf_counter() - t0
    return {"case": case, "input_bytes": path.stat().st_size, "claimed": "16000x16000",
            "verdict": res.get("reason") or res.get("status"), "seconds": round(took, 3),
            "baseline_mib": round(base, 1), "peak_rss_mib": round(_rss_mib(), 1)}


CASES = {"gzip": _gzip_case, "pixels": _pixels_case,
         "pixels-h264": lambda: _pixels_case(H264_BOMB, "pixels-h264")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES), help="run one case in this process (default: each in a child)")
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(CASES[args.case]()))
        return 0
    out = []
    for name in CASES:
        r = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True, check=True,
                           timeout=600)
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(out[-1]))
    dest = Path(__file__).resolve().parent / "out" / "bombs.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
