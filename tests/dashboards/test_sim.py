"""The simulator beside the model (physics references), the clip inspector's ground truth, the job
queue and the prompt box, checked against the functions of the stages that own the data."""

from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import pytest

from tests.dashboards.fixtures import PHYSICS, physics_specs

EVALS = "phys-static,phys-good"


def _physics(client, wait_on=None):
    r = client.get("/api/physics", params={"suite": "physics", "evals": EVALS})
    assert r.status_code == 200, r.text
    data = r.json()
    if wait_on is not None:
        assert wait_on.jobs.wait([k for k in list(wait_on.jobs._jobs)], timeout=300)
        data = client.get("/api/physics", params={"suite": "physics", "evals": EVALS}).json()
    return data


def _get_video(client, url):
    from skyloom.video import read_video

    r = client.get("/" + url)
    assert r.status_code == 200, (url, r.status_code)
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(r.content)
        f.flush()
        return read_video(f.name)


def test_physics_references_are_the_evaluations_simulation(sim_client, sim_dash, sim_world):
    from skyloom import datagen
    from skyloom.eval.functional.physics_iq import physical_variance, physics_iq_raw
    from skyloom.video import read_video

    first = _physics(sim_client)
    assert set(first["items"]) == {"physics-probe-000", "physics-probe-001"}
    assert {p["status"] for p in first["items"].values()} <= {"queued", "running", "done"}
    data = _physics(sim_client, wait_on=sim_dash)
    k = PHYSICS["cond_frames"]
    assert data["cond_frames"] == k and data["perturb_scale"] == PHYSICS["perturb_scale"]
    for iid, spec in physics_specs().items():
        p = data["items"][iid]
        assert p["status"] == "done", p
        sim = datagen.render_spec(spec)[0]  # (T, H, W, 3): what the evaluation compared against
        shown = _get_video(sim_client, p["simulator"])
        assert shown.shape == sim.shape and np.abs(shown.astype(int) - sim).mean() < 4  # H.264
        given = _get_video(sim_client, p["given"])
        assert np.abs(given[:k].astype(int) - sim[:k]).mean() < 4
        assert np.abs(given[k:].astype(int) - sim[k - 1]).mean() < 4  # the last given frame, held
        perturbed = _get_video(sim_client, p["perturbed"])
        assert perturbed.shape == sim.shape
        # The physical variance shown is eval's own, for the suite's settings (take 0).
        ref_var = physical_variance(spec, k, PHYSICS["perturb_scale"], 1, seed=PHYSICS["seed"], reference=sim)
        flat = {k: v for k, v in ref_var.items() if k != "physics_iq"}  # the raw metrics (Physics-IQ's own
        assert p["variance"] == pytest.approx(flat)  # dataset-level variance terms are nested apart in eval)
        # Per-checkpoint numbers: Physics-IQ raw metrics of the stored video against the simulator.
        for eid in ("phys-good", "phys-static"):
            video = read_video(sim_world["run-phys"] / "eval" / "physics" / eid / "videos" / f"{iid}.mp4")
            assert p["numbers"][eid] == pytest.approx(physics_iq_raw(video, sim, start=k))
        good, static = p["numbers"]["phys-good"], p["numbers"]["phys-static"]
        assert good["spatiotemporal_iou"] > static["spatiotemporal_iou"] and good["mse"] < static["mse"]
    # A second look is answered from the cache: nothing is rendered again.
    mtimes = {f: f.stat().st_mtime_ns for f in (sim_world["cache"] / "physics").rglob("*.mp4")}
    again = _physics(sim_client)
    assert all(p["status"] == "done" for p in again["items"].values())
    assert {f: f.stat().st_mtime_ns for f in (sim_world["cache"] / "physics").rglob("*.mp4")} == mtimes


def test_suites_without_probe_scenes_have_no_references(client):
    assert client.get("/api/physics", params={"suite": "smoke", "evals": "smoke-a0"}).json()["items"] == {}


def test_clip_ground_truth_is_the_stored_ground_truth(sim_client, sim_world):
    import json

    from PIL import Image

    from skyloom.captioning import verify_caption
    from skyloom.corpus import Corpus
    from skyloom.dashboards.groundtruth import SEG_ALPHA, seg_colour

    c = Corpus(sim_world["corpus"])
    for cid in ("sim-0", "sim-1"):
        d = sim_client.get("/api/clip", params={"corpus": 0, "id": cid}).json()
        gt = json.loads(c.gt_path(cid).read_text())
        g = d["gt"]
        assert (g["width"], g["height"], g["num_frames"]) == (gt["width"], gt["height"], len(gt["frames"]))
        for o in gt["objects"]:
            name = o["name"]
            boxes = [next(x for x in fr["objects"] if x["name"] == name) for fr in gt["frames"]]
            assert g["boxes"][name] == [b["bbox"] if b["visible"] else None for b in boxes]
            assert g["centres"][name] == [pytest.approx(b["center_px"]) for b in boxes]
        assert g["events"] == [{k: e.get(k) for k in ("frame", "t", "kind", "a", "b", "speed")} for e in gt["events"]]
        rec = c.get(cid)
        assert len(d["caption_checks"]) == len(rec.captions) > 0
        for chk, cap in zip(d["caption_checks"], rec.captions):
            ref = verify_caption(cap.text, gt)
            assert (chk["precision"], chk["recall"], chk["missing"]) == (ref.precision, ref.recall, ref.missing)
        assert {f"{o['colour']} {o['shape']}" for o in d["facts"]["objects"]} == \
            {f"{o['colour']} {o['shape']}" for o in gt["objects"]}
        assert d["provenance"]["license_id"] == "CC0-1.0" and d["url"].endswith(f"clips/{cid}.mp4")
        # The segmentation atlas: frame t's tile is the mask, coloured by segmentation id.
        r = sim_client.get("/api/segmentation", params={"corpus": 0, "id": cid})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        atlas = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
        sg = d["segmentation"]
        with np.load(c.gt_path(cid, ".npz")) as z:
            seg = z["segmentation"]
        assert (sg["frames"], sg["height"], sg["width"]) == seg.shape
        for t in range(seg.shape[0]):
            row, col = divmod(t, sg["cols"])
            tile = atlas[row * sg["height"]:(row + 1) * sg["height"], col * sg["width"]:(col + 1) * sg["width"]]
            assert np.array_equal(tile[..., 3] > 0, seg[t] > 0)
            for sid in np.unique(seg[t][seg[t] > 0]):
                assert (tile[seg[t] == sid][:, :3] == seg_colour(int(sid))).all()
                assert (tile[seg[t] == sid][:, 3] == SEG_ALPHA).all()


def test_licensed_clip_shows_provenance_and_license(sim_client):
    d = sim_client.get("/api/clip", params={"corpus": 0, "id": "real-0"}).json()
    assert d["gt"] is None and d["gt_error"] is None and d["segmentation"] is None
    p = d["provenance"]
    assert p["license_id"] == "CC-BY-4.0" and p["license_name"] == "Creative Commons Attribution 4.0"
    assert (p["author"], p["attribution"], p["source_url"], p["source_page"]) == \
        ("Jane Doe", "Jane Doe, CC BY 4.0", "https://example.org/v/real", "https://example.org/p")
    assert p["parent_id"] == "src-real" and p["shot"] == [2.0, 3.0]
    assert sim_client.get("/api/segmentation", params={"corpus": 0, "id": "real-0"}).status_code == 404


def test_unknown_clips_and_corpora_are_404_without_paths(sim_client, sim_world):
    for params in ({"corpus": 0, "id": "nope"}, {"corpus": 7, "id": "sim-0"}, {"corpus": 0, "id": "../../etc/passwd"}):
        for route in ("/api/clip", "/api/segmentation"):
            r = sim_client.get(route, params=params)
            assert r.status_code == 404, (route, params)
            assert str(sim_world["root"]) not in r.text and "/tmp" not in r.text, r.text


def test_job_queue_runs_one_job_at_a_time_in_order():
    from skyloom.dashboards.jobs import JobQueue, QueueFull

    q = JobQueue(max_queued=6)
    running, peak, order = [0], [0], []
    lock = threading.Lock()

    def work(i):
        def fn():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.03)
            order.append(i)
            with lock:
                running[0] -= 1
        return fn

    jobs = [q.submit(f"k{i}", "test", str(i), work(i)) for i in range(5)]
    assert q.submit("k1", "test", "again", work(99)) is jobs[1]  # joining a queued job, not a second one
    assert q.wait([j.key for j in jobs], timeout=30)
    assert peak == [1] and order == [0, 1, 2, 3, 4]

    def boom():
        raise RuntimeError("cannot read /srv/secret/place/model.safetensors")

    q.submit("bad", "test", "bad", boom)
    assert q.wait(["bad"], timeout=30)
    st = q.status("bad")
    assert st["status"] == "error" and "/srv" not in st["error"] and "model.safetensors" in st["error"]
    assert q.submit("cached", "test", "c", work(7), is_done=lambda: True).status == "done"  # cache hit: nothing runs
    gate = threading.Event()
    q.submit("block", "test", "b", gate.wait)
    time.sleep(0.1)
    with pytest.raises(QueueFull):
        for i in range(10):
            q.submit(f"f{i}", "test", "f", lambda: None)
    gate.set()
    q.close()


@pytest.mark.parametrize("body,field", [
    ({"prompt": "a ball"}, "checkpoints"),
    ({"checkpoints": ["run-phys@0"], "prompt": "  "}, "prompt"),
    ({"checkpoints": ["nope@3"], "prompt": "a ball"}, "checkpoints"),
    ({"checkpoints": ["x"], "prompt": "a", "steps": 0}, "steps"),
    ({"checkpoints": ["x"], "prompt": "a", "seed": -1}, "seed"),
    ({"checkpoints": ["x"], "prompt": "a", "guidance": "lots"}, "guidance"),
    ({"checkpoints": ["x"], "prompt": "a", "num_frames": 2.5}, "num_frames"),
    ({"checkpoints": ["x"], "prompt": "a", "image": "data:text/plain;base64,aGk="}, "image"),
    ({"checkpoints": ["x"], "prompt": "a", "image": "data:image/png;base64,bm90IGFuIGltYWdl"}, "image"),
    ({"checkpoints": ["x"], "prompt": "a", "colour": "red"}, "unknown field"),
])
def test_bad_sampling_requests_say_which_field(sim_client, body, field):
    r = sim_client.post("/api/sample", json=body)
    assert r.status_code == 400 and field in r.json()["detail"], r.text


def test_sampling_refuses_forms_and_other_origins(sim_client):
    body = '{"checkpoints": ["x"], "prompt": "a"}'
    assert sim_client.post("/api/sample", content=body, headers={"content-type": "text/plain"}).status_code == 415
    r = sim_client.post("/api/sample", content=body, headers={"content-type": "application/json",
                                                               "origin": "http://evil.example"})
    assert r.status_code == 403


def _png_data_url(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.mark.slow  # trains a tiny run first (~20 s on a loaded machine)
def test_prompt_box_samples_each_checkpoint_through_the_pipeline_api(sim_client, sim_dash, tiny_run, tmp_path):
    from skyloom.model import load_pipeline
    from skyloom.rundir import RunDir
    from skyloom.video import read_video, write_video

    listed = [c["id"] for c in sim_client.get("/api/checkpoints").json()["checkpoints"]]
    assert listed == ["tiny@0", "tiny@1", "tiny@2"]  # complete checkpoints under --runs only
    ids = listed[1:]
    body = {"checkpoints": ids, "prompt": "a red square moves right", "seed": 3, "steps": 2}
    jobs = sim_client.post("/api/sample", json=body).json()["jobs"]
    assert [j["checkpoint"] for j in jobs] == ids and len({j["key"] for j in jobs}) == 2
    assert sim_dash.jobs.wait([j["key"] for j in jobs], timeout=300)
    done = [sim_client.get("/api/job", params={"key": j["key"]}).json() for j in jobs]
    assert all(d["status"] == "done" for d in done), done
    videos = []
    for d, (step, ck) in zip(done, RunDir(tiny_run).checkpoints()[1:]):
        got = _get_video(sim_client, d["url"])
        pipe = load_pipeline(ck)
        ref = pipe.generate([body["prompt"]], [3], steps=2)[0]  # (T, H, W, 3), through the model's own API
        write_video(tmp_path / f"ref-{step}.mp4", ref, fps=pipe.fps)  # the same encoder: compare like with like
        assert got.shape == ref.shape and np.abs(got.astype(int) - read_video(tmp_path / f"ref-{step}.mp4")).max() <= 1
        videos.append(got)
    assert np.abs(videos[0].astype(int) - videos[1]).mean() > 1  # each checkpoint answered for itself
    # The same request again is answered from the cache (same keys, nothing queued, files untouched).
    files = {p: p.stat().st_mtime_ns for p in (sim_dash.cache_dir / "samples").glob("*.mp4")}
    again = sim_client.post("/api/sample", json=body).json()["jobs"]
    assert [j["key"] for j in again] == [j["key"] for j in jobs] and all(j["status"] == "done" for j in again)
    assert {p: p.stat().st_mtime_ns for p in (sim_dash.cache_dir / "samples").glob("*.mp4")} == files
    other = sim_client.post("/api/sample", json={**body, "seed": 4, "checkpoints": ids[:1]}).json()["jobs"]
    assert other[0]["key"] not in {j["key"] for j in jobs}
    # Image-to-video: the first frame is the given image (resized to the model's size).
    img = np.zeros((32, 32, 3), np.uint8)
    img[8:24, 4:20] = (250, 30, 30)
    i2v = sim_client.post("/api/sample", json={**body, "checkpoints": ids[1:], "image": _png_data_url(img)}).json()
    assert i2v["request"]["image"] and sim_dash.jobs.wait([i2v["jobs"][0]["key"]], timeout=300)
    first = read_video(sim_dash.cache_dir / "samples" / (i2v["jobs"][0]["key"][len("sample-"):] + ".mp4"))[0]
    small = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(img).resize(first.shape[1::-1]))
    assert np.abs(first.astype(int) - small).mean() < 25
    assert i2v["jobs"][0]["key"] not in {j["key"] for j in jobs}


def test_reading_does_not_change_the_stamp(sim_dash):
    """The page polls the stamp: looking at the views must not move it (or it would refresh forever)."""
    before = sim_dash.stamp()["stamp"]
    for payload in (sim_dash.overview(), sim_dash.leaderboard(), sim_dash.training(), sim_dash.corpus(),
                    sim_dash.clip(0, "sim-0"), sim_dash.compare(0, "physics", ["phys-good"]), sim_dash.checkpoints()):
        assert payload
    assert sim_dash.stamp()["stamp"] == before


def test_stamp_changes_with_the_inputs(tmp_path):
    from skyloom.corpus import Corpus
    from skyloom.dashboards import Dashboard
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    Corpus.create(tmp_path / "c")
    d = Dashboard(tmp_path / "runs", corpora=[tmp_path / "c"], cache_dir=tmp_path / "cache")
    a = d.stamp()["stamp"]
    assert d.stamp()["stamp"] == a  # nothing changed
    time.sleep(0.01)
    run.log_metrics(1, loss=0.5)
    b = d.stamp()["stamp"]
    assert b != a
    RunDir.create(tmp_path / "runs" / "r2")
    c = d.stamp()["stamp"]
    assert c != b
    from tests.dashboards.fixtures import make_corpus

    make_corpus(tmp_path / "more")  # another corpus does not matter; this one's manifest does
    assert d.stamp()["stamp"] == c
    from skyloom.corpus import ClipRecord

    Corpus(tmp_path / "c").append([ClipRecord(id="x", path="clips/x.mp4", source_kind="synthetic", duration_s=1, fps=8,
                                              width=8, height=8, num_frames=8, license_id="CC0-1.0", source_url="s",
                                              author="a", attribution="", sha256="0" * 64)])
    assert d.stamp()["stamp"] != c
    d.close()


def test_the_dashboard_shows_the_admitted_probes():
    from skyloom.dashboards.physics import shown_probes

    specs = {f"p-{i:03d}": {"seed": i} for i in range(6)}  # every draw of a suite
    admitted = {"config": {"physics_probes": {"admitted": ["p-000", "p-002", "p-005"], "rejected": []}}}
    assert list(shown_probes(specs, [admitted], 3)) == ["p-000", "p-002", "p-005"]
    assert list(shown_probes(specs, [{"config": {"suite": {}}}], 2)) == ["p-000", "p-001"]  # stored before admission
    assert list(shown_probes(specs, [], 2)) == ["p-000", "p-001"]
