// skyloom dashboard charts: small functions that return inline SVG strings (no libraries, no network).
"use strict";

const PALETTE = ["#2f5fd0", "#d0452f", "#1b9e55", "#9b4fc9", "#d08a1f", "#1f9bb0", "#c9387e", "#6b7a1f", "#555"];

function esc(s) {
  return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return esc(String(v));  // a string where a number belongs: show it, inertly
  if (Math.abs(v) < 1e-12) v = 0;
  if (digits === undefined && Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (digits !== undefined) return v.toFixed(digits);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  if (a >= 100) return v.toFixed(1);
  return v.toFixed(a >= 10 ? 2 : 3);
}

// Tick label with as many decimals as the tick spacing needs (0.0009, 0.001, 0.0011 stay distinct).
function tickFmt(t, step) {
  if (Math.abs(t) < Math.abs(step) * 1e-9) return "0";
  const d = Math.max(0, Math.ceil(-Math.log10(Math.abs(step)) - 1e-9));
  if (Math.abs(t) >= 1e6) return t.toPrecision(Math.min(12, Math.max(3, Math.ceil(Math.log10(Math.abs(t) / step)) + 1)));
  return t.toFixed(Math.min(d, 12));
}

// A "nice" axis over [lo, hi]: ticks at 1, 2 or 5 x 10^k, the range widened outward to the first
// and last tick, so the axis always shows at least two labelled ticks that span the data (a
// constant series at 0.45 gets 0.40, 0.45, 0.50, never a lone "0").
function niceScale(lo, hi, n) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = 0; hi = 1; }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) { const d = Math.abs(lo) * 0.1 || 0.5; lo -= d; hi += d; }
  const raw = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9)) || raw;
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; a + i * step <= b + step * 1e-6; i++) ticks.push(+(a + i * step).toPrecision(12));
  return { ticks, step, lo: ticks[0], hi: ticks[ticks.length - 1] };
}
function niceTicks(lo, hi, n) { return niceScale(lo, hi, n).ticks; }

// Labels shortened to at most `max` characters, kept distinct: the middle is elided first
// (checkpoint names differ at the end: "vdit-tiny/…step-00000040"), then everything but the tail.
function fitLabels(labels, max) {
  const full = labels.map((l) => String(l));
  if (full.every((l) => l.length <= max)) return full;
  const cut = (l, head) => (l.length <= max ? l : l.slice(0, head) + "…" + l.slice(l.length - (max - 1 - head)));
  for (const head of [Math.floor((max - 1) * 0.4), Math.floor((max - 1) * 0.2), 0]) {
    const out = full.map((l) => cut(l, head));
    if (new Set(out).size === new Set(full).size) return out;
  }
  return full.map((l, i) => cut(`${i + 1}: ${l}`, Math.min(4, max - 2)));
}

const CHAR_W = 6.4;  // px per character of the 11px chart font (DejaVu Sans), for layout

// Horizontal bars with CI whiskers: one bar per label; labels get as much room as they need (up to
// half the chart), are shortened distinctly when longer, and show the full text on hover.
function barChart({ title, labels, values, lows, highs, higherIsBetter, width = 380 }) {
  const rowH = 22, right = 20, top = 28, bottom = 26;
  const longest = Math.max(4, ...labels.map((l) => String(l).length));
  const left = Math.round(Math.min(width * 0.5, Math.max(70, longest * CHAR_W + 12)));
  const shown = fitLabels(labels, Math.max(4, Math.floor((left - 10) / CHAR_W)));
  const h = top + bottom + rowH * labels.length;
  const all = values.concat(lows || [], highs || []).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
  if (!all.length) return `<div class="chart"><div class="empty">${esc(title)}: no values</div></div>`;
  const sc = niceScale(Math.min(0, ...all), Math.max(0, ...all), 4);
  const lo = sc.lo, hi = sc.hi;
  const x = (v) => left + ((v - lo) / (hi - lo)) * (width - left - right);
  let s = `<svg width="${width}" height="${h}" role="img" aria-label="${esc(title)}">`;
  s += `<text x="6" y="16" font-weight="bold">${esc(title)}${higherIsBetter === undefined || higherIsBetter === null ? "" : higherIsBetter ? " ↑" : " ↓"}</text>`;
  for (const t of sc.ticks) {
    s += `<line x1="${x(t)}" x2="${x(t)}" y1="${top - 4}" y2="${h - bottom}" stroke="#e6e9f0"/>`;
    s += `<text class="tick" x="${x(t)}" y="${h - bottom + 14}" text-anchor="middle">${esc(tickFmt(t, sc.step))}</text>`;
  }
  labels.forEach((lab, i) => {
    const y = top + i * rowH, v = values[i];
    s += `<text class="bar-label" x="${left - 6}" y="${y + 14}" text-anchor="end"><title>${esc(lab)}</title>${esc(shown[i])}</text>`;
    if (v === null || v === undefined || Number.isNaN(v)) return;
    const x0 = x(Math.min(0, v)), x1 = x(Math.max(0, v));
    s += `<rect x="${x0}" y="${y + 4}" width="${Math.max(1, x1 - x0)}" height="${rowH - 8}" fill="${PALETTE[i % PALETTE.length]}" opacity="0.8"><title>${esc(lab)}: ${esc(fmt(v))}</title></rect>`;
    if (lows && highs && lows[i] !== null && highs[i] !== null && lows[i] !== undefined && highs[i] !== undefined) {
      const yc = y + rowH / 2;
      s += `<line x1="${x(lows[i])}" x2="${x(highs[i])}" y1="${yc}" y2="${yc}" stroke="#111" stroke-width="1.3"/>`;
      s += `<line x1="${x(lows[i])}" x2="${x(lows[i])}" y1="${yc - 4}" y2="${yc + 4}" stroke="#111"/>`;
      s += `<line x1="${x(highs[i])}" x2="${x(highs[i])}" y1="${yc - 4}" y2="${yc + 4}" stroke="#111"/>`;
    }
  });
  return `<div class="chart">${s}</svg></div>`;
}

// Lines over steps, several series (runs) on one plot.
function lineChart({ title, series, width = 460, height = 250, logY = false, xLabel = "step" }) {
  const left = 58, right = 14, top = 26, bottom = 34;
  const pts = series.flatMap((sr) => sr.points).filter((p) => !logY || p[1] > 0);
  if (!pts.length) return `<div class="chart"><div class="empty">${esc(title)}: no data</div></div>`;
  const tf = (v) => (logY ? Math.log10(v) : v);
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  const ysc = niceScale(Math.min(...pts.map((p) => tf(p[1]))), Math.max(...pts.map((p) => tf(p[1]))), 4);
  const y0 = ysc.lo, y1 = ysc.hi;
  const X = (v) => left + ((v - x0) / (x1 - x0)) * (width - left - right);
  const Yt = (t) => top + (1 - (t - y0) / (y1 - y0)) * (height - top - bottom);
  const Y = (v) => Yt(tf(v));
  let s = `<svg width="${width}" height="${height}" role="img" aria-label="${esc(title)}">`;
  s += `<text x="6" y="16" font-weight="bold">${esc(title)}${logY ? " (log)" : ""}</text>`;
  for (const t of ysc.ticks) {
    const yy = Yt(t);
    s += `<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="#e6e9f0"/>`;
    s += `<text class="ytick" x="${left - 4}" y="${yy + 4}" text-anchor="end">${esc(logY ? fmt(Math.pow(10, t)) : tickFmt(t, ysc.step))}</text>`;
  }
  const xsc = niceScale(x0, x1, 5);
  for (const t of xsc.ticks) {
    if (t < x0 || t > x1) continue;
    s += `<text class="xtick" x="${X(t)}" y="${height - bottom + 14}" text-anchor="middle">${esc(tickFmt(t, xsc.step))}</text>`;
  }
  s += `<text x="${(left + width - right) / 2}" y="${height - 4}" text-anchor="middle" class="muted">${esc(xLabel)}</text>`;
  s += `<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="none" stroke="#c9cfdb"/>`;
  series.forEach((sr, i) => {
    const p = sr.points.filter((q) => !logY || q[1] > 0);
    if (!p.length) return;
    const c = sr.color || PALETTE[i % PALETTE.length];
    const d = p.map((q, j) => `${j ? "L" : "M"}${X(q[0]).toFixed(1)},${Y(q[1]).toFixed(1)}`).join("");
    s += `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.6"><title>${esc(sr.name)}</title></path>`;
    if (p.length <= 30) for (const q of p) s += `<circle cx="${X(q[0])}" cy="${Y(q[1])}" r="2.5" fill="${c}"><title>${esc(sr.name)} step ${q[0]}: ${esc(fmt(q[1]))}</title></circle>`;
  });
  s += "</svg>";
  const legend = series.map((sr, i) => `<span title="${esc(sr.name)}"><i style="background:${sr.color || PALETTE[i % PALETTE.length]}"></i>${esc(sr.name)}</span>`).join("");
  return `<div class="chart">${s}<div class="legend">${legend}</div></div>`;
}

// Histogram from numpy-style edges and counts.
function histChart({ title, edges, counts, width = 300, height = 180 }) {
  if (!counts || !counts.length) return `<div class="chart"><div class="empty">${esc(title)}: no data</div></div>`;
  const left = 36, right = 10, top = 24, bottom = 30, max = Math.max(1, ...counts);
  const bw = (width - left - right) / counts.length;
  let s = `<svg width="${width}" height="${height}" role="img" aria-label="${esc(title)}"><text x="6" y="15" font-weight="bold">${esc(title)}</text>`;
  counts.forEach((c, i) => {
    const bh = (c / max) * (height - top - bottom);
    s += `<rect x="${left + i * bw + 1}" y="${height - bottom - bh}" width="${Math.max(1, bw - 2)}" height="${bh}" fill="${PALETTE[0]}" opacity="0.8"><title>${esc(fmt(edges[i]))}–${esc(fmt(edges[i + 1]))}: ${c}</title></rect>`;
  });
  s += `<text x="${left - 4}" y="${top + 8}" text-anchor="end">${max}</text><text x="${left - 4}" y="${height - bottom}" text-anchor="end">0</text>`;
  s += `<text x="${left}" y="${height - bottom + 14}">${esc(fmt(edges[0]))}</text><text x="${width - right}" y="${height - bottom + 14}" text-anchor="end">${esc(fmt(edges[edges.length - 1]))}</text>`;
  return `<div class="chart">${s}</svg></div>`;
}

// Horizontal bars of category counts ({name: count}).
function countChart({ title, counts, width = 300 }) {
  const keys = Object.keys(counts || {});
  if (!keys.length) return `<div class="chart"><div class="empty">${esc(title)}: no data</div></div>`;
  return barChart({ title, labels: keys, values: keys.map((k) => counts[k]), width });
}

// Radar: one polygon per series over >= 3 axes; each axis scaled min–max across series and
// flipped for lower-is-better metrics, so that outward is always better.
function radarChart({ title, axes, series, size = 300 }) {
  if (axes.length < 3 || !series.length) return "";
  const side = 150;  // room for axis labels left and right of the plot
  const width = size + 2 * side, cx = width / 2, cy = size / 2 + 10, R = size / 2 - 40;
  const norm = axes.map((ax, j) => {
    const vals = series.map((s) => s.values[j]).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
    const lo = Math.min(...vals), hi = Math.max(...vals);
    return (v) => {
      if (v === null || v === undefined || Number.isNaN(v) || !vals.length) return 0;
      const f = hi > lo ? (v - lo) / (hi - lo) : 1;
      return 0.15 + 0.85 * (ax.higherIsBetter === false ? 1 - f : f);
    };
  });
  const pt = (j, r) => {
    const a = -Math.PI / 2 + (2 * Math.PI * j) / axes.length;
    return [cx + R * r * Math.cos(a), cy + R * r * Math.sin(a)];
  };
  let s = `<svg width="${width}" height="${size + 20}" role="img" aria-label="${esc(title)}"><text x="6" y="16" font-weight="bold">${esc(title)}</text>`;
  for (const r of [0.25, 0.5, 0.75, 1]) s += `<polygon points="${axes.map((_, j) => pt(j, r).join(",")).join(" ")}" fill="none" stroke="#e6e9f0"/>`;
  axes.forEach((ax, j) => {
    const [x, y] = pt(j, 1), [lx, ly] = pt(j, 1.1);
    const anchor = Math.abs(lx - cx) < 5 ? "middle" : lx > cx ? "start" : "end";
    const room = anchor === "middle" ? width - 8 : anchor === "start" ? width - lx - 4 : lx - 4;
    const full = `${ax.name}${ax.higherIsBetter === false ? " ↓" : ""}`;
    const shown = fitLabels([full], Math.max(4, Math.floor(room / CHAR_W)))[0];
    s += `<line x1="${cx}" y1="${cy}" x2="${x}" y2="${y}" stroke="#d5dae5"/>`;
    s += `<text class="radar-label" x="${lx}" y="${ly + 4}" text-anchor="${anchor}"><title>${esc(full)}</title>${esc(shown)}</text>`;
  });
  series.forEach((sr, i) => {
    const c = PALETTE[i % PALETTE.length];
    const pts = axes.map((_, j) => pt(j, norm[j](sr.values[j])).map((v) => v.toFixed(1)).join(",")).join(" ");
    s += `<polygon class="radar-series" points="${pts}" fill="${c}" fill-opacity="0.12" stroke="${c}" stroke-width="1.6"><title>${esc(sr.name)}</title></polygon>`;
  });
  const legend = series.map((sr, i) => `<span title="${esc(sr.name)}"><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(sr.name)}</span>`).join("");
  return `<div class="chart">${s}</svg><div class="legend">${legend}</div></div>`;
}
