// skyloom dashboard: four views over one data source. Live mode fetches api/<name>; the static
// report embeds the same payloads in #skyloom-data, so the same code renders both.
"use strict";

const EMBED = JSON.parse(document.getElementById("skyloom-data").textContent || "null");
const STATIC = EMBED !== null;
const PAGE = { compare: 6, corpus: 24 };
const rendered = {};
const groups = {};  // each view's SyncGroup: paused when another view is shown, driven by ← → and space
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

async function load(name, params = {}) {
  if (STATIC) {
    if (name === "compare") {
      const c = (EMBED.compare || {})[`${params.source}|${params.suite}`];
      if (!c) return { suite: params.suite, evals: [], metrics: [], items: [] };
      const keep = new Set((params.evals || "").split(",").filter(Boolean));
      return { ...c, evals: c.evals.filter((e) => keep.has(e.eval_id)) };
    }
    if (name === "physics") return (EMBED.physics || {})[`${params.source}|${params.suite}`] || { items: {} };
    if (name === "paired") {
      const r = (EMBED.paired || {})[`${params.source}|${params.a}|${params.b}|${params.metric}`];
      return r || { error: `this pair was not precomputed in the report (it holds the top ${(EMBED.report || {}).paired_entries ?? "K"} entries of each board's newest version; skyloom report --top-k N)` };
    }
    return EMBED[name];
  }
  const q = new URLSearchParams(params).toString();
  const r = await fetch(`api/${name}${q ? "?" + q : ""}`);
  if (!r.ok) throw new Error(`api/${name}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

function options(values, selected, labels) {
  return values.map((v, i) => `<option value="${esc(v)}"${v === selected ? " selected" : ""}>${esc(labels ? labels[i] : v)}</option>`).join("");
}

// ---------------------------------------------------------------------------- leaderboard
// ⚠ metrics whose calibration rows come out in the wrong order; how the total is made.
function boardNotes(s) {
  const out = (s.flagged || []).map((m) => `<div class="note bad">⚠ ${esc(m)}: calibration rows out of order (${esc(((s.flags || {})[m] || {}).violations.join("; "))})</div>`);
  const b = s.breakdown || {};
  const w = Object.entries(b.weights || {});
  for (const t of s.total_flags || []) out.push(`<div class="note bad">⚠ total: ${esc(t)}</div>`);
  if (s.correction) out.push(`<div class="note">${esc(s.correction)}</div>`);
  if (w.length) out.push(`<div class="note">total = weighted mean of ${esc(w.map(([m, x]) => `${m}×${x}`).join(", "))}${b.normalise === "calibration" ? `, normalised between ${esc(b.low)} (0) and ${esc(b.high)} (1)` : " (raw values)"}${b.note ? "; " + esc(b.note) : ""}</div>`);
  return out.join("");
}
// Submissions (videos made elsewhere) and calibration rows (references made from the data, not ranked).
function kindBadge(r) {
  if (r.kind === "calibration") return ' <span class="badge kind-calibration" title="reference row made from the suite\'s data; not a model, not ranked">calibration</span>';
  if (r.kind === "submission") {
    const m = Object.entries(r.meta || {}).filter(([k]) => ["who", "model", "date", "settings"].includes(k)).map(([k, v]) => `${k}: ${v}`).join("\n");
    return ` <span class="badge kind-submission" title="${esc(m || "submitted videos")}">submission</span>`;
  }
  return "";
}
async function renderLeaderboard(el) {
  const data = await load("leaderboard");
  const suites = data.suites || [];
  const warn = (data.warnings || []).map((w) => `<div class="bad note">${esc(w)}</div>`).join("");
  if (!suites.length) {
    el.innerHTML = `${warn}<div class="card empty">No evaluations found. ${esc(data.note || "Run `skyloom eval --suite smoke --ckpt RUN` first.")}</div>`;
    return;
  }
  // One table per (source, suite, suite version): the suite picker lists each suite once, the version
  // picker that suite's versions (newest first) with their entry counts.
  const heads = suites.map((s, i) => i).filter((i) => suites[i].default !== false);
  const versionsOf = (i) => suites.map((s, j) => j).filter((j) => suites[j].suite === suites[i].suite && suites[j].source_id === suites[i].source_id);
  el.innerHTML = `${warn}<div class="controls">
      <label>Suite <select id="lb-suite">${options(heads.map(String), String(heads[0]), heads.map((i) => suites[i].suite + (suites[i].source ? ` (${suites[i].source})` : "")))}</select></label>
      <label>Version <select id="lb-version"></select></label>
      <label>Filter <input id="lb-filter" placeholder="checkpoint or run…"></label>
      <span class="note">Click a column to sort. Rows shaded alike with the same ≈ badge are tied within noise.</span>
    </div><div id="lb-body"></div>`;
  const sort = { key: "pos", dir: 1 };  // the server's order: ranked entries, calibration rows where their value puts them
  const fillVersions = () => {
    const vs = versionsOf(+$("#lb-suite").value);
    $("#lb-version").innerHTML = options(vs.map(String), String(vs[0]), vs.map((j) => `v${suites[j].suite_version ?? "(unversioned)"} (${suites[j].rows.length} entries)${suites[j].default !== false ? " · newest" : ""}`));
  };
  fillVersions();
  const draw = () => {
    const s = suites[+$("#lb-version").value];
    const f = $("#lb-filter").value.toLowerCase();
    const metrics = s.metrics || [];
    const sizes = {};
    for (const r of s.rows) if (r.tie_group !== null && r.tie_group !== undefined) sizes[r.tie_group] = (sizes[r.tie_group] || 0) + 1;
    const bdw = Object.keys((s.breakdown || {}).weights || {}).length > 0;
    const flagged = new Set(s.flagged || []);
    const val = (r, k) => (k === "pos" ? s.rows.indexOf(r) : k.startsWith("m:") ? (r.scores[k.slice(2)] || {}).value
      : k === "b:total" ? (r.breakdown || {}).total : k.startsWith("c:") ? ((r.breakdown || {}).categories || {})[k.slice(2)] : r[k]);
    const rows = s.rows.filter((r) => !f || `${r.checkpoint_name} ${r.run_name} ${r.eval_id}`.toLowerCase().includes(f))
      .sort((a, b) => {
        const x = val(a, sort.key), y = val(b, sort.key);
        if (x === y) return 0;
        if (x === undefined || x === null) return 1;
        if (y === undefined || y === null) return -1;
        return (x < y ? -1 : 1) * sort.dir;
      });
    const anyFail = s.rows.some((r) => r.failures > 0 || r.status === "partial");
    const cols = [["rank", "rank"], ["tie_group", "tie"], ["checkpoint_name", "checkpoint"], ["run_name", "run"], ["step", "step"]]
      .concat(bdw ? [["b:total", "total"]].concat((s.categories || []).map((c) => [`c:${c}`, c])) : [])
      .concat(metrics.map((m) => [`m:${m.name}`, `${m.name} ${m.higher_is_better === false ? "↓" : m.higher_is_better ? "↑" : ""}${flagged.has(m.name) ? " ⚠" : ""}`]))
      .concat(anyFail ? [["failures", "failed items"]] : []);
    const head = cols.map(([k, lab]) => `<th data-key="${esc(k)}" class="${sort.key === k ? (sort.dir > 0 ? "sorted-asc" : "sorted-desc") : ""}">${esc(lab)}</th>`).join("");
    const body = rows.map((r) => {
      const tied = sizes[r.tie_group] > 1;
      const bcells = bdw ? [val(r, "b:total")].concat((s.categories || []).map((c) => val(r, `c:${c}`))).map((v) => `<td class="num">${fmt(v)}</td>`).join("") : "";
      const cells = bcells + metrics.map((m) => {
        const sc = r.scores[m.name];
        if (!sc) return `<td class="num">–</td>`;
        const ci = sc.ci_low !== null && sc.ci_low !== undefined ? `<div class="ci">[${fmt(sc.ci_low)}, ${fmt(sc.ci_high)}]${sc.n ? " n=" + esc(sc.n) : ""}</div>` : "";
        return `<td class="num">${fmt(sc.value)}${ci}</td>`;
      }).join("");
      const rank = r.partial ? `<span class="badge" title="fewer items scored than the complete entries: not ranked">unranked ${esc(r.coverage)}</span>` : esc(r.rank);
      return `<tr class="${tied ? "tied" : ""}" data-eval="${esc(r.eval_id)}"><td class="num">${rank}</td>
        <td>${tied ? `<span class="badge tie" title="tied within noise">≈ ${esc(r.tie_group)}</span>` : `<span class="badge">${esc(r.tie_group ?? "")}</span>`}</td>
        <td title="${esc(r.checkpoint)}">${esc(r.checkpoint_name)}${r.status === "partial" ? ' <span class="badge" title="some items failed">partial</span>' : ""}${kindBadge(r)}</td>
        <td>${esc(r.run_name)}</td><td class="num">${esc(r.step ?? "")}</td>${cells}${anyFail ? `<td class="num${r.failures ? " bad" : ""}">${esc(r.failures || 0)}</td>` : ""}</tr>`;
    }).join("");
    const fails = Object.entries(s.failures || {}).map(([eid, fs]) => {
      const r = s.rows.find((x) => x.eval_id === eid) || {};
      return `<details class="failures"><summary>${esc(r.checkpoint_name || eid)}: ${fs.length} failed item(s)</summary>
        <table class="data"><thead><tr><th>item</th><th>stage</th><th>reason</th><th>when</th></tr></thead><tbody>${fs.map((f) =>
          `<tr><td>${esc(f.item_id)}</td><td>${esc(f.stage)}</td><td>${esc(f.reason)}</td><td class="muted">${esc(f.created_at)}</td></tr>`).join("")}</tbody></table></details>`;
    }).join("");
    const charts = metrics.map((m) => {
      const rs = s.rows.filter((r) => r.scores[m.name]);
      return barChart({ title: m.name, labels: rs.map((r) => r.checkpoint_name), values: rs.map((r) => r.scores[m.name].value),
        lows: rs.map((r) => r.scores[m.name].ci_low), highs: rs.map((r) => r.scores[m.name].ci_high), higherIsBetter: m.higher_is_better });
    }).join("");
    const radar = radarChart({ title: "profile (outward = better, axes min–max scaled)",
      axes: metrics.map((m) => ({ name: m.name, higherIsBetter: m.higher_is_better })),
      series: s.rows.slice(0, PALETTE.length).map((r) => ({ name: r.checkpoint_name, values: metrics.map((m) => (r.scores[m.name] || {}).value) })) });
    $("#lb-body").innerHTML = `<div class="card"><table class="data" id="lb-table"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>
      <div class="note" id="lb-version-note">suite ${esc(s.suite)} version ${esc(s.suite_version ?? "(unversioned)")}${(s.other_versions || []).length ? `; other versions: ${esc(s.other_versions.join(", "))} (pick one above)` : ""}.</div>
      <div class="note">${esc(s.note || "")} ${rows.length} of ${s.rows.length} evaluation(s); ranked by ${esc(s.primary_metric || "the suite's primary metric")}.</div>${boardNotes(s)}${fails}</div>
      <h3>Per metric (bars: value, whiskers: confidence interval)</h3><div class="charts">${charts}${radar}</div>`;
    $$("#lb-table th").forEach((th) => th.addEventListener("click", () => {
      const k = th.dataset.key;
      sort.dir = sort.key === k ? -sort.dir : 1;
      sort.key = k;
      draw();
    }));
  };
  $("#lb-suite").addEventListener("change", () => { fillVersions(); draw(); });
  $("#lb-version").addEventListener("change", draw);
  $("#lb-filter").addEventListener("input", draw);
  draw();
}

// ---------------------------------------------------------------------------- sync player
// The player bar of a SyncGroup: ids are "<prefix>-play", "<prefix>-scrub", ... (Compare uses "sync").
function playerBar(prefix, note = "") {
  return `<div class="player" id="${prefix}-player"><button class="btn" id="${prefix}-play">▶ Play</button>
    <button class="btn secondary stepbtn" id="${prefix}-prev" title="previous frame (←)">◀▏</button>
    <button class="btn secondary stepbtn" id="${prefix}-next" title="next frame (→)">▕▶</button>
    <input type="range" id="${prefix}-scrub" min="0" max="1" step="0.001" value="0"><span class="time" id="${prefix}-time">0.00 s</span>
    <label title="playback speed">speed <select id="${prefix}-speed">${[0.1, 0.25, 0.5, 1, 2].map((v) => `<option value="${v}"${v === 1 ? " selected" : ""}>${v}×</option>`).join("")}</select></label>
    <label title="start again at the end"><input type="checkbox" id="${prefix}-loop"> loop</label>
    ${note ? `<span class="note" style="color:#b9c3dd">${esc(note)}</span>` : ""}</div>`;
}

// One clock drives every video of a group: play/pause/scrub/frame-step/speed act on all, and a
// frame loop pulls any video that drifts more than DRIFT seconds back onto the leader's time.
class SyncGroup {
  constructor(root, videos, { prefix = "sync", fps = null, onTime = null } = {}) {
    this.videos = videos;
    this.playing = false;
    this.fps = fps && fps > 0 ? fps : null;
    this.onTime = onTime;
    const get = (k) => $(`#${prefix}-${k}`, root);
    this.btn = get("play");
    this.range = get("scrub");
    this.label = get("time");
    this.speed = get("speed");
    this.loop = get("loop");
    this.DRIFT = 0.04;
    this.btn.onclick = () => (this.playing ? this.pause() : this.play());
    this.range.oninput = () => this.seek(+this.range.value);
    get("prev").onclick = () => this.step(-1);
    get("next").onclick = () => this.step(1);
    this.speed.onchange = () => this.setRate();
    for (const v of videos) {
      v.addEventListener("loadedmetadata", () => this.updateRange());
      v.addEventListener("seeked", () => this.show());
    }
    this.updateRange();
    this.tick = this.tick.bind(this);
  }
  get duration() { return Math.max(0, ...this.videos.map((v) => (Number.isFinite(v.duration) ? v.duration : 0))); }
  get leader() { return this.videos.reduce((a, v) => ((v.duration || 0) > (a.duration || 0) ? v : a), this.videos[0]); }
  get frames() { return this.fps ? Math.max(1, Math.round(this.duration * this.fps)) : 0; }
  frameOf(t) { return this.fps ? Math.min(this.frames - 1, Math.max(0, Math.floor(t * this.fps + 1e-3))) : 0; }
  updateRange() { this.range.max = this.duration.toFixed(3); this.show(); }
  show() {
    const t = this.videos.length ? this.leader.currentTime : 0;
    if (document.activeElement !== this.range) this.range.value = t;
    const fr = this.fps ? ` · frame ${this.frameOf(t) + 1} / ${this.frames}` : "";
    this.label.textContent = `${t.toFixed(2)} / ${this.duration.toFixed(2)} s${fr}`;
    if (this.onTime) this.onTime(t);
  }
  setRate() { for (const v of this.videos) v.playbackRate = +this.speed.value; }
  setAll(t) { for (const v of this.videos) v.currentTime = Math.min(t, Math.max(0, (v.duration || t) - 1e-3)); }
  async play() {
    if (!this.videos.length) return;
    let t = this.leader.currentTime;
    if (t >= this.duration - 0.05) t = 0;
    this.setAll(t);
    this.setRate();
    this.playing = true;
    this.btn.textContent = "❚❚ Pause";
    await Promise.all(this.videos.map((v) => v.play().catch(() => null)));
    requestAnimationFrame(this.tick);
  }
  pause() {
    this.playing = false;
    this.btn.textContent = "▶ Play";
    for (const v of this.videos) v.pause();
    if (this.videos.length) this.setAll(this.leader.currentTime);
    this.show();
  }
  seek(t) { this.setAll(t); this.show(); }
  // One frame back or forward (pauses): every video is put on the middle of that frame.
  step(d) {
    if (!this.videos.length) return;
    if (this.playing) this.pause();
    const fps = this.fps || 8;
    const f = Math.min(Math.max(0, this.frameOf(this.leader.currentTime) + d), Math.max(0, (this.frames || 1) - 1));
    this.seek((f + 0.5) / fps);
  }
  tick() {
    if (!this.playing) return;
    const lead = this.leader, t = lead.currentTime;
    for (const v of this.videos) {
      if (v === lead || v.seeking) continue;
      if (t < (v.duration || 0) && Math.abs(v.currentTime - t) > this.DRIFT) v.currentTime = t;
      if (t < (v.duration || 0) && v.paused && !lead.paused) v.play().catch(() => null);
    }
    this.show();
    if (lead.ended) {
      if (this.loop.checked) {
        this.setAll(0);
        Promise.all(this.videos.map((v) => v.play().catch(() => null))).then(() => requestAnimationFrame(this.tick));
        return;
      }
      this.pause();
      return;
    }
    requestAnimationFrame(this.tick);
  }
}

// ---------------------------------------------------------------------------- compare
async function renderCompare(el) {
  const lb = await load("leaderboard");
  const suites = (lb.suites || []).filter((s) => s.rows.length);
  if (!suites.length) { el.innerHTML = `<div class="card empty">No evaluations to compare yet.</div>`; return; }
  el.innerHTML = `<div class="card"><div class="controls">
      <label>Suite <select id="cmp-suite">${options(suites.map((s, i) => String(i)), "0", suites.map((s) => s.suite + (s.default === false ? ` v${s.suite_version}` : "") + (s.source ? ` (${s.source})` : "")))}</select></label>
      <label>Paired metric <select id="cmp-metric"></select></label>
      <label>Category <select id="cmp-cat"><option value="">all</option></select></label></div>
      <div class="checks" id="cmp-evals"></div>
      <div class="note">Pick two or more checkpoints; the first picked one is the baseline of the paired comparison. The address bar keeps the selection: share it.</div></div>
    <div id="cmp-paired"></div><div id="cmp-body"></div>`;
  let page = 0, data = null, phys = { items: {} }, physTimer = null, physToken = 0;
  const suiteSel = $("#cmp-suite");
  const want = hashParts().params;
  const wantSuite = suites.findIndex((s) => s.suite === want.get("suite"));
  if (wantSuite >= 0) suiteSel.value = String(wantSuite);
  let wantEvals = want.get("evals") ? want.get("evals").split(",") : null;
  const fillEvals = () => {
    const s = suites[+suiteSel.value];
    const extra = (r) => [r.run_name && !String(r.checkpoint_name).includes(r.run_name) ? r.run_name : "",
      r.step !== null && r.step !== undefined && !String(r.checkpoint_name).includes(String(r.step)) ? `step ${r.step}` : ""]
      .filter(Boolean).join(", ");
    const picked = (r, i) => (wantEvals ? wantEvals.includes(r.eval_id) : i < 2);
    $("#cmp-evals").innerHTML = s.rows.map((r, i) => `<label><input type="checkbox" value="${esc(r.eval_id)}"${picked(r, i) ? " checked" : ""}> ${esc(r.checkpoint_name)}
      ${extra(r) ? `<span class="muted">(${esc(extra(r))})</span>` : ""} <span class="badge">#${esc(r.rank)}</span></label>`).join("");
    $("#cmp-metric").innerHTML = options((s.metrics || []).map((m) => m.name), s.primary_metric);
    $$("#cmp-evals input").forEach((c) => c.addEventListener("change", refresh));
  };
  const chosen = () => {  // in the order given by the link, else the table's (rank) order
    const ids = $$("#cmp-evals input").filter((c) => c.checked).map((c) => c.value);
    return wantEvals ? ids.sort((a, b) => (wantEvals.indexOf(a) + 1 || 1e9) - (wantEvals.indexOf(b) + 1 || 1e9)) : ids;
  };
  const paired = async () => {
    const ids = chosen(), metric = $("#cmp-metric").value, s = suites[+suiteSel.value];
    const name = (id) => (s.rows.find((r) => r.eval_id === id) || {}).checkpoint_name || id;
    if (ids.length < 2 || !metric) { $("#cmp-paired").innerHTML = ""; return; }
    const rows = [];
    for (const b of ids.slice(1)) {
      const r = await load("paired", { source: s.source_id, a: ids[0], b, metric });
      if (r.error) { rows.push(`<tr><td>${esc(name(ids[0]))}</td><td>${esc(name(b))}</td><td colspan="5" class="muted">${esc(r.error)}</td></tr>`); continue; }
      const v = r.verdict || "none";  // eval's verdict (skyloom.eval.results.inference.verdict) and its words
      const verdict = r.verdict_label;
      rows.push(`<tr><td>${esc(name(ids[0]))}</td><td>${esc(name(b))}</td><td class="num">${fmt(r.diff)}</td>
        <td class="num">[${fmt(r.ci_low)}, ${fmt(r.ci_high)}]</td><td class="num">${r.p_value === null ? "–" : fmt(r.p_value)}</td><td class="num">${esc(r.n ?? "")}</td>
        <td class="verdict ${v === "a" || v === "b" ? "good" : "muted"}" data-kind="${esc(v)}" title="${esc(r.method || "")}">${esc(verdict)}</td></tr>`);
    }
    $("#cmp-paired").innerHTML = `<div class="card"><h3>Paired difference per prompt (B − A, same seeds): ${esc(metric)}</h3>
      <table class="data" id="cmp-paired-table"><thead><tr><th>A (baseline)</th><th>B</th><th>mean diff</th><th>CI</th><th>p</th><th>n</th><th>verdict</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
  };
  // Physics suites: the given frames, the simulator's continuation and a perturbed re-simulation
  // join each row, rendered server-side on first view (polled until ready).
  const physCell = (it, kind, title) => {
    const p = phys.items[it.item_id];
    if (!p) return "";
    const media = p[kind] ? `<video muted playsinline preload="auto" src="${esc(p[kind])}"></video>`
      : `<div class="novideo">${esc(p.status === "error" ? `cannot simulate: ${p.error}` : p.status === "queued" ? `simulation queued (#${(p.position ?? 0) + 1})` : "simulating…")}</div>`;
    return `<div class="vcell ref ref-${kind}">${media}<div class="label" title="${esc(title)}">${esc(title)}</div></div>`;
  };
  const physTable = (it) => {
    const p = phys.items[it.item_id];
    if (!p || p.status !== "done") return "";
    const cols = [["spatial_iou", "spatial IoU ↑"], ["spatiotemporal_iou", "spatiotemporal IoU ↑"], ["weighted_spatial_iou", "weighted spatial IoU ↑"], ["mse", "MSE ↓"]];
    const row = (name, nums, extra, cls = "") => `<tr class="${cls}"><td>${esc(name)}</td>${cols.map(([k]) => `<td class="num">${nums ? fmt(nums[k]) : "–"}</td>`).join("")}<td class="num">${extra}</td></tr>`;
    const rows = [row("perturbed re-simulation (physical variance)", p.variance, "–", "variance")].concat(data.evals.map((e) => {
      const sc = ((it.videos || {})[e.eval_id] || {}).scores || {};
      const extra = ["physics_iq", "physics_trajectory"].filter((k) => sc[k] !== undefined).map((k) => `${k} ${fmt(sc[k])}`).join(" · ") || "–";
      return row(e.label, (p.numbers || {})[e.eval_id], esc(extra));
    }));
    return `<table class="data physics-numbers"><thead><tr><th>vs the simulator (frames ${phys.cond_frames + 1}+)</th>${cols.map(([, l]) => `<th>${esc(l)}</th>`).join("")}<th>stored scores</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  };
  const draw = () => {
    if (groups.compare) groups.compare.pause();
    const cat = $("#cmp-cat").value;
    const items = data.items.filter((it) => !cat || it.category === cat);
    const pages = Math.max(1, Math.ceil(items.length / PAGE.compare));
    page = Math.min(page, pages - 1);
    const shown = items.slice(page * PAGE.compare, (page + 1) * PAGE.compare);
    const k = phys.cond_frames;
    const rows = shown.map((it) => {
      const refs = phys.items[it.item_id] ? physCell(it, "given", `given frames 1–${k}`) + physCell(it, "simulator", "simulator") +
        physCell(it, "perturbed", `perturbed re-sim (±${phys.perturb_scale})`) : "";
      const cells = data.evals.map((e) => {
        const v = (it.videos || {})[e.eval_id] || {};
        const media = v.url ? `<video muted playsinline preload="auto" src="${esc(v.url)}"></video>` : `<div class="novideo">${esc(v.note || "no video")}</div>`;
        const sc = Object.entries(v.scores || {}).map(([k, x]) => `${esc(k)} ${fmt(x)}`).join(" · ");
        return `<div class="vcell">${media}<div class="label" title="${esc(e.label)}">${esc(e.label)}</div><div class="scores">${sc || "no scores"}</div></div>`;
      }).join("");
      return `<div class="prompt-row" data-item="${esc(it.item_id)}"><div class="prompt"><b>${esc(it.item_id)}</b> ${it.category ? `<span class="badge">${esc(it.category)}</span>` : ""} ${esc(it.prompt || "")}
        ${it.seed !== null && it.seed !== undefined ? `<span class="muted">seed ${esc(it.seed)}</span>` : ""}</div><div class="videos">${refs}${cells}</div>${physTable(it)}</div>`;
    }).join("");
    $("#cmp-body").innerHTML = `${playerBar("sync", "one control for every video below")}
      ${rows || `<div class="empty">No items${cat ? " in this category" : ""}.</div>`}
      <div class="pager"><button class="btn secondary" id="cmp-prev"${page ? "" : " disabled"}>‹ prev</button>
        <span>page ${page + 1} / ${pages} (${items.length} prompts)</span>
        <button class="btn secondary" id="cmp-next"${page < pages - 1 ? "" : " disabled"}>next ›</button></div>`;
    groups.compare = new SyncGroup($("#cmp-body"), $$("#cmp-body video"), { prefix: "sync", fps: data.fps });
    $("#cmp-prev").onclick = () => { page--; draw(); };
    $("#cmp-next").onclick = () => { page++; draw(); };
  };
  const loadPhysics = async (s, ids, token) => {
    clearTimeout(physTimer);
    const r = await load("physics", { source: s.source_id, suite: s.suite, evals: ids.join(",") });
    if (token !== physToken) return;  // the selection changed meanwhile
    const before = JSON.stringify(phys);
    phys = r && r.items ? r : { items: {} };
    if (JSON.stringify(phys) !== before && !(groups.compare && groups.compare.playing)) draw();
    const pending = Object.values(phys.items).some((p) => p.status === "queued" || p.status === "running");
    if (pending && !STATIC) physTimer = setTimeout(() => loadPhysics(s, ids, token), 800);
  };
  const refresh = async () => {
    const ids = chosen(), s = suites[+suiteSel.value];
    wantEvals = ids;  // later changes keep this order; new checks go last
    const token = ++physToken;  // a later refresh (another box ticked meanwhile) supersedes this one
    clearTimeout(physTimer);
    if (currentView() === "compare")
      history.replaceState(null, "", `#compare?${new URLSearchParams({ suite: s.suite, evals: ids.join(",") })}`);
    if (!ids.length) {
      if (groups.compare) groups.compare.pause();
      $("#cmp-body").innerHTML = `<div class="empty">Pick at least one checkpoint.</div>`;
      $("#cmp-paired").innerHTML = "";
      return;
    }
    const got = await load("compare", { source: s.source_id, suite: s.suite, evals: ids.join(",") });
    if (token !== physToken) return;  // the selection changed while loading: the later refresh draws
    data = got;
    phys = { items: {} };
    const order = new Map(ids.map((id, i) => [id, i]));
    data.evals.sort((a, b) => order.get(a.eval_id) - order.get(b.eval_id));
    const cats = [...new Set(data.items.map((it) => it.category).filter(Boolean))].sort();
    const cur = $("#cmp-cat").value;
    $("#cmp-cat").innerHTML = `<option value="">all</option>` + options(cats, cur);
    page = 0;
    draw();
    await paired();
    if (token === physToken) await loadPhysics(s, ids, token);
  };
  suiteSel.addEventListener("change", () => { wantEvals = null; fillEvals(); refresh(); });
  $("#cmp-metric").addEventListener("change", paired);
  $("#cmp-cat").addEventListener("change", () => { page = 0; draw(); });
  fillEvals();
  await refresh();
}

// ---------------------------------------------------------------------------- training
async function renderTraining(el) {
  const data = await load("training");
  const runs = data.runs || [];
  if (!runs.length) { el.innerHTML = `<div class="card empty">No runs found.</div>`; return; }
  const keys = [];
  for (const r of runs) for (const [kind, ms] of Object.entries(r.series || {})) for (const m of Object.keys(ms)) {
    const k = `${kind}/${m}`;
    if (!keys.includes(k)) keys.push(k);
  }
  const rank = (k) => {
    const order = ["train/loss", "train/samples_per_s", "train/tokens_per_s", "train/lr", "train/grad_norm"];
    const i = order.indexOf(k);
    return i >= 0 ? i : k.startsWith("train/") ? 10 : k.startsWith("eval") ? 20 : 30;
  };
  keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const rows = runs.map((r, i) => {
    const loss = ((r.series.train || {}).loss || []).slice(-1)[0];
    return `<tr><td><label><input type="checkbox" class="tr-run" value="${i}" checked> ${esc(r.name)}</label></td><td class="muted">${esc(r.path)}</td>
      <td class="num">${r.checkpoints.length ? esc(r.checkpoints.join(", ")) : "<span class='muted'>none yet</span>"}</td>
      <td class="num">${loss ? fmt(loss[1]) + " @" + loss[0] : "–"}</td></tr>`;
  }).join("");
  el.innerHTML = `<div class="card"><table class="data"><thead><tr><th>run</th><th>path</th><th>checkpoints (steps)</th><th>last loss</th></tr></thead><tbody>${rows}</tbody></table>
    <div class="controls" style="margin-top:8px"><label><input type="checkbox" id="tr-log" checked> log scale for loss</label></div></div>
    <div class="charts" id="tr-charts"></div>`;
  const draw = () => {
    const on = $$(".tr-run").filter((c) => c.checked).map((c) => +c.value);
    $("#tr-charts").innerHTML = keys.length ? keys.map((k) => {
      const [kind, ...rest] = k.split("/"), m = rest.join("/");
      const series = on.map((i) => ({ name: runs[i].name, points: ((runs[i].series[kind] || {})[m]) || [], color: PALETTE[i % PALETTE.length] }))
        .filter((s) => s.points.length);
      return lineChart({ title: k, series, logY: $("#tr-log").checked && m === "loss" });
    }).join("") : `<div class="empty">No metrics logged yet (metrics.jsonl is empty or missing).</div>`;
  };
  $$(".tr-run").forEach((c) => c.addEventListener("change", draw));
  $("#tr-log").addEventListener("change", draw);
  draw();
}

// ---------------------------------------------------------------------------- corpus
async function renderCorpus(el) {
  const data = await load("corpus");
  const corpora = data.corpora || [];
  if (!corpora.length) { el.innerHTML = `<div class="card empty">No corpus configured (pass --corpus DIR).</div>`; return; }
  el.innerHTML = `<div class="controls"><label>Corpus <select id="corpus-select">${options(corpora.map((c, i) => String(i)), "0", corpora.map((c) => c.name))}</select></label></div><div id="corpus-body"></div>`;
  let page = 0;
  const show = () => {
    const c = corpora[+$("#corpus-select").value], s = c.summary;
    if (c.error) { $("#corpus-body").innerHTML = `<div class="card bad">Cannot read ${esc(c.path)}: ${esc(c.error)}</div>`; return; }
    const uniq = (f) => [...new Set(c.clips.map(f))].sort();
    $("#corpus-body").innerHTML = `<div id="clip-detail"></div><div class="card"><b>${esc(c.name)}</b> <span class="muted">${esc(c.path)}</span> — ${s.clips} clips, ${fmt(s.hours * 60, 1)} min, ${s.captioned} captioned, ${c.quarantined} quarantined
        ${c.truncated ? `<div class="note">Showing the first ${c.clips.length} clips; the charts cover all ${s.clips}.${STATIC ? "" : ` <button class="btn secondary" id="corpus-more">load ${Math.min(5000, s.clips - c.clips.length)} more</button>`}</div>` : ""}
        ${(c.quarantine || []).length ? `<details class="quarantine"><summary>quarantine (newest ${c.quarantine.length})</summary><table class="data">
          <thead><tr><th>stage</th><th>item</th><th>reason</th><th>when</th></tr></thead><tbody>${c.quarantine.slice().reverse().map((q) =>
            `<tr><td>${esc(q.stage)}</td><td>${esc(q.item)}</td><td>${esc(q.reason)}</td><td class="muted">${esc(q.time)}</td></tr>`).join("")}</tbody></table></details>` : ""}</div>
      <div class="charts">${histChart({ title: "duration (s)", edges: s.duration_s.edges, counts: s.duration_s.counts })}
        ${histChart({ title: "caption length (words)", edges: s.caption_words.edges, counts: s.caption_words.counts })}
        ${countChart({ title: "resolutions", counts: s.resolutions })}${countChart({ title: "licenses", counts: s.licenses })}
        ${countChart({ title: "source kind", counts: s.source_kinds })}</div>
      ${Object.keys(c.annotations || {}).length ? `<div class="card"><b>annotations</b> <span class="muted">(skyloom corpus annotate / dedup / filter; lowest and highest clips under each chart)</span></div>
      <div class="charts annotations">${Object.entries(c.annotations).map(([name, a]) => a.kind === "number"
        ? `<div>${histChart({ title: name, edges: a.hist.edges, counts: a.hist.counts })}<div class="note">lowest: ${esc(a.lowest.join(", "))}<br>highest: ${esc(a.highest.join(", "))}</div></div>`
        : a.kind === "label" ? countChart({ title: name, counts: a.counts }) : "").join("")}</div>` : ""}
      <div class="card controls" style="margin-top:12px">
        <label>Source <select id="corpus-source"><option value="">all</option>${options(uniq((x) => x.source_kind))}</select></label>
        <label>License <select id="corpus-license"><option value="">all</option>${options(uniq((x) => x.license_id))}</select></label>
        <label>Split <select id="corpus-split"><option value="">all</option>${options(uniq((x) => x.split))}</select></label>
        <label>Score <select id="corpus-qname"><option value="">–</option>${options(s.quality_names)}</select> ≥ <input id="corpus-qmin" type="number" step="any" style="width:80px"></label>
        <label>Search <input id="corpus-q" placeholder="id, caption, author…"></label>
        <span id="corpus-count" class="note"></span></div>
      <div class="clips" id="corpus-clips"></div><div class="pager" id="corpus-pager"></div>`;
    const filt = () => {
      const src = $("#corpus-source").value, lic = $("#corpus-license").value, sp = $("#corpus-split").value;
      const qn = $("#corpus-qname").value, qmin = parseFloat($("#corpus-qmin").value), q = $("#corpus-q").value.toLowerCase();
      return c.clips.filter((x) => (!src || x.source_kind === src) && (!lic || x.license_id === lic) && (!sp || x.split === sp)
        && (!qn || Number.isNaN(qmin) || (x.quality[qn] !== undefined && x.quality[qn] >= qmin))
        && (!q || `${x.id} ${x.author} ${x.attribution} ${x.captions.map((k) => k.text).join(" ")}`.toLowerCase().includes(q)));
    };
    const drawClips = () => {
      const clips = filt(), pages = Math.max(1, Math.ceil(clips.length / PAGE.corpus));
      page = Math.min(page, pages - 1);
      $("#corpus-count").textContent = `${clips.length} of ${c.clips.length} clips match`;
      $("#corpus-clips").innerHTML = clips.slice(page * PAGE.corpus, (page + 1) * PAGE.corpus).map((x) => {
        const media = x.url ? `<video controls muted loop preload="metadata" src="${esc(x.url)}"></video>` : `<div class="novideo">${esc(x.note || "clip file not available")}</div>`;
        const caps = x.captions.map((k) => `<div class="cap"><span class="badge">${esc(k.kind)}·${esc(k.captioner)}</span> ${esc(k.text)}</div>`);
        const q = Object.entries(x.quality).map(([k, v]) => `${esc(k)} ${fmt(v)}`).join(" · ");
        const src = !STATIC && /^https?:\/\//.test(x.source_url) ? `<a href="${esc(x.source_url)}" rel="noreferrer noopener" target="_blank">${esc(x.source_url)}</a>` : esc(x.source_url);
        return `<div class="clip" data-id="${esc(x.id)}" data-source="${esc(x.source_kind)}" data-license="${esc(x.license_id)}">${media}
          <div class="id">${esc(x.id)}${STATIC ? "" : ` <button class="btn secondary clip-inspect" data-id="${esc(x.id)}" title="${x.source_kind === "synthetic" ? "ground truth over the video: boxes, trajectories, segmentation, events, facts" : "provenance and license"}">inspect</button>`}</div><div><span class="badge">${esc(x.source_kind)}</span> <span class="badge">${esc(x.license_id)}</span> <span class="badge">${esc(x.split)}</span>
          <span class="muted">${x.width}×${x.height}, ${fmt(x.duration_s, 2)} s @ ${fmt(x.fps, 1)} fps</span></div>
          ${caps.slice(0, 2).join("")}${caps.length > 2 ? `<details><summary>${caps.length - 2} more caption(s)</summary>${caps.slice(2).join("")}</details>` : ""}
          ${caps.length ? "" : `<div class="cap muted">no caption yet</div>`}
          <div class="prov">by ${esc(x.author || "?")}${x.attribution ? " — " + esc(x.attribution) : ""}<br>${src}
          ${x.parent_id ? `<br>from ${esc(x.parent_id)}${x.shot ? ` [${fmt(x.shot[0], 2)}–${fmt(x.shot[1], 2)} s]` : ""}` : ""}</div>
          ${q ? `<div class="muted">${q}</div>` : ""}</div>`;
      }).join("") || `<div class="empty">No clip matches these filters.</div>`;
      $("#corpus-pager").innerHTML = pages > 1 ? `<button class="btn secondary" id="cp-prev"${page ? "" : " disabled"}>‹ prev</button> page ${page + 1} / ${pages} <button class="btn secondary" id="cp-next"${page < pages - 1 ? "" : " disabled"}>next ›</button>` : "";
      if (pages > 1) { $("#cp-prev").onclick = () => { page--; drawClips(); }; $("#cp-next").onclick = () => { page++; drawClips(); }; }
      $$(".clip-inspect").forEach((b) => b.addEventListener("click", () => {
        history.replaceState(null, "", `#corpus?${new URLSearchParams({ corpus: $("#corpus-select").value, clip: b.dataset.id })}`);
        openClip(+$("#corpus-select").value, b.dataset.id);
      }));
    };
    for (const id of ["corpus-source", "corpus-license", "corpus-split", "corpus-qname", "corpus-qmin", "corpus-q"])
      $("#" + id).addEventListener("input", () => { page = 0; drawClips(); });
    if ($("#corpus-more")) $("#corpus-more").onclick = async () => {  // the next rows, one api/corpus/clips page
      const more = await load("corpus/clips", { corpus: $("#corpus-select").value, offset: c.clips.length, limit: 5000 });
      c.clips = c.clips.concat(more.clips);
      c.truncated = c.clips.length < more.total;
      show();
    };
    drawClips();
  };
  $("#corpus-select").addEventListener("change", () => { page = 0; show(); });
  const want = hashParts().params;
  if (want.get("corpus") && corpora[+want.get("corpus")]) $("#corpus-select").value = want.get("corpus");
  show();
  if (want.get("clip") && !STATIC) await openClip(+$("#corpus-select").value, want.get("clip"));
}

// ---------------------------------------------------------------------------- clip inspector
// A synthetic clip with its ground truth drawn over it (boxes, trajectories, segmentation),
// collision events on a timeline and the facts its captions may state; any clip's provenance.
async function openClip(ci, id) {
  const box = $("#clip-detail");
  if (groups.corpus) groups.corpus.pause();
  box.innerHTML = `<div class="card empty">loading ${esc(id)}…</div>`;
  let d;
  try {
    d = await load("clip", { corpus: ci, id });
  } catch (e) {
    box.innerHTML = `<div class="card bad">${esc(e.message || e)}</div>`;
    return;
  }
  const g = d.gt, p = d.provenance;
  const nameOf = {};
  for (const o of (g ? g.objects : [])) nameOf[o.name] = `${o.colour} ${o.shape}`.trim() || o.name;
  const who = (n) => nameOf[n] || n;
  const rgb = (c) => `rgb(${c.join(",")})`;
  const link = (u) => (/^https?:\/\//.test(u || "") ? `<a href="${esc(u)}" rel="noreferrer noopener" target="_blank">${esc(u)}</a>` : esc(u || "–"));
  const provRows = [["license", `<b>${esc(p.license_id)}</b>${p.license_name ? ` <span class="muted">${esc(p.license_name)}</span>` : ""}`],
    ["author", esc(p.author || "–")], ["attribution", esc(p.attribution || "–")], ["source", link(p.source_url)],
    ["source page", link(p.source_page)], ["source sha256", `<code>${esc(p.source_sha256 || "–")}</code>`],
    ["clip sha256", `<code>${esc(p.sha256 || "–")}</code>`],
    ["parent clip", p.parent_id ? `${esc(p.parent_id)}${p.shot ? ` [${fmt(p.shot[0], 2)}–${fmt(p.shot[1], 2)} s]` : ""}` : "–"],
    ["added", esc(p.created_at || "–")]].concat(Object.entries(p.meta || {}).map(([k, v]) => [k, esc(v)]));
  const prov = `<h4>Provenance</h4><table class="data provenance"><tbody>${provRows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join("")}</tbody></table>`;
  let left = d.url ? `<div class="gt-stage" style="aspect-ratio:${d.width}/${d.height}"><video muted playsinline preload="auto" src="${esc(d.url)}"></video>${g ? `<canvas id="gt-canvas"></canvas>` : ""}</div>`
    : `<div class="novideo">clip file not available</div>`;
  left += playerBar("gt");
  let right = "";
  if (g) {
    left += `<div class="toggles"><label><input type="checkbox" id="gt-boxes" checked> boxes</label>
      <label><input type="checkbox" id="gt-traj" checked> trajectories</label>
      <label title="${d.segmentation ? "object masks from gt/<id>.npz" : "no segmentation stored"}"><input type="checkbox" id="gt-seg"${d.segmentation ? "" : " disabled"}> segmentation</label></div>`;
    const ev = g.events || [];
    const evText = (e) => `${who(e.a)} ↔ ${who(e.b)} ${e.kind}${e.speed !== null && e.speed !== undefined ? `, ${fmt(e.speed, 2)} m/s` : ""}`;
    const frames = [...new Set(ev.map((e) => e.frame))].sort((a, b) => a - b);  // one marker per frame
    left += `<div class="timeline" id="gt-timeline" title="collision events (click one to go to its frame)"><div class="tl-head" id="gt-head"></div>${frames.map((fr) =>
      `<button class="tl-event" data-frame="${fr}" style="left:${((fr + 0.5) / g.num_frames) * 100}%" title="frame ${fr + 1}: ${esc(ev.filter((e) => e.frame === fr).map(evText).join("; "))}"></button>`).join("")}</div>
      <div class="note">${ev.length ? `${ev.length} collision event(s) on ${frames.length} frame(s) of the timeline` : "no collision events"} · ${g.num_frames} frames at ${fmt(g.fps, 1)} fps · camera ${esc(g.camera || "?")}</div>
      <ol class="events">${ev.map((e) => `<li><button class="linklike ev-go" data-frame="${e.frame}">frame ${e.frame + 1}</button> ${esc(who(e.a))} ↔ ${esc(who(e.b))} <span class="muted">${esc(e.kind)}${e.speed !== null && e.speed !== undefined ? `, ${fmt(e.speed, 2)} m/s` : ""}</span></li>`).join("")}</ol>`;
    right += `<h4>Objects</h4><ul class="objects">${g.objects.map((o) => `<li data-name="${esc(o.name)}"><i class="swatch" style="background:${rgb(o.rgb)}"></i><i class="swatch outline" style="border-color:${rgb(o.seg_colour)}" title="overlay colour"></i>
      <b>${esc(nameOf[o.name])}</b> <span class="muted">${esc(o.name)} · ${esc([o.size, o.material].filter(Boolean).join(", "))}</span>
      ${o.motion_summary.length ? `<div>${esc(o.motion_summary.join(", "))}</div>` : ""}</li>`).join("")}</ul>`;
    const f = d.facts;
    if (f && !f.error) {
      right += `<h4>Facts a caption may state</h4><ul class="facts">${f.objects.map((o) => `<li><b>${esc(`${o.colour} ${o.shape}`)}</b> <span class="muted">(${esc([o.size, o.material].filter(Boolean).join(", "))})</span>:
        starts ${esc(o.start_height === "air" ? "in the air" : "on the floor")}${o.start ? `, ${esc(o.start)}` : ""}; ${esc(o.motions.join(" → ") || "no motion")}${o.direction ? `, moving ${esc(o.direction)}` : ""}${o.bounces ? `, ${o.bounces} bounce(s)` : ""}${o.collides_with.length ? `; collides with ${esc(o.collides_with.map(who).join(", "))}` : ""}</li>`).join("")}
        <li>camera: ${esc(f.camera)}</li></ul>`;
    } else if (f && f.error) right += `<div class="bad note">facts unavailable: ${esc(f.error)}</div>`;
    if ((d.caption_checks || []).length) {
      right += `<h4>Captions checked against the ground truth</h4>${d.caption_checks.map((k) => `<div class="cap-check"><span class="badge">${esc(k.kind)}·${esc(k.captioner)}</span>
        ${k.error ? `<span class="bad">${esc(k.error)}</span>` : `<span class="badge ${k.precision >= 0.999 ? "okb" : "warnb"}" title="stated facts that are true">precision ${fmt(k.precision, 2)}</span> <span class="badge" title="true facts that are stated">recall ${fmt(k.recall, 2)}</span>`}
        <div class="cap">${esc(k.text)}</div>
        ${(k.wrong || []).length ? `<div class="bad note">wrong: ${esc(k.wrong.join("; "))}</div>` : ""}
        ${(k.hallucinated || []).length ? `<div class="bad note">not in the scene: ${esc(k.hallucinated.join("; "))}</div>` : ""}
        ${(k.missing || []).length ? `<div class="note">not stated: ${esc(k.missing.join("; "))}</div>` : ""}</div>`).join("")}`;
    }
  } else {
    if (d.gt_error) right += `<div class="bad note">${esc(d.gt_error)}</div>`;
    right += (d.captions || []).map((k) => `<div class="cap"><span class="badge">${esc(k.kind)}·${esc(k.captioner)}</span> ${esc(k.text)}</div>`).join("");
  }
  right += prov;
  box.innerHTML = `<div class="card clip-detail" data-id="${esc(d.id)}"><div class="cd-head"><b>${esc(d.id)}</b> <span class="badge">${esc(d.source_kind)}</span> <span class="badge">${esc(p.license_id)}</span>
      <span class="muted">${d.width}×${d.height}, ${d.num_frames} frames @ ${fmt(d.fps, 1)} fps</span> <button class="btn secondary" id="cd-close">close</button></div>
    <div class="cd-body"><div class="cd-left">${left}</div><div class="cd-right">${right}</div></div></div>`;
  $("#cd-close").onclick = () => {
    if (groups.corpus) groups.corpus.pause();
    delete groups.corpus;
    box.innerHTML = "";
    history.replaceState(null, "", "#corpus");
  };
  const video = $(".gt-stage video", box), canvas = $("#gt-canvas", box);
  const on = (id) => { const x = $(`#${id}`, box); return !!(x && x.checked); };
  let seg = null;
  const draw = (t) => {
    if (!g || !canvas || !canvas.isConnected) return;  // a closed or replaced inspector draws nothing
    const cw = canvas.clientWidth, ch = canvas.clientHeight;
    if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
    const ctx = canvas.getContext("2d"), sx = cw / g.width, sy = ch / g.height;
    const f = Math.min(g.num_frames - 1, Math.max(0, Math.floor(t * g.fps + 1e-3)));
    ctx.clearRect(0, 0, cw, ch);
    canvas.dataset.frame = String(f);
    if (seg && on("gt-seg")) {
      const sg = d.segmentation, col = f % sg.cols, row = Math.floor(f / sg.cols);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(seg, col * sg.width, row * sg.height, sg.width, sg.height, 0, 0, cw, ch);
    }
    for (const o of g.objects) {
      const c = rgb(o.seg_colour);
      if (on("gt-traj")) {
        const pts = g.centres[o.name] || [];
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = c;
        for (const [upto, alpha, dash] of [[pts.length - 1, 0.35, [3, 3]], [f, 1, []]]) {
          ctx.globalAlpha = alpha;
          ctx.setLineDash(dash);
          ctx.beginPath();
          let started = false;
          for (let i = 0; i <= upto; i++) {
            const q = pts[i];
            if (!q) { started = false; continue; }
            if (!started) { ctx.moveTo(q[0] * sx, q[1] * sy); started = true; } else ctx.lineTo(q[0] * sx, q[1] * sy);
          }
          ctx.stroke();
        }
        ctx.globalAlpha = 1;
        ctx.setLineDash([]);
        const q = pts[f];
        if (q) { ctx.fillStyle = c; ctx.beginPath(); ctx.arc(q[0] * sx, q[1] * sy, 3, 0, 2 * Math.PI); ctx.fill(); }
      }
      const b = (g.boxes[o.name] || [])[f];
      if (b && on("gt-boxes")) {
        ctx.strokeStyle = c;
        ctx.lineWidth = 2;
        ctx.strokeRect(b[0] * sx, b[1] * sy, (b[2] - b[0]) * sx, (b[3] - b[1]) * sy);
        ctx.font = "11px DejaVu Sans, sans-serif";
        ctx.fillStyle = c;
        ctx.fillText(nameOf[o.name], b[0] * sx + 2, Math.max(10, b[1] * sy - 3));
      }
    }
    const head = $("#gt-head", box);
    if (head) head.style.left = `${((f + 0.5) / g.num_frames) * 100}%`;
    $$(".tl-event", box).forEach((m) => m.classList.toggle("now", +m.dataset.frame === f));
  };
  groups.corpus = new SyncGroup(box, video ? [video] : [], { prefix: "gt", fps: d.fps, onTime: draw });
  if (g) {
    for (const id of ["gt-boxes", "gt-traj", "gt-seg"]) $("#" + id).addEventListener("change", () => draw(video ? video.currentTime : 0));
    $$(".tl-event, .ev-go", box).forEach((b) => b.addEventListener("click", () => {
      groups.corpus.pause();
      groups.corpus.seek((+b.dataset.frame + 0.5) / g.fps);
    }));
    if (d.segmentation) {
      const img = new Image();
      img.onload = () => { seg = img; box.dataset.seg = "1"; draw(video ? video.currentTime : 0); };
      img.src = `api/segmentation?${new URLSearchParams({ corpus: ci, id: d.id })}`;
    }
    if (video) video.addEventListener("loadeddata", () => draw(video.currentTime));
    window.onresize = () => draw(video ? video.currentTime : 0);  // one handler: the open inspector's
  }
  box.scrollIntoView({ block: "start" });
}

// ---------------------------------------------------------------------------- prompt box
// Type a prompt (optionally a first frame), sample every checked checkpoint on the server (one job
// at a time, cached by checkpoint + prompt + seed + settings), and play the answers side by side.
async function renderPrompt(el) {
  const data = await load("checkpoints");
  const cks = data.checkpoints || [];
  if (!cks.length) { el.innerHTML = `<div class="card empty">No complete checkpoint under --runs yet: train one (skyloom train).</div>`; return; }
  const lastOfRun = new Map(cks.map((c) => [c.run, c.id]));
  const firstOfRun = new Map([...cks].reverse().map((c) => [c.run, c.id]));
  const defaults = new Set([...lastOfRun.values()].concat(lastOfRun.size === 1 ? [...firstOfRun.values()] : []));
  el.innerHTML = `<div class="card">
      <label class="block">Prompt <textarea id="pr-text" rows="2" placeholder="a red ball falls onto a grey floor and bounces"></textarea></label>
      <div class="controls">
        <label>Seed <input id="pr-seed" type="number" value="0" min="0" step="1" style="width:90px"></label>
        <label>Steps <input id="pr-steps" type="number" min="1" step="1" placeholder="default" style="width:80px"></label>
        <label>Guidance <input id="pr-guidance" type="number" min="0" step="any" placeholder="default" style="width:80px"></label>
        <label>Frames <input id="pr-frames" type="number" min="2" step="1" placeholder="default" style="width:80px"></label>
        <label title="optional: the first frame, for image-to-video">First frame <input id="pr-image" type="file" accept="image/*"></label>
        <button class="btn" id="pr-go">Generate</button></div>
      <div class="checks" id="pr-cks">${cks.map((c) => `<label><input type="checkbox" value="${esc(c.id)}"${defaults.has(c.id) ? " checked" : ""}> ${esc(c.id)}</label>`).join("")}</div>
      <div class="note">Every checked checkpoint answers on the server (${esc(data.device || "cpu")}), one job at a time; answers are cached by checkpoint, prompt, seed and settings. Ctrl+Enter generates.</div>
      <div id="pr-error" class="bad note"></div></div><div id="pr-out"></div>`;
  let jobs = [], timer = null, token = 0, shown = "";
  const draw = () => {
    const key = JSON.stringify(jobs.map((j) => [j.key, j.status, j.position, j.url]));
    if (key === shown) return;
    shown = key;
    if (groups.prompt) groups.prompt.pause();
    const cells = jobs.map((j) => {
      const media = j.status === "done" && j.url ? `<video muted playsinline preload="auto" src="${esc(j.url)}"></video>`
        : `<div class="novideo">${esc(j.status === "error" ? `failed: ${j.error}` : j.status === "queued" ? `queued (#${(j.position ?? 0) + 1})` : "sampling…")}</div>`;
      return `<div class="vcell gen" data-status="${esc(j.status)}" data-checkpoint="${esc(j.checkpoint)}">${media}<div class="label" title="${esc(j.checkpoint)}">${esc(j.checkpoint)}</div>
        <div class="scores">${j.status === "done" ? (j.seconds ? `${fmt(j.seconds, 1)} s` : "from the cache") : esc(j.status)}</div></div>`;
    }).join("");
    $("#pr-out").innerHTML = jobs.length ? `${playerBar("gen", "one control for every answer")}<div class="prompt-row"><div class="prompt">${esc($("#pr-text").value)}</div><div class="videos">${cells}</div></div>` : "";
    groups.prompt = new SyncGroup($("#pr-out"), $$("#pr-out video"), { prefix: "gen", fps: Math.max(0, ...jobs.map((j) => j.fps || 0)) || null });
  };
  const poll = async (t) => {
    if (t !== token) return;
    const pending = jobs.filter((j) => j.status === "queued" || j.status === "running");
    for (const j of pending) {
      try { Object.assign(j, await load("job", { key: j.key })); } catch (e) { Object.assign(j, { status: "error", error: e.message }); }
    }
    draw();
    if (jobs.some((j) => j.status === "queued" || j.status === "running")) timer = setTimeout(() => poll(t), 700);
  };
  const readImage = () => new Promise((resolve, reject) => {
    const f = $("#pr-image").files[0];
    if (!f) { resolve(null); return; }
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error(`cannot read ${f.name}`));
    r.readAsDataURL(f);
  });
  const go = async () => {
    $("#pr-error").textContent = "";
    const body = { prompt: $("#pr-text").value, seed: $("#pr-seed").value, steps: $("#pr-steps").value || null,
      guidance: $("#pr-guidance").value || null, num_frames: $("#pr-frames").value || null,
      checkpoints: $$("#pr-cks input").filter((c) => c.checked).map((c) => c.value) };
    try {
      body.image = await readImage();
      const r = await fetch("api/sample", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const out = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(out.detail || `HTTP ${r.status}`);
      clearTimeout(timer);
      token++;
      jobs = out.jobs;
      shown = "";
      draw();
      poll(token);
    } catch (e) {
      $("#pr-error").textContent = e.message || String(e);
    }
  };
  $("#pr-go").addEventListener("click", go);
  $("#pr-text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); go(); } });
}

// ---------------------------------------------------------------------------- shell
const VIEWS = { leaderboard: renderLeaderboard, compare: renderCompare, prompt: renderPrompt, training: renderTraining, corpus: renderCorpus };
const KEEP = new Set(["prompt"]);  // views with their own state: not re-rendered when the inputs change
const POLL_MS = 2000;

// Values of a view's inputs and selects (by id), so that a refresh keeps filters and choices.
function saveInputs(el) {
  return $$("input[id], select[id], textarea[id]", el).map((x) => [x.id, x.type === "checkbox" ? x.checked : x.value]);
}
function restoreInputs(el, saved) {
  for (const [id, v] of saved) {
    const x = document.getElementById(id);
    if (!x || !el.contains(x) || x.type === "file") continue;
    if (x.type === "checkbox" ? x.checked === v : x.value === v) continue;
    if (x.type === "checkbox") x.checked = v;
    else if (x.tagName !== "SELECT" || $$("option", x).some((o) => o.value === v)) x.value = v;
    else continue;
    x.dispatchEvent(new Event(x.tagName === "SELECT" || x.type === "checkbox" ? "change" : "input"));
  }
}

async function showView(name, { keepInputs = false } = {}) {
  if (!VIEWS[name]) name = "leaderboard";
  for (const [v, g] of Object.entries(groups)) if (v !== name && g.playing) g.pause();
  $$("#tabs button[data-view]").forEach((b) => b.classList.toggle("active", b.dataset.view === name));
  $$(".view").forEach((v) => v.classList.toggle("active", v.id === `view-${name}`));
  const el = $(`#view-${name}`);
  if (!rendered[name]) {
    rendered[name] = true;
    const saved = keepInputs ? saveInputs(el) : [];
    el.dataset.ready = "0";
    if (!keepInputs) el.innerHTML = `<div class="empty">loading…</div>`;
    try {
      await VIEWS[name](el);
      if (saved.length) restoreInputs(el, saved);
    } catch (e) {
      rendered[name] = false;
      el.innerHTML = `<div class="card bad">Could not render ${esc(name)}: ${esc(e.message || e)}</div>`;
    }
    el.dataset.ready = "1";
  }
}

// The hash holds the view and its selection: #compare?suite=smoke&evals=a,b, #corpus?clip=ID (shareable).
function hashParts() {
  const [view, query] = location.hash.slice(1).split("?");
  return { view, params: new URLSearchParams(query || "") };
}
function currentView() { const v = hashParts().view; return VIEWS[v] ? v : "leaderboard"; }

// Live refresh: poll a fingerprint of the runs, stores and corpora; when it changes, every view is
// re-rendered on its next showing and the current one at once (unless its videos are playing:
// then on a later poll, so that playback is never cut).
async function pollInputs(state) {
  try {
    const r = await fetch("api/stamp", { cache: "no-store" });
    if (!r.ok) return;
    const { stamp } = await r.json();
    if (state.stamp === null) { state.stamp = stamp; return; }
    if (stamp === state.stamp) return;
    const view = currentView();
    if (groups[view] && groups[view].playing) return;
    state.stamp = stamp;
    for (const k of Object.keys(rendered)) if (!KEEP.has(k)) delete rendered[k];
    $("#live").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (!KEEP.has(view)) await showView(view, { keepInputs: true });
  } catch (e) {
    $("#live").textContent = "server unreachable";
  }
}

async function main() {
  $$("#tabs button[data-view]").forEach((b) => b.addEventListener("click", () => { location.hash = b.dataset.view; }));
  if (STATIC) { $("#reload").remove(); $("#tabs button[data-view='prompt']").remove(); $("#live").remove(); }
  else $("#reload").addEventListener("click", () => { for (const k of Object.keys(rendered)) delete rendered[k]; showView(currentView()); });
  document.addEventListener("keydown", (e) => {  // space: play/pause; ← →: one frame back / forward
    if (/INPUT|SELECT|TEXTAREA|BUTTON/.test(e.target.tagName) && e.target.type !== "range" && e.target.type !== "checkbox") return;
    const g = groups[currentView()];
    if (!g) return;
    if (e.key === " ") { e.preventDefault(); g.playing ? g.pause() : g.play(); }
    else if (e.key === "ArrowLeft" || e.key === "ArrowRight") { e.preventDefault(); g.step(e.key === "ArrowLeft" ? -1 : 1); }
  });
  window.addEventListener("hashchange", () => {  // a followed link with a selection renders it afresh
    const { view, params } = hashParts();
    if (VIEWS[view] && [...params].length) delete rendered[view];
    showView(currentView());
  });
  try {
    const ov = await load("overview");
    $("#warnings").innerHTML = (ov.warnings || []).map((w) => `<div>${esc(w)}</div>`).join("");
    $("#footer").textContent = `${STATIC ? "static report generated" : "serving"} ${ov.generated_at || ""} · runs: ${(ov.runs || []).length} · corpora: ${(ov.corpora || []).length}${ov.note ? " · " + ov.note : ""}`;
  } catch (e) {
    $("#warnings").innerHTML = `<div>${esc(e.message || e)}</div>`;
  }
  await showView(currentView());
  if (!STATIC) {
    const state = { stamp: null };
    await pollInputs(state);
    setInterval(() => pollInputs(state), POLL_MS);
  }
}

main();
