"""The shared helpers other stages call instead of their own copies: timestamps and optical flow."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from skyloom.fsutil import file_stamp, now_iso
from skyloom.optical_flow import dense_flow


def test_one_timestamp_format_utc_microseconds_sortable():
    a, b = now_iso(), now_iso()
    t = dt.datetime.fromisoformat(a)
    assert t.utcoffset() == dt.timedelta(0) and abs((dt.datetime.now(dt.UTC) - t).total_seconds()) < 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", a) and len(a) == len(b) and a <= b
    assert re.fullmatch(r"\d{8}T\d{6}-\d{6}", file_stamp())


@pytest.mark.parametrize("method, preset", [("farneback", "medium"), ("dis", "medium"), ("dis", "ultrafast")])
def test_dense_flow_recovers_a_known_shift(method, preset):
    rng = np.random.default_rng(0)
    base = (rng.random((12, 16)) * 255).astype(np.uint8)
    a = np.kron(base, np.ones((4, 4), np.uint8))  # (48, 64) smooth-ish blocks
    b = np.roll(a, (1, 3), axis=(0, 1))  # content moves 3 px right, 1 px down
    rgb = np.repeat(a[..., None], 3, axis=-1)
    flow = dense_flow(a, b, method, preset=preset, cache={})  # (H, W, 2)
    inner = flow[8:-8, 8:-8].reshape(-1, 2)
    assert np.median(inner[:, 0]) == pytest.approx(3, abs=0.5) and np.median(inner[:, 1]) == pytest.approx(1, abs=0.5)
    rgb_b = np.repeat(b[..., None], 3, axis=-1)
    assert np.array_equal(dense_flow(rgb, rgb_b, method, preset=preset), flow)  # RGB = grey


def test_dense_flow_names_bad_arguments():
    a = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="farneback"):
        dense_flow(a, a, "lucas-kanade")
    with pytest.raises(ValueError, match="ultrafast"):
        dense_flow(a, a, "dis", preset="slow")
