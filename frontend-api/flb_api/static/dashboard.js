// FLB dashboard: reads the same JSON API as any explorer and renders it. No network beyond the API.
// Each chart's plotted values are also written to data attributes (data-points, data-rounds), so
// tests and scrapers can read exactly what is drawn.
"use strict";

const REFRESH_MS = 15000;
const state = { contract: null, fetchedAt: 0, charts: {} };
// ?charts=svg draws the built-in SVG charts even when Chart.js is available.
const FORCE_SVG = new URLSearchParams(window.location.search).get("charts") === "svg";

const $ = (id) => document.getElementById(id);
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

async function api(path) {
  const reply = await fetch(path, { headers: { Accept: "application/json" } });
  if (!reply.ok) throw new Error(`${path}: HTTP ${reply.status}`);
  return reply.json();
}

async function allPages(path, pageSize) {
  const items = [];
  const sep = path.includes("?") ? "&" : "?";
  for (let guard = 0; guard < 1000; guard += 1) {
    const page = await api(`${path}${sep}limit=${pageSize}&offset=${items.length}`);
    items.push(...page.data);
    if (items.length >= page.count || page.data.length === 0) break;
  }
  return items;
}

// --- formatting -----------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function shortHex(text, head = 6, tail = 4) {
  return text && text.length > head + tail + 1 ? `${text.slice(0, head)}…${text.slice(-tail)}` : text || "";
}

function formatAmount(raw, decimals, symbol) {
  const value = BigInt(raw || "0");
  const unit = 10n ** BigInt(decimals);
  const whole = value / unit;
  const cents = ((value % unit) * 100n) / unit;
  const text = `${whole.toLocaleString("en-US")}.${cents.toString().padStart(2, "0")}`;
  return symbol ? `${text} ${symbol}` : text;
}

const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
const eps = (x) => (x === null || x === undefined ? "∞" : x < 100 ? x.toFixed(2) : Math.round(x).toLocaleString("en-US"));

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const units = [["d", Math.floor(s / 86400)], ["h", Math.floor((s % 86400) / 3600)], ["m", Math.floor((s % 3600) / 60)], ["s", s % 60]];
  const first = units.findIndex(([, v]) => v > 0);
  if (first < 0) return "0s";
  const shown = units.slice(first, first + 3);
  while (shown.length > 1 && shown[shown.length - 1][1] === 0) shown.pop();
  return shown.map(([u, v]) => `${v}${u}`).join(" ");
}

function when(timestamp) {
  return new Date(timestamp * 1000).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

// --- charts ---------------------------------------------------------------------------------------
function recordRect(plot) {
  const r = plot.getBoundingClientRect();
  plot.dataset.rect = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height].map(Math.round).join(",");
}

function svgChart(plot, labels, series, { stacked = false, percent = false } = {}) {
  // Fallback when Chart.js is not installed: a plain SVG line or stacked bar chart.
  const W = plot.clientWidth || 600, H = plot.clientHeight || 260, L = 44, B = 24, T = 10, R = 10;
  const totals = labels.map((_, i) => (stacked ? series.reduce((a, s) => a + (s.data[i] || 0), 0) : Math.max(...series.map((s) => s.data[i] || 0))));
  const max = percent ? percentCeiling(series) : Math.max(1, ...totals);
  const x = (i) => L + ((W - L - R) * (i + 0.5)) / Math.max(1, labels.length);
  const y = (v) => H - B - ((H - B - T) * v) / max;
  const parts = [0, 0.5, 1].map((f) => `<line class="axis" x1="${L}" x2="${W - R}" y1="${y(f * max)}" y2="${y(f * max)}"/><text x="${L - 6}" y="${y(f * max) + 4}" text-anchor="end">${percent ? `${Math.round(f * max * 100)}%` : Math.round(f * max)}</text>`);
  labels.forEach((label, i) => parts.push(`<text x="${x(i)}" y="${H - 6}" text-anchor="middle">${label}</text>`));
  const band = ((W - L - R) / Math.max(1, labels.length)) * 0.5;
  if (stacked) {
    labels.forEach((_, i) => {
      let base = 0;
      for (const s of series) {
        const v = s.data[i] || 0;
        parts.push(`<rect x="${x(i) - band / 2}" y="${y(base + v)}" width="${band}" height="${y(base) - y(base + v)}" rx="3" fill="${s.color}"/>`);
        base += v;
      }
    });
  } else {
    for (const s of series) {
      const pts = s.data.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean);
      parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.5" ${s.dashed ? 'stroke-dasharray="5 4"' : ""} points="${pts.join(" ")}"/>`);
      pts.forEach((p) => { const [cx, cy] = p.split(","); parts.push(`<circle cx="${cx}" cy="${cy}" r="4" fill="${s.color}"/>`); });
    }
  }
  plot.innerHTML = `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">${parts.join("")}</svg>`;
}

function percentCeiling(series) {
  // Room above the highest point, in steps of 10%, never past 100%.
  const values = series.flatMap((s) => s.data).filter((v) => v !== null && v !== undefined);
  return Math.min(1, Math.ceil((Math.max(0, ...values) + 0.05) * 10) / 10);
}

function drawChart(key, plot, type, labels, series, options) {
  if (FORCE_SVG || typeof window.Chart !== "function") {
    svgChart(plot, labels, series, options);
    plot.dataset.renderer = "svg";
    return;
  }
  plot.dataset.renderer = "chartjs";
  const datasets = series.map((s) => ({
    label: s.label, data: s.data, borderColor: s.color, backgroundColor: s.color, borderDash: s.dashed ? [5, 4] : [],
    borderWidth: type === "line" ? 2.5 : 0, pointRadius: 4, tension: 0.25, borderRadius: 4, maxBarThickness: 42,
  }));
  const grid = { color: css("--line") };
  const ticks = { color: css("--muted") };
  const config = {
    type, data: { labels, datasets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { display: false }, tooltip: { callbacks: options.percent ? { label: (c) => `${c.dataset.label}: ${pct(c.parsed.y)}` } : {} } },
      scales: {
        x: { stacked: !!options.stacked, grid: { display: false }, ticks },
        y: { stacked: !!options.stacked, beginAtZero: true, grid, ticks: options.percent ? { ...ticks, callback: (v) => `${Math.round(v * 100)}%` } : { ...ticks, precision: 0 }, max: options.percent ? percentCeiling(series) : undefined },
      },
    },
  };
  if (state.charts[key]) state.charts[key].destroy();
  state.charts[key] = new window.Chart(plot.querySelector("canvas") || plot.appendChild(el("canvas")), config);
}

function renderCharts(rounds) {
  const done = rounds.filter((r) => r.status === "finalized");
  const labels = done.map((r) => `R${r.round}`);
  const after = done.map((r) => r.metric);
  const before = done.map((r) => (r.metrics && r.metrics.before ? r.metrics.before.accuracy : null));
  const accuracy = $("accuracy-figure");
  accuracy.dataset.rounds = done.map((r) => r.round).join(",");
  accuracy.dataset.points = after.join(",");
  accuracy.dataset.before = before.map((v) => (v === null ? "" : v)).join(",");
  drawChart("accuracy", $("accuracy-plot"), "line", labels, [
    { label: "after", data: after, color: css("--accent") },
    { label: "before", data: before, color: css("--before"), dashed: true },
  ], { percent: true });

  const all = rounds.filter((r) => r.status === "finalized" || r.submissions > 0);
  const accepted = all.map((r) => (r.accepted ?? 0));
  const rejected = all.map((r) => (r.rejected ?? 0));
  const pending = all.map((r) => (r.accepted === null ? r.submissions : 0));
  const participation = $("participation-figure");
  participation.dataset.rounds = all.map((r) => r.round).join(",");
  participation.dataset.points = all.map((r) => r.submissions).join(",");
  participation.dataset.accepted = accepted.join(",");
  participation.dataset.rejected = rejected.join(",");
  drawChart("participation", $("participation-plot"), "bar", all.map((r) => `R${r.round}`), [
    { label: "accepted", data: accepted, color: css("--accepted") },
    { label: "rejected", data: rejected, color: css("--rejected") },
    { label: "pending", data: pending, color: css("--before") },
  ], { stacked: true });
  recordRect($("accuracy-plot"));
  recordRect($("participation-plot"));
}

// --- panels ---------------------------------------------------------------------------------------
// Who may join and what backs the results: admission, bonds, the settlement's quorum and slashes.
function trustLine(c) {
  const a = c.admission;
  const bond = BigInt(a.registration_bond) > 0n ? `, bond ${formatAmount(a.registration_bond, c.token_decimals, "")} ${c.token_symbol}` : "";
  const parts = [`admission ${a.mode}${bond}`];
  const s = c.settlement;
  if (s) {
    const bonded = s.bonds.filter((b) => BigInt(b.amount) > 0n);
    parts.push(`settlement: quorum ${s.quorum}, final through round ${s.final_round}`,
      `${bonded.filter((b) => b.role === "verifier").length} bonded verifiers`,
      `${s.slashes.length} slash${s.slashes.length === 1 ? "" : "es"}`);
  } else {
    parts.push("rounds finalized by the oracle alone");
  }
  return parts.join(" · ");
}

// A finalized round's badge: its settlement state where a settlement decides rounds.
function roundBadge(r) {
  const s = r.settlement;
  if (!s) return el("span", { class: `badge ${r.status}` }, r.status);
  const label = s.state === "attested" ? `attested ${s.attestations}/${s.quorum}` : s.state;
  const title = s.challenger ? `challenged by ${s.challenger}` : s.window_end ? `challenge window ends ${when(s.window_end)}` : "claims pay this round";
  return el("span", { class: `badge ${s.state}`, "data-settlement": s.state, title }, label);
}

function renderContract(c, health) {
  state.contract = c;
  state.fetchedAt = Date.now() / 1000;
  $("contract-meta").replaceChildren(
    el("span", { class: "mono", title: c.address }, shortHex(c.address, 10, 8)), ` · chain ${c.chain_id}`,
    c.network ? ` · ${c.network}` : "", ` · round length ${duration(c.round_duration)}`,
  );
  $("trust-meta").textContent = trustLine(c);
  const pill = $("status-pill");
  const lagging = health.status !== "ok";
  pill.textContent = c.paused ? "contract paused" : lagging ? `index ${health.status}` : "live";
  pill.className = `pill ${c.paused ? "bad" : lagging ? "warn" : "ok"}`;
  $("current-round").textContent = `#${c.current_round}`;
  $("countdown").dataset.deadline = c.current_round_deadline;
  $("active-clients").textContent = c.active_clients;
  $("clients-sub").textContent = `${c.registered_clients} registered · ${c.finalized_rounds} rounds done`;
  $("rewards-allocated").textContent = formatAmount(c.rewards.allocated, c.token_decimals, "");
  $("rewards-sub").textContent = `${c.token_symbol} · ${formatAmount(c.rewards.claimed, c.token_decimals, "")} claimed of ${formatAmount(c.rewards.funded, c.token_decimals, "")} funded`;
  $("privacy-epsilon").textContent = `ε ${eps(c.epsilon)}`;
  $("footer-index").textContent = `indexed to block ${c.indexed_block}${health.lag_blocks ? ` (${health.lag_blocks} behind)` : ""} · FLB API ${health.version}`;
  tick();
}

function renderHeadline(rounds) {
  const done = rounds.filter((r) => r.status === "finalized");
  const last = done[done.length - 1];
  if (!last) return;
  $("latest-accuracy").textContent = pct(last.metric);
  const before = last.metrics && last.metrics.before ? last.metrics.before.accuracy : null;
  const delta = $("accuracy-delta");
  if (before !== null) {
    const d = (last.metric - before) * 100;
    delta.className = `sub ${d >= 0 ? "up" : "down"}`;
    delta.textContent = `${d >= 0 ? "▲" : "▼"} ${Math.abs(d).toFixed(1)} pts in round ${last.round}`;
  }
  const p = last.privacy;
  $("privacy-delta").textContent = p ? `δ ${p.delta} · ${p.server_noise ? `noise σ×${p.noise_multiplier}` : "no server noise"}` : "";
}

function tick() {
  const c = state.contract;
  if (!c) return;
  const now = c.chain_time + (Date.now() / 1000 - state.fetchedAt);
  const left = c.current_round_deadline - now;
  $("countdown").textContent = c.paused ? "paused by the operator" : left > 0 ? `closes in ${duration(left)}` : "closed · awaiting the oracle";
}

function renderLeaderboard(board, c) {
  const rows = board.data.map((e) => el("tr", { "data-client": e.client, "data-cumulative": e.cumulative_reward, "data-rank": e.rank },
    el("td", {}, el("span", { class: `rank r${e.rank}` }, e.rank)),
    el("td", {}, el("a", { href: `/clients/${e.client}`, class: "mono", title: e.client }, shortHex(e.client)),
      ...(e.banned ? [el("span", { class: "badge banned" }, "banned")] : [])),
    el("td", { class: "num" }, formatAmount(e.cumulative_reward, c.token_decimals, "")),
    el("td", { class: "num" }, formatAmount(e.claimed, c.token_decimals, "")),
    el("td", { class: "num" }, `${e.accepted}/${e.submissions}`),
    el("td", { class: "num" }, e.contribution_total.toFixed(4)),
  ));
  $("leaderboard-note").textContent = board.round ? `${c.token_symbol} · as of round ${board.round}` : "";
  if (rows.length) $("leaderboard").tBodies[0].replaceChildren(...rows);
}

function cidLink(href, cid) {
  return el("a", { href, class: "mono", title: cid }, shortHex(cid, 10, 6));
}

function renderRounds(rounds, c) {
  const rows = [...rounds].reverse().map((r) => el("tr", { "data-round": r.round },
    el("td", {}, `#${r.round}`),
    el("td", {}, roundBadge(r)),
    el("td", { class: "num" }, r.status === "finalized" ? pct(r.metric) : "–"),
    el("td", { class: "num" }, r.status === "finalized" ? eps(r.epsilon) : "–"),
    el("td", { class: "num" }, el("a", { href: `/rounds/${r.round}/updates`, title: "every update, its CID and the oracle's decision" },
      r.accepted === null ? `${r.submissions}` : `${r.accepted}✓ ${r.rejected}✗`)),
    el("td", { class: "muted" }, r.finalized_at ? when(r.finalized_at) : `due ${when(r.deadline)}`),
    el("td", {}, r.links.model ? cidLink(r.links.model, r.global_model_cid) : "–"),
    el("td", {}, r.links.report ? cidLink(r.links.report, r.report_cid) : "–"),
  ));
  rows.push(el("tr", { "data-round": 0 },
    el("td", {}, "#0"), el("td", {}, el("span", { class: "badge initial" }, "initial")),
    el("td", { class: "num" }, "–"), el("td", { class: "num" }, "–"), el("td", { class: "num" }, "–"),
    el("td", { class: "muted" }, "deployment"),
    el("td", {}, cidLink(`/models/${c.initial_model_cid}`, c.initial_model_cid)), el("td", {}, "–"),
  ));
  $("rounds-table").tBodies[0].replaceChildren(...rows);
}

async function refresh() {
  try {
    const [contract, health, board] = await Promise.all([api("/contract"), api("/health"), api("/leaderboard?limit=10")]);
    const rounds = await allPages("/rounds?order=asc", 100);
    renderContract(contract, health);
    renderHeadline(rounds);
    renderCharts(rounds);
    renderLeaderboard(board, contract);
    renderRounds(rounds, contract);
    document.body.dataset.ready = "1";
  } catch (err) {
    $("status-pill").textContent = "API unreachable";
    $("status-pill").className = "pill bad";
    document.body.dataset.error = String(err);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  refresh();
  setInterval(refresh, REFRESH_MS);
  setInterval(tick, 1000);
});
