// The dashboard: polls /api/status once a second and draws it. Read-only; no library.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const api = "api/status" + (token ? "?token=" + encodeURIComponent(token) : "");
const $ = (id) => document.getElementById(id);
const fmt = (x, digits = 4) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toFixed(digits);
const bytes = (n) => n >= 1e9 ? (n / 1e9).toFixed(2) + " GB" : n >= 1e6 ? (n / 1e6).toFixed(2) + " MB"
  : n >= 1e3 ? (n / 1e3).toFixed(1) + " kB" : n + " B";

function rows(table, data) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...data.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    return tr;
  }));
}

function chart(svg, series, lo, hi) {
  // series: [{cls, points: [[x, y], ...]}]; x = iteration, y in [lo, hi]
  const el = $(svg), W = 400, H = 160, P = 24;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const x0 = Math.min(...xs, 1), x1 = Math.max(...xs, x0 + 1);
  const X = (x) => P + (x - x0) / (x1 - x0) * (W - 2 * P), Y = (y) => H - P - (y - lo) / (hi - lo || 1) * (H - 2 * P);
  let out = `<text x="2" y="${Y(hi) + 4}">${fmt(hi, 2)}</text><text x="2" y="${Y(lo)}">${fmt(lo, 2)}</text>`
    + `<text x="${X(x0)}" y="${H - 6}">${x0}</text><text x="${X(x1) - 10}" y="${H - 6}">${x1}</text>`;
  for (const s of series) {
    if (s.points.length) out += `<polyline class="${s.cls}" points="${s.points.map((p) => X(p[0]) + "," + Y(p[1])).join(" ")}"/>`;
    for (const p of s.points) out += `<circle class="${s.cls}" r="2.5" cx="${X(p[0])}" cy="${Y(p[1])}"/>`;
  }
  series.forEach((s, i) => { if (s.label) out += `<text class="${s.cls}" x="${W - 60}" y="${14 + 12 * i}">${s.label}</text>`; });
  el.innerHTML = out;
}

function draw(s) {
  const job = s.job, now = s.now;
  $("fl-name").textContent = job.fl_name;
  $("iteration").textContent = now.iteration;
  $("iterations").textContent = job.fl_iteration_num;
  $("phase").textContent = now.phase;
  $("admitted").textContent = now.admitted;
  $("uploaded").textContent = now.uploaded;
  $("threshold").textContent = job.update_model_threshold;
  $("upload-bar").style.width = Math.min(100, 100 * now.uploaded / job.update_model_threshold) + "%";
  const done = s.iterations.length ? s.iterations[s.iterations.length - 1].iteration : 0;
  $("done").textContent = done;
  $("job-bar").style.width = Math.min(100, 100 * done / job.fl_iteration_num) + "%";
  const dev = s.devices.length ? s.devices[s.devices.length - 1] : null;
  $("device-iteration").textContent = dev ? dev.iteration : "–";
  $("device-count").textContent = dev ? dev.count : 0;
  $("accuracy-avg").textContent = fmt(dev && dev.accuracy_avg);
  $("accuracy-top5").textContent = fmt(dev && dev.accuracy_top5);
  $("accuracy-low5").textContent = fmt(dev && dev.accuracy_low5);
  $("loss-avg").textContent = fmt(dev && dev.loss_avg);
  const pts = (key) => s.devices.filter((d) => d[key] !== null).map((d) => [d.iteration, d[key]]);
  chart("accuracy-chart", [{cls: "avg", label: "AVG", points: pts("accuracy_avg")},
    {cls: "top5", label: "TOP5", points: pts("accuracy_top5")}, {cls: "low5", label: "LOW5", points: pts("accuracy_low5")}], 0, 1);
  const losses = pts("loss_avg");
  chart("loss-chart", [{cls: "avg", points: losses}], 0, Math.max(0.1, ...losses.map((p) => p[1])));
  const t = s.totals;
  $("bytes-in").textContent = bytes(t.bytes_in);
  $("bytes-out").textContent = bytes(t.bytes_out);
  $("late").textContent = t.late;
  $("store-errors").textContent = t.store_errors;
  rows("requests", Object.entries(t.requests).sort().map(([k, v]) => [k, v]));
  rows("refusals", Object.entries(t.refused).sort().map(([k, v]) => [k, v]));
  rows("job", Object.entries(job).map(([k, v]) => [k, v]));
  const byIt = Object.fromEntries(s.devices.map((d) => [d.iteration, d]));
  rows("timings", s.iterations.slice().reverse().map((r) => [r.iteration, r.valid ? "yes" : "no", r.admitted, r.uploaded,
    fmt(r.admission_seconds, 2), fmt(r.upload_seconds, 2), fmt(r.aggregation_seconds, 3), fmt(r.seconds, 2),
    fmt(byIt[r.iteration] && byIt[r.iteration].accuracy_avg), fmt(byIt[r.iteration] && byIt[r.iteration].loss_avg)]));
  rows("processes", Object.entries(s.processes).sort().map(([name, p]) => [name + (name === s.process ? " (this)" : ""),
    (p.urls || []).join(" "), p.admitted, p.uploaded, Object.values(p.requests || {}).reduce((a, b) => a + b, 0),
    new Date(p.seen_ms).toLocaleTimeString()]));
}

async function poll() {
  try {
    const r = await fetch(api, {cache: "no-store"});
    if (!r.ok) throw new Error(r.status + " " + r.statusText);
    const s = await r.json();
    draw(s);
    $("connection").textContent = "live · " + new Date().toLocaleTimeString();
    document.body.dataset.updated = String(Date.now());
  } catch (e) {
    $("connection").textContent = "no answer from the server (" + e.message + "); retrying";
  }
  setTimeout(poll, 1000);
}
poll();
