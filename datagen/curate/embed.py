"""Clip embeddings, semantic dedup (SemDeDup) and nearest-clip search.

:func:`run_embed` (``skyloom corpus embed``) embeds every live clip with a feature extractor of
the registry :data:`skyloom.eval.features.base.EXTRACTORS` (``pixels``: weights-free thumbnails;
``clip``: open_clip from local weights, ``--set options.pretrained=FILE``; ``dino``;
``indomain:PATH``: the in-domain evaluator): ``frames`` frames sampled over the clip are encoded,
L2-normalised, averaged and normalised again. The vectors go to ``embeddings.parquet`` beside the
manifest (``id``, ``sha256``, ``embedder``, ``embedder_version``, ``vector``); resumable (rows whose
clip and embedder are unchanged are kept), in-process or as a Ray Data job like the annotations.

:func:`semantic_dedup` (``skyloom corpus semdedup``) follows SemDeDup (Abbas et al. 2023, "SemDeDup:
Data-efficient learning at web-scale through semantic deduplication"), the scheme Cosmos-Curate
uses for video clips: k-means on the normalised embeddings (FAISS ``Kmeans`` when installed, else
NumPy Lloyd iterations from k-means++ seeds), then within each cluster, clips in order of
decreasing distance to the centroid are kept unless their cosine similarity to an already kept
clip is at least ``1 - eps``. Results go to ``semdedup.parquet`` (cluster, duplicate, the kept clip
it duplicates, similarity, eps) and are read by filters as ``semantic_duplicate``.

:func:`search` (``skyloom corpus search``) returns the nearest clips to a text (CLIP-like
extractors: their text tower) or to a clip, with :func:`skyloom.datagen.curate.index.knn`
(exact FAISS or NumPy search; ``nlist`` switches to an IVF index for corpora of millions).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from skyloom.corpus import Corpus
from skyloom.datagen.curate.store import EMBEDDINGS, SEMDEDUP, SideTable
from skyloom.errors import UserError

SEMDEDUP_VERSION = "semdedup/1"


class EmbedError(UserError, ValueError):
    """Embeddings missing, of another embedder, or a query the embedder cannot encode."""


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of ``skyloom corpus embed`` (and of the embedder ``search`` encodes a text with).

    Attributes:
        extractor: a registered feature extractor (``pixels``, ``clip``, ``dino``, ``indomain:PATH``, ...).
        options: its constructor options (``pretrained``, ``model_name``, ``random_init``, ...).
        frames: frames sampled over each clip and averaged.
        executor / ray_min_clips / chunk: as for ``corpus annotate`` (``pixels`` costs ~30 ms a clip: Ray
            pays from ~1000 clips; a CLIP tower on CPU from a few hundred).
    """

    extractor: str = "pixels"
    options: dict[str, Any] = field(default_factory=dict)
    frames: int = 8
    executor: Literal["auto", "local", "ray"] = "auto"
    ray_min_clips: int = 1024
    chunk: int = 256


@dataclass
class EmbedResult:
    clips: int
    embedded: int
    failed: int
    embedder: str
    dim: int
    seconds: float


def build_extractor(cfg: EmbedConfig):
    from skyloom.eval.features.base import get_extractor

    return get_extractor(cfg.extractor, **cfg.options)


def embedder_id(ex) -> tuple[str, str]:
    """(name, version): the name, and the extractor's identity (weights hash, preprocessing) as JSON."""
    return ex.name, json.dumps(ex.identity(), sort_keys=True, default=str)


def embed_frames(ex, frames: np.ndarray) -> np.ndarray:
    """One clip's embedding from its sampled frames: float32 (D,), unit length."""
    if hasattr(ex, "encode_frames"):
        f = np.asarray(ex.encode_frames(frames), np.float64)  # (k, D)
        f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-12
        v = f.mean(0)
    else:
        v = np.asarray(ex.encode_videos(frames[None]), np.float64)[0]
    return (v / (np.linalg.norm(v) + 1e-12)).astype(np.float32)


def _embed_one(ex, item: dict[str, Any], k: int) -> dict[str, Any]:
    from skyloom.datagen.curate.fingerprint import sampled_frames

    try:
        return {"id": item["id"], "vector": embed_frames(ex, sampled_frames(item["path"], k)).tolist()}
    except Exception as e:  # noqa: BLE001 - one unreadable clip is reported, the others go on
        return {"id": item["id"], "error": f"{type(e).__name__}: {e}"}


class _RayEmbed:
    def __init__(self, cfg_json: str) -> None:
        d = json.loads(cfg_json)
        self.cfg = EmbedConfig(**d)
        self.ex = build_extractor(self.cfg)

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        r = _embed_one(self.ex, item, self.cfg.frames)
        return {"id": r["id"], "vector": json.dumps(r.get("vector")), "error": r.get("error", "")}


EMB_SCHEMA = pa.schema([("id", pa.string()), ("sha256", pa.string()), ("embedder", pa.string()),
                        ("embedder_version", pa.string()), ("embed_config", pa.string()),
                        ("vector", pa.list_(pa.float32()))])


def run_embed(corpus: Corpus | str | Path, cfg: EmbedConfig | None = None, ray_address: str | None = None,
              on_progress=None) -> EmbedResult:
    """Embed every live clip into ``embeddings.parquet`` (module docstring); resumable."""
    from skyloom.raytools import use_ray

    cfg = cfg or EmbedConfig()
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    t0 = time.perf_counter()
    ex = build_extractor(cfg)
    name, version = embedder_id(ex)
    made_with = json.dumps({"extractor": cfg.extractor, "options": cfg.options}, sort_keys=True)
    table = SideTable(c.root, EMBEDDINGS)
    old = table.rows()
    recs = c.records()
    replace = any(r["embedder_version"] != version for r in old.values())  # another embedder: start over
    todo = [{"id": r.id, "sha256": r.sha256, "path": str(c.abspath(r))} for r in recs
            if replace or old.get(r.id, {}).get("sha256") != r.sha256]
    shas = {it["id"]: it["sha256"] for it in todo}
    if use_ray(cfg.executor, len(todo), cfg.ray_min_clips, ray_address):
        from skyloom.raytools import init_ray

        ray = init_ray(ray_address)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        ds = ray.data.from_items(todo, override_num_blocks=max(1, min(len(todo), 4 * cpus)))
        ds = ds.map(_RayEmbed, fn_constructor_kwargs={"cfg_json": json.dumps(dataclasses.asdict(cfg))}, num_cpus=1,
                    compute=ray.data.ActorPoolStrategy(size=max(1, min(cpus - 1 or 1, len(todo)))))
        results = ({**r, "vector": json.loads(r["vector"])} for r in ds.iter_rows())
    else:
        results = (_embed_one(ex, it, cfg.frames) for it in todo)
    batch: list[dict[str, Any]] = []
    failed = done = 0
    first = [replace]

    def flush() -> None:
        if batch:
            table.upsert(pa.Table.from_pylist(batch, schema=EMB_SCHEMA), replace_all=first[0])
            first[0] = False
            batch.clear()

    for res in results:
        done += 1
        if res.get("error"):
            failed += 1
            c.quarantine("embed", res["id"], "embedding failed", detail=res["error"])
        else:
            batch.append({"id": res["id"], "sha256": shas[res["id"]], "embedder": name, "embedder_version": version,
                          "embed_config": made_with, "vector": res["vector"]})
            if len(batch) >= cfg.chunk:
                flush()
        if on_progress is not None:
            on_progress(done, len(todo))
    flush()
    return EmbedResult(len(recs), done - failed, failed, name, int(getattr(ex, "dim", 0)), time.perf_counter() - t0)


def load_embeddings(corpus: Corpus) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(ids, float32 (N, D) unit vectors, first row's embedder fields) of the corpus's live clips."""
    t = SideTable(corpus.root, EMBEDDINGS).read()
    if t is None or t.num_rows == 0:
        raise EmbedError(f"{corpus.root}: no embeddings.parquet; run `skyloom corpus embed {corpus.root}` first")
    live = {r.id: r.sha256 for r in corpus.records()}
    rows = [r for r in t.to_pylist() if live.get(r["id"]) == r["sha256"]]
    if not rows:
        raise EmbedError(f"{corpus.root}: embeddings.parquet holds no live clip; rerun `skyloom corpus embed`")
    x = np.asarray([r["vector"] for r in rows], np.float32)
    return [r["id"] for r in rows], x, {k: rows[0][k] for k in ("embedder", "embedder_version", "embed_config")}


def kmeans(x: np.ndarray, k: int, iters: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means of unit rows ``x`` (N, D): (centroids (k, D), assignment (N,)). FAISS when
    installed (``faiss.Kmeans(spherical=True)``), else Lloyd iterations from k-means++ seeds."""
    from skyloom.datagen.curate.index import have_faiss

    k = max(1, min(int(k), len(x)))
    if have_faiss() and len(x) >= k:
        import faiss

        km = faiss.Kmeans(x.shape[1], k, niter=iters, seed=seed, spherical=True, verbose=False,
                          min_points_per_centroid=1)
        km.train(np.ascontiguousarray(x, np.float32))
        _, assign = km.index.search(np.ascontiguousarray(x, np.float32), 1)
        return km.centroids, assign[:, 0].astype(np.int64)
    rng = np.random.default_rng(seed)
    cent = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.maximum(0.0, 1.0 - np.max(x @ np.stack(cent).T, axis=1))
        p = d / d.sum() if d.sum() > 0 else None
        cent.append(x[rng.choice(len(x), p=p)])
    c = np.stack(cent)
    for _ in range(iters):
        assign = np.argmax(x @ c.T, axis=1)
        for j in range(k):
            m = x[assign == j]
            if len(m):
                c[j] = m.mean(0) / (np.linalg.norm(m.mean(0)) + 1e-12)
    return c, np.argmax(x @ c.T, axis=1)


@dataclass
class SemDedupResult:
    clips: int
    clusters: int
    duplicates: int
    eps: float
    marks: dict[str, dict[str, Any]]


SEM_SCHEMA = pa.schema([("id", pa.string()), ("sha256", pa.string()), ("cluster", pa.int32()),
                        ("semantic_duplicate", pa.bool_()), ("kept", pa.string()), ("similarity", pa.float64()),
                        ("eps", pa.float64()), ("embedder", pa.string()), ("version", pa.string())])


def semantic_dedup(corpus: Corpus | str | Path, eps: float = 0.05, clusters: int = 0, seed: int = 0
                   ) -> SemDedupResult:
    """SemDeDup over ``embeddings.parquet`` (module docstring); writes ``semdedup.parquet``.

    Args:
        eps: clips at cosine similarity >= 1 - eps to a kept clip of their cluster are duplicates.
        clusters: k of k-means (0: about sqrt(N)).
    """
    if not 0.0 <= eps < 1.0:
        raise EmbedError(f"--eps must be in [0, 1), got {eps}")
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    ids, x, info = load_embeddings(c)
    k = clusters or max(1, int(round(np.sqrt(len(ids)))))
    cent, assign = kmeans(x, k, seed=seed)
    shas = {r.id: r.sha256 for r in c.records()}
    marks: dict[str, dict[str, Any]] = {}
    for j in range(len(cent)):
        members = np.flatnonzero(assign == j)
        if not len(members):
            continue
        order = members[np.argsort(x[members] @ cent[j], kind="stable")]  # farthest from the centroid first
        kept: list[int] = []
        for i in order:
            sims = x[kept] @ x[i] if kept else np.zeros(0)
            best = int(np.argmax(sims)) if len(sims) else -1
            dup = len(sims) > 0 and sims[best] >= 1.0 - eps
            marks[ids[i]] = {"sha256": shas[ids[i]], "cluster": int(j), "semantic_duplicate": bool(dup),
                             "kept": ids[kept[best]] if dup else ids[i],
                             "similarity": float(sims[best]) if len(sims) else 1.0, "eps": float(eps),
                             "embedder": info["embedder"], "version": SEMDEDUP_VERSION}
            if not dup:
                kept.append(int(i))
    SideTable(c.root, SEMDEDUP).upsert(
        pa.Table.from_pylist([{"id": i, **m} for i, m in sorted(marks.items())], schema=SEM_SCHEMA), replace_all=True)
    dups = sum(m["semantic_duplicate"] for m in marks.values())
    return SemDedupResult(len(ids), int(len(set(assign.tolist()))), dups, eps, marks)


def search(corpus: Corpus | str | Path, *, text: str | None = None, clip: str | None = None, k: int = 10,
           cfg: EmbedConfig | None = None, nlist: int = 0) -> list[dict[str, Any]]:
    """The ``k`` clips nearest to a text or to a clip id: ``[{"id", "score"}]`` (cosine), best first.

    A text query is encoded with the extractor the embeddings were made with (rebuilt from the
    stored ``embed_config``, or ``cfg``), which needs a text tower (``clip``); a clip query uses the
    clip's stored embedding.
    """
    if (text is None) == (clip is None):
        raise EmbedError("give exactly one of --text or --clip")
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    ids, x, info = load_embeddings(c)
    if clip is not None:
        if clip not in ids:
            raise EmbedError(f"--clip {clip!r}: no such clip with an embedding in {c.root}")
        q = x[ids.index(clip)][None]
    else:
        made = json.loads(info["embed_config"])
        ex = build_extractor(cfg or EmbedConfig(extractor=made["extractor"], options=made["options"]))
        name, version = embedder_id(ex)
        if version != info["embedder_version"]:
            raise EmbedError(f"the embeddings were made by {info['embedder']} ({info['embedder_version'][:80]}...), "
                             f"not {name}: pass the same --set extractor/options as `corpus embed`")
        try:
            q = np.asarray(ex.encode_text([text]), np.float32)
        except (NotImplementedError, AttributeError):
            raise EmbedError(f"extractor {name} has no text encoder; embed with a CLIP-like extractor "
                             "(--set extractor=clip) to search by text") from None
        q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-12
    from skyloom.datagen.curate.index import knn

    scores, idx = knn(q, x, k + (1 if clip is not None else 0), nlist=nlist)
    out = [{"id": ids[int(i)], "score": round(float(s), 6)} for s, i in zip(scores[0], idx[0], strict=True)
           if int(i) >= 0 and ids[int(i)] != clip]
    return out[:k]
