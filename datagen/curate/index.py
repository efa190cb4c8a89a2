"""Nearest neighbours for curation: FAISS when installed (``faiss-cpu``), else exact blocked NumPy.

Both give the exact inner-product neighbours (FAISS ``IndexFlatIP``; NumPy in blocks of
``block`` query rows, so memory stays ``block x N``). For corpora past what an exact search
handles, :func:`knn` takes ``nlist`` > 0 to build a FAISS IVF index (k-means coarse quantiser,
``nprobe`` lists searched), the approximate index FAISS documents for millions of vectors.

Example:
    >>> import numpy as np
    >>> x = np.eye(3, dtype=np.float32)
    >>> knn(x, x, 1)[1][:, 0].tolist()
    [0, 1, 2]
"""

from __future__ import annotations

import numpy as np


def have_faiss() -> bool:
    import logging

    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it logs which CPU build it loads
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def backend() -> str:
    """``faiss`` or ``numpy``: which search :func:`knn` uses here."""
    return "faiss" if have_faiss() else "numpy"


def knn(queries: np.ndarray, base: np.ndarray, k: int, *, nlist: int = 0, nprobe: int = 8,
        block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest inner products of each query row with ``base`` rows: ``(scores (Q, k), indices (Q, k))``,
    best first (``k`` is capped at ``len(base)``)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    b = np.ascontiguousarray(base, dtype=np.float32)
    k = min(int(k), len(b))
    if k <= 0 or len(q) == 0:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    if have_faiss():
        import faiss

        if nlist > 0 and len(b) >= 39 * nlist:  # FAISS wants ~39 training points per list
            quant = faiss.IndexFlatIP(b.shape[1])
            index = faiss.IndexIVFFlat(quant, b.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(b)
            index.nprobe = nprobe
        else:
            index = faiss.IndexFlatIP(b.shape[1])
        index.add(b)
        scores, idx = index.search(q, k)
        return scores, idx.astype(np.int64)
    scores = np.empty((len(q), k), np.float32)
    idx = np.empty((len(q), k), np.int64)
    for lo in range(0, len(q), block):
        s = q[lo:lo + block] @ b.T  # (blk, N)
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(s, part, 1)
        order = np.argsort(-ps, axis=1, kind="stable")
        idx[lo:lo + block] = np.take_along_axis(part, order, 1)
        scores[lo:lo + block] = np.take_along_axis(ps, order, 1)
    return scores, idx
