// skyloom dashboard: four views over one data source. Live mode fetches api/<name>; the static
// report embeds the same payloads in #skyloom-data, so the same code renders both.
"use strict";

const EMBED = JSON.parse(document.getElementById("skyloom-data").textContent || "null");
const STATIC = EMBED !== null;
const PAGE = { compare: 6, corpus: 24 };
const rendered = {};
let activeGroup = null;  // the Compare view's player, paused when another view is shown
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
    if (name === "paired") {
      const r = (EMBED.paired || {})[`${params.source}|${params.a}|${params.b}|${params.metric}`];
      return r || { error: "this pair was not precomputed in the report" };
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
  el.innerHTML = `${warn}<div class="controls">
      <label>Suite <select id="lb-suite">${options(suites.map((s, i) => String(i)), "0", suites.map((s) => s.suite + (s.source ? ` (${s.source})` : "")))}</select></label>
      <label>Filter <input id="lb-filter" placeholder="checkpoint or run…"></label>
      <span class="note">Click a column to sort. Rows shaded alike with the same ≈ badge are tied within noise.</span>
    </div><div id="lb-body"></div>`;
  const sort = { key: "pos", dir: 1 };  // the server's order: ranked entries, calibration rows where their value puts them
  const draw = () => {
    const s = suites[+$("#lb-suite").value];
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
      return `<tr class="${tied ? "tied" : ""}" data-eval="${esc(r.eval_id)}"><td class="num">${esc(r.rank)}</td>
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
      <div class="note">${esc(s.note || "")} ${rows.length} of ${s.rows.length} evaluation(s); ranked by ${esc(s.primary_metric || "the suite's primary metric")}.</div>${boardNotes(s)}${fails}</div>
      <h3>Per metric (bars: value, whiskers: confidence interval)</h3><div class="charts">${charts}${radar}</div>`;
    $$("#lb-table th").forEach((th) => th.addEventListener("click", () => {
      const k = th.dataset.key;
      sort.dir = sort.key === k ? -sort.dir : 1;
      sort.key = k;
      draw();
    }));
  };
  $("#lb-suite").addEventListener("change", draw);
  $("#lb-filter").addEventListener("input", draw);
  draw();
}

// ---------------------------------------------------------------------------- sync player
// One clock drives every video of the Compare view: play/pause/scrub act on all, and a frame
// loop pulls any video that drifts more than DRIFT seconds back onto the leader's time.
class SyncGroup {
  constructor(root, videos) {
    this.videos = videos;
    this.playing = false;
    this.btn = $("#sync-play", root);
    this.range = $("#sync-scrub", root);
    this.label = $("#sync-time", root);
    this.DRIFT = 0.04;
    this.btn.onclick = () => (this.playing ? this.pause() : this.play());
    this.range.oninput = () => this.seek(+this.range.value);
    for (const v of videos) v.addEventListener("loadedmetadata", () => this.updateRange());
    this.updateRange();
    this.tick = this.tick.bind(this);
  }
  get duration() { return Math.max(0, ...this.videos.map((v) => (Number.isFinite(v.duration) ? v.duration : 0))); }
  get leader() { return this.videos.reduce((a, v) => ((v.duration || 0) > (a.duration || 0) ? v : a), this.videos[0]); }
  updateRange() { this.range.max = this.duration.toFixed(3); this.show(); }
  show() {
    const t = this.videos.length ? this.leader.currentTime : 0;
    if (document.activeElement !== this.range) this.range.value = t;
    this.label.textContent = `${t.toFixed(2)} / ${this.duration.toFixed(2)} s`;
  }
  setAll(t) { for (const v of this.videos) v.currentTime = Math.min(t, Math.max(0, (v.duration || t) - 1e-3)); }
  async play() {
    if (!this.videos.length) return;
    let t = this.leader.currentTime;
    if (t >= this.duration - 0.05) t = 0;
    this.setAll(t);
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
  tick() {
    if (!this.playing) return;
    const lead = this.leader, t = lead.currentTime;
    for (const v of this.videos) {
      if (v === lead || v.seeking) continue;
      if (t < (v.duration || 0) && Math.abs(v.currentTime - t) > this.DRIFT) v.currentTime = t;
      if (t < (v.duration || 0) && v.paused && !lead.paused) v.play().catch(() => null);
    }
    this.show();
    if (lead.ended) { this.pause(); return; }
    requestAnimationFrame(this.tick);
  }
}

// ---------------------------------------------------------------------------- compare
async function renderCompare(el) {
  const lb = await load("leaderboard");
  const suites = (lb.suites || []).filter((s) => s.rows.length);
  if (!suites.length) { el.innerHTML = `<div class="card empty">No evaluations to compare yet.</div>`; return; }
  el.innerHTML = `<div class="card"><div class="controls">
      <label>Suite <select id="cmp-suite">${options(suites.map((s, i) => String(i)), "0", suites.map((s) => s.suite + (s.source ? ` (${s.source})` : "")))}</select></label>
      <label>Paired metric <select id="cmp-metric"></select></label>
      <label>Category <select id="cmp-cat"><option value="">all</option></select></label></div>
      <div class="checks" id="cmp-evals"></div>
      <div class="note">Pick two or more checkpoints; the first picked one is the baseline of the paired comparison. The address bar keeps the selection: share it.</div></div>
    <div id="cmp-paired"></div><div id="cmp-body"></div>`;
  let page = 0, data = null, group = null;
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
      const verdict = r.better === "a" ? `${name(ids[0])} better` : r.better === "b" ? `${name(b)} better`
        : r.significant ? "different (direction unknown)" : "tie (within noise)";
      rows.push(`<tr><td>${esc(name(ids[0]))}</td><td>${esc(name(b))}</td><td class="num">${fmt(r.diff)}</td>
        <td class="num">[${fmt(r.ci_low)}, ${fmt(r.ci_high)}]</td><td class="num">${r.p_value === null ? "–" : fmt(r.p_value)}</td><td class="num">${esc(r.n ?? "")}</td>
        <td class="${r.better ? "good" : "muted"}" title="${esc(r.method || "")}">${esc(verdict)}</td></tr>`);
    }
    $("#cmp-paired").innerHTML = `<div class="card"><h3>Paired difference per prompt (B − A, same seeds): ${esc(metric)}</h3>
      <table class="data" id="cmp-paired-table"><thead><tr><th>A (baseline)</th><th>B</th><th>mean diff</th><th>CI</th><th>p</th><th>n</th><th>verdict</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
  };
  const draw = () => {
    if (group) group.pause();
    const cat = $("#cmp-cat").value;
    const items = data.items.filter((it) => !cat || it.category === cat);
    const pages = Math.max(1, Math.ceil(items.length / PAGE.compare));
    page = Math.min(page, pages - 1);
    const shown = items.slice(page * PAGE.compare, (page + 1) * PAGE.compare);
    const rows = shown.map((it) => {
      const cells = data.evals.map((e) => {
        const v = (it.videos || {})[e.eval_id] || {};
        const media = v.url ? `<video muted playsinline preload="auto" src="${esc(v.url)}"></video>` : `<div class="novideo">${esc(v.note || "no video")}</div>`;
        const sc = Object.entries(v.scores || {}).map(([k, x]) => `${esc(k)} ${fmt(x)}`).join(" · ");
        return `<div class="vcell">${media}<div class="label" title="${esc(e.label)}">${esc(e.label)}</div><div class="scores">${sc || "no scores"}</div></div>`;
      }).join("");
      return `<div class="prompt-row" data-item="${esc(it.item_id)}"><div class="prompt"><b>${esc(it.item_id)}</b> ${it.category ? `<span class="badge">${esc(it.category)}</span>` : ""} ${esc(it.prompt || "")}
        ${it.seed !== null && it.seed !== undefined ? `<span class="muted">seed ${esc(it.seed)}</span>` : ""}</div><div class="videos">${cells}</div></div>`;
    }).join("");
    $("#cmp-body").innerHTML = `<div class="player"><button class="btn" id="sync-play">▶ Play</button>
        <input type="range" id="sync-scrub" min="0" max="1" step="0.01" value="0"><span class="time" id="sync-time">0.00 s</span>
        <span class="note" style="color:#b9c3dd">one control for every video below</span></div>
      ${rows || `<div class="empty">No items${cat ? " in this category" : ""}.</div>`}
      <div class="pager"><button class="btn secondary" id="cmp-prev"${page ? "" : " disabled"}>‹ prev</button>
        <span>page ${page + 1} / ${pages} (${items.length} prompts)</span>
        <button class="btn secondary" id="cmp-next"${page < pages - 1 ? "" : " disabled"}>next ›</button></div>`;
    group = activeGroup = new SyncGroup($("#cmp-body"), $$("#cmp-body video"));
    $("#cmp-prev").onclick = () => { page--; draw(); };
    $("#cmp-next").onclick = () => { page++; draw(); };
  };
  const refresh = async () => {
    const ids = chosen(), s = suites[+suiteSel.value];
    wantEvals = ids;  // later changes keep this order; new checks go last
    if (currentView() === "compare")
      history.replaceState(null, "", `#compare?${new URLSearchParams({ suite: s.suite, evals: ids.join(",") })}`);
    if (!ids.length) {
      if (group) group.pause();
      $("#cmp-body").innerHTML = `<div class="empty">Pick at least one checkpoint.</div>`;
      $("#cmp-paired").innerHTML = "";
      return;
    }
    data = await load("compare", { source: s.source_id, suite: s.suite, evals: ids.join(",") });
    const order = new Map(ids.map((id, i) => [id, i]));
    data.evals.sort((a, b) => order.get(a.eval_id) - order.get(b.eval_id));
    const cats = [...new Set(data.items.map((it) => it.category).filter(Boolean))].sort();
    const cur = $("#cmp-cat").value;
    $("#cmp-cat").innerHTML = `<option value="">all</option>` + options(cats, cur);
    page = 0;
    draw();
    await paired();
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
    $("#corpus-body").innerHTML = `<div class="card"><b>${esc(c.name)}</b> <span class="muted">${esc(c.path)}</span> — ${s.clips} clips, ${fmt(s.hours * 60, 1)} min, ${s.captioned} captioned, ${c.quarantined} quarantined
        ${c.truncated ? `<div class="note">Showing the first ${c.clips.length} clips; the charts cover all ${s.clips}.</div>` : ""}
        ${(c.quarantine || []).length ? `<details class="quarantine"><summary>quarantine (newest ${c.quarantine.length})</summary><table class="data">
          <thead><tr><th>stage</th><th>item</th><th>reason</th><th>when</th></tr></thead><tbody>${c.quarantine.slice().reverse().map((q) =>
            `<tr><td>${esc(q.stage)}</td><td>${esc(q.item)}</td><td>${esc(q.reason)}</td><td class="muted">${esc(q.time)}</td></tr>`).join("")}</tbody></table></details>` : ""}</div>
      <div class="charts">${histChart({ title: "duration (s)", edges: s.duration_s.edges, counts: s.duration_s.counts })}
        ${histChart({ title: "caption length (words)", edges: s.caption_words.edges, counts: s.caption_words.counts })}
        ${countChart({ title: "resolutions", counts: s.resolutions })}${countChart({ title: "licenses", counts: s.licenses })}
        ${countChart({ title: "source kind", counts: s.source_kinds })}</div>
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
          <div class="id">${esc(x.id)}</div><div><span class="badge">${esc(x.source_kind)}</span> <span class="badge">${esc(x.license_id)}</span> <span class="badge">${esc(x.split)}</span>
          <span class="muted">${x.width}×${x.height}, ${fmt(x.duration_s, 2)} s @ ${fmt(x.fps, 1)} fps</span></div>
          ${caps.slice(0, 2).join("")}${caps.length > 2 ? `<details><summary>${caps.length - 2} more caption(s)</summary>${caps.slice(2).join("")}</details>` : ""}
          ${caps.length ? "" : `<div class="cap muted">no caption yet</div>`}
          <div class="prov">by ${esc(x.author || "?")}${x.attribution ? " — " + esc(x.attribution) : ""}<br>${src}
          ${x.parent_id ? `<br>from ${esc(x.parent_id)}${x.shot ? ` [${fmt(x.shot[0], 2)}–${fmt(x.shot[1], 2)} s]` : ""}` : ""}</div>
          ${q ? `<div class="muted">${q}</div>` : ""}</div>`;
      }).join("") || `<div class="empty">No clip matches these filters.</div>`;
      $("#corpus-pager").innerHTML = pages > 1 ? `<button class="btn secondary" id="cp-prev"${page ? "" : " disabled"}>‹ prev</button> page ${page + 1} / ${pages} <button class="btn secondary" id="cp-next"${page < pages - 1 ? "" : " disabled"}>next ›</button>` : "";
      if (pages > 1) { $("#cp-prev").onclick = () => { page--; drawClips(); }; $("#cp-next").onclick = () => { page++; drawClips(); }; }
    };
    for (const id of ["corpus-source", "corpus-license", "corpus-split", "corpus-qname", "corpus-qmin", "corpus-q"])
      $("#" + id).addEventListener("input", () => { page = 0; drawClips(); });
    drawClips();
  };
  $("#corpus-select").addEventListener("change", () => { page = 0; show(); });
  show();
}

// ---------------------------------------------------------------------------- shell
const VIEWS = { leaderboard: renderLeaderboard, compare: renderCompare, training: renderTraining, corpus: renderCorpus };

async function showView(name) {
  if (!VIEWS[name]) name = "leaderboard";
  if (activeGroup && name !== "compare" && activeGroup.playing) activeGroup.pause();
  $$("#tabs button[data-view]").forEach((b) => b.classList.toggle("active", b.dataset.view === name));
  $$(".view").forEach((v) => v.classList.toggle("active", v.id === `view-${name}`));
  const el = $(`#view-${name}`);
  if (!rendered[name]) {
    rendered[name] = true;
    el.dataset.ready = "0";
    el.innerHTML = `<div class="empty">loading…</div>`;
    try {
      await VIEWS[name](el);
    } catch (e) {
      rendered[name] = false;
      el.innerHTML = `<div class="card bad">Could not render ${esc(name)}: ${esc(e.message || e)}</div>`;
    }
    el.dataset.ready = "1";
  }
}

// The hash holds the view and, for Compare, the selection: #compare?suite=smoke&evals=a,b (shareable).
function hashParts() {
  const [view, query] = location.hash.slice(1).split("?");
  return { view, params: new URLSearchParams(query || "") };
}
function currentView() { const v = hashParts().view; return VIEWS[v] ? v : "leaderboard"; }

async function main() {
  $$("#tabs button[data-view]").forEach((b) => b.addEventListener("click", () => { location.hash = b.dataset.view; }));
  if (STATIC) $("#reload").remove();
  else $("#reload").addEventListener("click", () => { for (const k of Object.keys(rendered)) delete rendered[k]; showView(currentView()); });
  document.addEventListener("keydown", (e) => {  // space: play/pause the compare view
    if (e.key !== " " || currentView() !== "compare" || /INPUT|SELECT|TEXTAREA|BUTTON/.test(e.target.tagName)) return;
    const b = $("#sync-play");
    if (b) { e.preventDefault(); b.click(); }
  });
  window.addEventListener("hashchange", () => showView(currentView()));
  try {
    const ov = await load("overview");
    $("#warnings").innerHTML = (ov.warnings || []).map((w) => `<div>${esc(w)}</div>`).join("");
    $("#footer").textContent = `${STATIC ? "static report generated" : "serving"} ${ov.generated_at || ""} · runs: ${(ov.runs || []).length} · corpora: ${(ov.corpora || []).length}${ov.note ? " · " + ov.note : ""}`;
  } catch (e) {
    $("#warnings").innerHTML = `<div>${esc(e.message || e)}</div>`;
  }
  await showView(currentView());
}

main();
