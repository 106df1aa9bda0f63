// The on-call dashboard: polls the admin API every 2 s (stats, latest records); a click on a
// record shows it in full. No framework and no build step; charts are plain SVG.
"use strict";
(function () {
  const POLL_MS = 2000;
  let timer = null;
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("gatewayAdminToken") || "";
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    token = fromHash;
    sessionStorage.setItem("gatewayAdminToken", token);
    history.replaceState(null, "", location.pathname);
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token } });
    if (response.status === 401) { showLogin("That token was refused."); throw new Error("unauthorized"); }
    if (!response.ok) throw new Error(path + " answered " + response.status);
    return response.json();
  }

  function showLogin(message) {
    if (timer !== null) { clearInterval(timer); timer = null; }
    $("main").hidden = true;
    $("login").hidden = false;
    $("status").textContent = message || "admin token needed";
  }

  function text(el, value) { el.textContent = value; return el; }
  function cell(row, value, cls) { const td = text(document.createElement("td"), value); if (cls) td.className = cls; row.appendChild(td); }
  function fmt(n, digits) { return n === null || n === undefined ? "–" : Number(n).toFixed(digits); }

  function line(svg, values, cls, max) {
    const w = 600, h = 130, n = values.length;
    if (n < 2) return;
    const pts = values.map((v, i) => (i * w / (n - 1)).toFixed(1) + "," + (h - (v || 0) / max * (h - 12)).toFixed(1));
    const path = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    path.setAttribute("points", pts.join(" "));
    path.setAttribute("class", cls);
    svg.appendChild(path);
  }

  function chart(id, series) {
    const svg = $(id);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const all = series.flatMap((s) => s.values.map((v) => v || 0));
    const max = Math.max(1e-9, ...all);
    const axis = document.createElementNS("http://www.w3.org/2000/svg", "line");
    axis.setAttribute("x1", 0); axis.setAttribute("x2", 600); axis.setAttribute("y1", 130); axis.setAttribute("y2", 130);
    axis.setAttribute("class", "axis");
    svg.appendChild(axis);
    const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
    label.setAttribute("x", 2); label.setAttribute("y", 10);
    label.textContent = "max " + max.toFixed(max < 10 ? 2 : 0);
    svg.appendChild(label);
    series.forEach((s) => line(svg, s.values, s.cls, max));
  }

  function renderStats(stats) {
    const bucket = stats.bucket_seconds || 1;
    text($("t-requests"), stats.requests);
    text($("t-rate"), fmt(stats.requests / stats.since_seconds, 2));
    text($("t-errors"), fmt(stats.error_rate * 100, 1) + "%");
    text($("t-client-errors"), fmt(stats.client_error_rate * 100, 1) + "%");
    const l = stats.latency_ms;
    text($("t-latency"), fmt(l.p50, 0) + " / " + fmt(l.p95, 0) + " / " + fmt(l.p99, 0));
    text($("t-tokens"), stats.tokens.total);
    text($("t-cost"), usd(stats.cost.total));
    const s = stats.series || [];
    chart("chart-rate", [{ cls: "rate", values: s.map((b) => b.requests / bucket) }]);
    chart("chart-errors", [{ cls: "errors", values: s.map((b) => b.error_rate * 100) }]);
    chart("chart-latency", ["p50", "p95", "p99"].map((p) => ({ cls: p, values: s.map((b) => b.latency_ms[p]) })));
    chart("chart-cost", [{ cls: "cost", values: s.map((b) => b.cost.total) }]);
    renderAccounts(stats.by_account);
    const tokens = $("tokens");
    tokens.replaceChildren();
    const entries = Object.entries(stats.tokens_by_account);
    const top = Math.max(1, ...entries.map((e) => e[1]));
    entries.sort((a, b) => b[1] - a[1]).forEach(([account, n]) => {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.appendChild(text(document.createElement("span"), account));
      const fill = document.createElement("i");
      fill.style.width = Math.max(2, n / top * 60) + "%";
      bar.appendChild(fill);
      bar.appendChild(text(document.createElement("b"), n));
      tokens.appendChild(bar);
    });
  }

  function usd(n) { return n < 0.01 && n > 0 ? "$" + n.toPrecision(2) : "$" + n.toFixed(2); }

  // One row per account (a scoped admin token's stats hold its own account only).
  function renderAccounts(byAccount) {
    const body = $("accounts");
    body.replaceChildren();
    Object.entries(byAccount).forEach(([account, t]) => {
      const row = document.createElement("tr");
      row.dataset.account = account;
      cell(row, account);
      cell(row, t.requests);
      cell(row, fmt(t.error_rate * 100, 1) + "%");
      cell(row, fmt(t.latency_ms.p50, 0));
      cell(row, fmt(t.latency_ms.p95, 0));
      cell(row, t.tokens.total);
      cell(row, usd(t.cost.total));
      body.appendChild(row);
    });
  }

  function renderRecords(records) {
    const rows = $("rows");
    rows.replaceChildren();
    records.forEach((r) => {
      const row = document.createElement("tr");
      row.dataset.requestId = r.request_id;
      cell(row, r.time.slice(11, 23));
      cell(row, r.status, "s" + String(r.status)[0]);
      cell(row, r.outcome);
      cell(row, (r.account || "-") + "/" + (r.client || "-"));
      cell(row, r.method + " " + r.path);
      cell(row, r.model.answered || r.model.requested || "-");
      cell(row, fmt(r.latency_ms.total, 1));
      cell(row, r.usage ? r.usage.total_tokens : "-");
      cell(row, r.request_id);
      row.addEventListener("click", () => showDetail(r.request_id));
      rows.appendChild(row);
    });
  }

  async function showDetail(requestId) {
    const record = await api("/admin/journal/" + encodeURIComponent(requestId));
    text($("detail-title"), requestId);
    text($("detail-body"), JSON.stringify(record, null, 2));
    $("detail").hidden = false;
  }

  function recordsQuery() {
    const params = new URLSearchParams({ limit: "50" });
    new FormData($("filters")).forEach((value, key) => { if (value) params.set(key, value); });
    return "/admin/journal?" + params.toString();
  }

  async function refresh() {
    try {
      const windowValue = $("window").value;
      const bucket = { "5m": "10s", "15m": "30s", "1h": "2m" }[windowValue];
      const [stats, page] = await Promise.all([
        api("/admin/stats?since=" + windowValue + "&bucket=" + bucket),
        api(recordsQuery()),
      ]);
      renderStats(stats);
      renderRecords(page.records);
      $("status").className = "status live";
      text($("status"), "live · updated " + new Date().toLocaleTimeString());
    } catch (err) {
      if (String(err.message) !== "unauthorized") {
        $("status").className = "status down";
        text($("status"), "not updating: " + err.message);
      }
    }
  }

  function start() {
    $("login").hidden = true;
    $("main").hidden = false;
    refresh();
    if (timer === null) timer = setInterval(refresh, POLL_MS);
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("gatewayAdminToken", token);
    start();
  });
  $("filters").addEventListener("input", refresh);
  $("window").addEventListener("change", refresh);
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
  if (token) start(); else showLogin();
})();
