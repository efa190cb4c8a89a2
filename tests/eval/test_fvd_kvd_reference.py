"""FVD and KVD against StyleGAN-V's own ``compute_fvd``/``compute_kid`` (stored outputs, with the commit, made by
``fixtures/make_stylegan_v_fvd_kvd.py``) and torchmetrics' FID/KID maths (live), on the same features: a
well-conditioned 16-d case and a 400-d, 96-sample case (I3D's feature size, rank-deficient covariances)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from skyloom.eval.metrics.fvd import FVD, KVD

FIX = Path(__file__).parent / "fixtures"
REF = json.loads((FIX / "reference_stylegan_v_fvd_kvd.json").read_text())
CASES = ("small", "wide")


def _inputs(case):
    with np.load(FIX / "reference_fvd_kvd_inputs.npz") as z:
        return z[f"{case}_real"], z[f"{case}_fake"]


def _ours(metric, real, fake):
    m = metric(extractor=None)
    m.update_features(real, real=True)
    m.update_features(fake)
    return m.compute().value


@pytest.mark.parametrize("case", CASES)
def test_fvd_equals_stylegan_v_compute_fvd(case):
    real, fake = _inputs(case)
    want = REF["results"][case]["fvd"]
    assert REF["commit"] == "3fecd69c602e1cda204357201461c0fb0a634909"
    # StyleGAN-V takes scipy.linalg.sqrtm of the (non-symmetric) product; skyloom a symmetric eigendecomposition
    assert _ours(FVD, real, fake) == pytest.approx(want, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_kvd_equals_stylegan_v_compute_kid(case):
    real, fake = _inputs(case)
    want = REF["results"][case]["kid_x1000"] / 1000  # StyleGAN-V reports KID x 1000
    assert _ours(KVD, real, fake) == pytest.approx(want, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_fvd_and_kvd_equal_torchmetrics(case):
    from torchmetrics.image.fid import _compute_fid
    from torchmetrics.image.kid import poly_mmd

    real, fake = _inputs(case)
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    mu_r, mu_f = r.mean(0), f.mean(0)
    cov_r = torch.cov(r.T, correction=0)
    cov_f = torch.cov(f.T, correction=0)
    fid = float(_compute_fid(mu_f, cov_f, mu_r, cov_r))
    assert _ours(FVD, real, fake) == pytest.approx(fid, rel=1e-5, abs=1e-6)
    kid = float(poly_mmd(r, f))  # degree 3, gamma 1/D, coef 1: KVD's kernel
    assert _ours(KVD, real, fake) == pytest.approx(kid, rel=1e-6, abs=1e-9)
