// The dashboard: plain JavaScript over the worker's JSON API and live stream (no build step).
// Every value from the server is written with textContent, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat("en-US");
  const pct = (x) => (x * 100).toFixed(1) + "%";
  const LEGACY = new Set(["TLS1.0", "TLS1.1", "SSL3"]);
  // Okabe–Ito: distinguishable with the common colour-vision deficiencies.
  const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                     "#F0E442", "#000000"];
  const TLS_COLOURS = { "TLS1.3": "#009E73", "TLS1.2": "#0072B2", "TLS1.1": "#E69F00",
                        "TLS1.0": "#D55E00", "SSL3": "#CC79A7", "none": "#000000",
                        "unknown": "#999999" };
  const TLS_ORDER = ["TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", "SSL3", "none", "unknown"];
  const VIEWS = ["overview", "report", "remediation", "failures", "alerts"];

  // ---- state, mirrored in the URL so a view can be shared or reloaded -------------------
  const state = {
    view: "overview", range: "7d", start: "", end: "", domain: "", search: "",
    pivot: "volume", show: "chart", page: 1, pageSize: 50,
    sort: { volume: ["messages", "desc"], tls: ["messages", "desc"],
            remediation: ["messages", "desc"] },
  };

  function readHash() {
    const [view, query] = location.hash.replace(/^#/, "").split("?");
    state.view = VIEWS.includes(view) ? view : "overview";
    const p = new URLSearchParams(query || "");
    for (const key of ["range", "start", "end", "domain", "search", "pivot", "show"]) {
      if (p.has(key)) state[key] = p.get(key);
    }
    if (state.range.includes("/")) fromInterval(state.range);  // the API's own form
    state.page = Math.max(1, parseInt(p.get("page") || "1", 10) || 1);
    state.pageSize = parseInt(p.get("page_size") || "50", 10) || 50;
  }

  function writeHash() {
    const p = state.view === "overview" ? new URLSearchParams() : filterParams();
    if (state.view === "report") { p.set("pivot", state.pivot); p.set("show", state.show); }
    if (state.page > 1) p.set("page", state.page);
    if (state.pageSize !== 50) p.set("page_size", state.pageSize);
    history.replaceState(null, "", "#" + state.view + (p.toString() ? "?" + p : ""));
  }

  // A custom window is the API's one `range` value START/DURATION (an ISO-8601 interval):
  // the From/To inputs (UTC) rounded out to whole hours, as the API would round them.
  const HOUR_MS = 3600e3;
  function customWindow() {
    if (!(state.start && state.end)) return { error: "Choose both ends of the custom range." };
    const from = Date.parse(state.start.slice(0, 16) + "Z");
    const to = Date.parse(state.end.slice(0, 16) + "Z");
    if (Number.isNaN(from) || Number.isNaN(to)) return { error: "Choose both ends of the custom range." };
    const since = Math.floor(from / HOUR_MS);
    const hours = Math.ceil(to / HOUR_MS) - since;
    if (hours <= 0) return { error: "The end of the custom range must come after its start." };
    if (hours > 366 * 24) return { error: "A custom range spans at most 366 days." };
    const days = Math.floor(hours / 24), rest = hours % 24;
    const duration = "P" + (days ? days + "D" : "") + (rest ? "T" + rest + "H" : "");
    return { value: new Date(since * HOUR_MS).toISOString().slice(0, 13) + ":00Z/" + duration };
  }

  // The inputs back from START/DURATION (a shared link; an old range=custom&start&end link
  // fills them directly).
  function fromInterval(value) {
    const m = /^(\d{4}-\d\d-\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d))?)?(Z|[+-]\d\d:\d\d)?)?\/P(?:(\d+)W)?(?:(\d+)D)?(?:T(\d+)H)?$/.exec(value);
    state.range = "custom";
    if (!m) { state.start = state.end = ""; return; }
    const start = Date.parse(`${m[1]}T${m[2] || "00"}:${m[3] || "00"}:${m[4] || "00"}${m[5] || "Z"}`);
    const hours = 168 * (+m[6] || 0) + 24 * (+m[7] || 0) + (+m[8] || 0);
    const iso = (ms) => Number.isNaN(ms) ? "" : new Date(ms).toISOString().slice(0, 16);
    state.start = iso(start);
    state.end = iso(start + hours * HOUR_MS);
  }

  function filterParams() {
    const range = state.range === "custom" ? customWindow().value || "custom" : state.range;
    const p = new URLSearchParams({ range });
    if (state.domain) p.set("domain", state.domain);
    if (state.search) p.set("search", state.search);
    return p;
  }

  // ---- fetching, with stale answers dropped ----------------------------------------------
  const inflight = {};
  async function getJSON(slot, path, params) {
    if (inflight[slot]) inflight[slot].abort();
    const ctl = (inflight[slot] = new AbortController());
    const url = path + (params && params.toString() ? "?" + params : "");
    const response = await fetch(url, { signal: ctl.signal, credentials: "same-origin",
                                        headers: { Accept: "application/json" } });
    let body = null;
    // A superseded request can be aborted while its body is read: that is no empty answer.
    try { body = await response.json(); } catch (e) { if (e.name === "AbortError") throw e; }
    if (!response.ok) {
      throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
    }
    return body;
  }

  function showState(id, kind, text) {
    const el = $(id);
    el.className = "state" + (kind === "error" ? " error" : "");
    el.dataset.state = kind || "";
    el.textContent = text || "";
  }

  async function load(slot, stateId, path, params, render) {
    showState(stateId, "loading", "Loading…");
    try {
      const body = await getJSON(slot, path, params);
      showState(stateId, "", "");
      render(body);
    } catch (err) {
      if (err.name === "AbortError") return;
      showState(stateId, "error", "Could not load: " + err.message + ". ");
      const retry = document.createElement("button");
      retry.type = "button";
      retry.textContent = "Retry";
      retry.addEventListener("click", () => load(slot, stateId, path, params, render));
      $(stateId).append(retry);
    }
  }

  // ---- tables ----------------------------------------------------------------------------
  const fmtTime = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, "") : "");
  const COLUMNS = {
    volume: [
      { key: "sender", label: "Sender", sort: true }, { key: "domain", label: "Domain", sort: true },
      { key: "messages", label: "Messages", num: true, sort: true, fmt: nf.format },
      { key: "tls10", label: "TLS 1.0", num: true, sort: true, fmt: pct },
      { key: "tls11", label: "TLS 1.1", num: true, sort: true, fmt: pct },
      { key: "tls12", label: "TLS 1.2", num: true, sort: true, fmt: pct },
      { key: "tls13", label: "TLS 1.3", num: true, sort: true, fmt: pct },
      { key: "protocol", label: "Protocol" }],
    tls: [
      { key: "sender", label: "Sender", sort: true }, { key: "domain", label: "Domain", sort: true },
      { key: "tls_version", label: "TLS version", sort: true },
      { key: "messages", label: "Messages", num: true, sort: true, fmt: nf.format }],
    remediation: [
      { key: "sender", label: "Sender", sort: true }, { key: "domain", label: "Domain", sort: true },
      { key: "messages", label: "Legacy messages", num: true, sort: true, fmt: nf.format },
      { key: "tls_versions", label: "TLS versions", fmt: (v) => v.join(", ") },
      { key: "client_ips", label: "Client IPs",
        fmt: (v) => v.slice(0, 5).join(", ") + (v.length > 5 ? ` (+${v.length - 5})` : "") },
      { key: "last_seen", label: "Last seen (UTC)", sort: true, fmt: fmtTime }],
    failures: [
      { key: "key", label: "Key" },
      { key: "failures", label: "Failures", num: true, fmt: nf.format },
      { key: "distinct", label: "Distinct", num: true, fmt: nf.format },
      { key: "last_seen", label: "Last seen (UTC)", fmt: fmtTime }],
    alerts: [
      { key: "ts", label: "When (UTC)", fmt: fmtTime }, { key: "rule", label: "Rule" },
      { key: "severity", label: "Severity" }, { key: "key", label: "Key" },
      { key: "value", label: "Value", num: true, fmt: (v) => nf.format(Math.round(v * 100) / 100) },
      { key: "threshold", label: "Threshold", num: true,
        fmt: (v) => nf.format(Math.round(v * 100) / 100) },
      { key: "message", label: "Message" }],
  };

  function renderTable(table, columns, rows, sortName, emptyText) {
    const head = document.createElement("tr");
    const sort = sortName ? state.sort[sortName] : null;
    for (const col of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      if (col.num) th.className = "num";
      if (sort && col.sort) {
        const active = sort[0] === col.key;
        th.setAttribute("aria-sort", active ? (sort[1] === "asc" ? "ascending" : "descending") : "none");
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.sort = col.key;
        button.textContent = col.label + (active ? (sort[1] === "asc" ? " ▲" : " ▼") : "");
        button.addEventListener("click", () => {
          state.sort[sortName] = [col.key, active && sort[1] === "desc" ? "asc" : "desc"];
          state.page = 1;
          refresh();
          // Keep keyboard focus on the same header after the table is rebuilt.
          requestAnimationFrame(() => {
            const again = table.querySelector(`th button[data-sort="${col.key}"]`);
            if (again) again.focus();
          });
        });
        th.append(button);
      } else {
        th.textContent = col.label;
      }
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = columns.length;
      td.className = "muted empty";
      td.textContent = emptyText;
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...rows.map((row) => {
      const tr = document.createElement("tr");
      for (const col of columns) {
        const td = document.createElement("td");
        if (col.num) td.className = "num";
        const value = row[col.key];
        td.textContent = col.fmt ? col.fmt(value) : String(value ?? "");
        if (col.key === "severity") td.className = "sev-" + value;
        td.dataset.key = col.key;
        tr.append(td);
      }
      return tr;
    }));
  }

  function renderPager(name, page) {
    const box = document.querySelector(`[data-pager="${name}"]`);
    const pages = Math.max(1, Math.ceil(page.total / page.page_size));
    const prev = document.createElement("button");
    prev.type = "button";
    prev.textContent = "‹ Previous";
    prev.disabled = page.page <= 1;
    prev.addEventListener("click", () => { state.page -= 1; refresh(); });
    const next = document.createElement("button");
    next.type = "button";
    next.textContent = "Next ›";
    next.disabled = page.page >= pages;
    next.addEventListener("click", () => { state.page += 1; refresh(); });
    const info = document.createElement("span");
    info.className = "page-info";
    info.textContent = `Page ${page.page} of ${pages} · ${nf.format(page.total)} rows`;
    const size = document.createElement("select");
    size.setAttribute("aria-label", "Rows per page");
    for (const n of [25, 50, 100, 500]) size.add(new Option(`${n} per page`, n, false, n === page.page_size));
    size.addEventListener("change", () => { state.pageSize = +size.value; state.page = 1; refresh(); });
    box.replaceChildren(prev, info, next, size);
  }

  function pagedParams(sortName) {
    const p = filterParams();
    p.set("page", state.page);
    p.set("page_size", state.pageSize);
    if (sortName) { p.set("sort", state.sort[sortName][0]); p.set("order", state.sort[sortName][1]); }
    return p;
  }

  // ---- charts ----------------------------------------------------------------------------
  const charts = {};
  function drawChart(canvasId, type, labels, datasets, stacked, label) {
    const canvas = $(canvasId);
    canvas.setAttribute("aria-label", label);
    if (charts[canvasId]) charts[canvasId].destroy();
    if (typeof Chart === "undefined") return;  // the table view still works
    charts[canvasId] = new Chart(canvas, {
      type, data: { labels, datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" },
                   tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${nf.format(c.parsed.y)}` } } },
        scales: { x: { stacked }, y: { stacked, beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  function pivotSeries(rows, seriesKey, order, colour) {
    const days = [...new Set(rows.map((r) => r.day))].sort();
    const rank = (name) => (order ? order.indexOf(name) : name.startsWith(OTHER) ? 1 : 0);
    const names = [...new Set(rows.map((r) => r[seriesKey]))].sort(
      (a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const datasets = names.map((name, i) => {
      const byDay = new Map(rows.filter((r) => r[seriesKey] === name).map((r) => [r.day, r.messages]));
      const c = colour(name, i);
      return { label: name, data: days.map((d) => byDay.get(d) || 0), backgroundColor: c, borderColor: c };
    });
    return { days, datasets };
  }

  // Eight distinguishable colours: the busiest seven domains get their own series, the rest
  // are summed into one (hundreds of series would be unreadable and slow to draw).
  const OTHER = "Other domains";
  function topDomains(rows, keep = 7) {
    const totals = new Map();
    for (const r of rows) totals.set(r.domain, (totals.get(r.domain) || 0) + r.messages);
    if (totals.size <= keep + 1) return rows;
    const top = new Set([...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, keep).map(([d]) => d));
    const label = `${OTHER} (${totals.size - keep})`;
    const other = new Map();
    const out = rows.filter((r) => top.has(r.domain));
    for (const r of rows) if (!top.has(r.domain)) other.set(r.day, (other.get(r.day) || 0) + r.messages);
    for (const [day, messages] of other) out.push({ day, domain: label, messages });
    return out;
  }

  // ---- views -----------------------------------------------------------------------------
  function loadWidget() {
    return load("widget", "widget-state", "/api/v1/widget", null, (w) => {
      $("widget-senders").textContent = nf.format(w.senders);
      const change = $("widget-change");
      if (w.change === null) {
        change.textContent = `no senders in the 7 days before (${nf.format(w.previous_senders)})`;
        change.className = "sub";
      } else {
        const sign = w.change > 0 ? "▲" : w.change < 0 ? "▼" : "±";
        change.textContent = `${sign} ${Math.abs(w.change * 100).toFixed(1)}% vs the 7 days before (${nf.format(w.previous_senders)})`;
        change.className = "sub" + (w.change > 0 ? " up" : w.change < 0 ? " down" : "");
      }
    });
  }

  function openFlyout() {
    $("flyout").showModal();
    load("flyout", "flyout-state", "/api/v1/flyout", null, (f) => {
      const body = $("flyout-tls").tBodies[0];
      body.replaceChildren(...f.tls.map((t) => {
        const tr = document.createElement("tr");
        for (const [text, num] of [[t.tls_version, false], [nf.format(t.messages), true], [pct(t.share), true]]) {
          const td = document.createElement("td");
          td.textContent = text;
          if (num) td.className = "num";
          tr.append(td);
        }
        return tr;
      }));
      if (!f.tls.length) showState("flyout-state", "empty", "No submissions in the last 7 days.");
      drawChart("flyout-chart", "bar", f.daily.map((d) => d.day),
                [{ label: "Messages", data: f.daily.map((d) => d.messages), backgroundColor: OKABE_ITO[0] }],
                false, "Messages per day: " + f.daily.map((d) => `${d.day} ${d.messages}`).join(", "));
    });
  }

  function loadOverviewAlerts() {
    const p = new URLSearchParams({ range: "7d", page_size: "5" });
    return load("overview-alerts", "overview-alerts-state", "/api/v1/alerts", p, (rows) => {
      renderTable($("overview-alerts"), COLUMNS.alerts.filter((c) => c.key !== "value" && c.key !== "threshold"),
                  rows, null, "No alerts in the last 7 days.");
    });
  }

  const knownDomains = new Set();
  function addDomains(domains) {
    let changed = false;
    for (const d of domains) if (d && !knownDomains.has(d)) { knownDomains.add(d); changed = true; }
    if (!changed && !(state.domain && !knownDomains.has(state.domain))) return;
    if (state.domain) knownDomains.add(state.domain);
    const select = $("f-domain");
    select.replaceChildren(new Option("All domains", ""),
      ...[...knownDomains].sort().map((d) => new Option(d, d, false, d === state.domain)));
    select.value = state.domain;
  }

  function loadReport() {
    const pivot = state.pivot;
    const path = pivot === "volume" ? "/api/v1/volume" : "/api/v1/tls";
    return load("report", "report-state", path, pagedParams(pivot), (r) => {
      if (pivot === "volume") {
        if (!state.domain) addDomains(r.chart.map((c) => c.domain));
        const { days, datasets } = pivotSeries(topDomains(r.chart), "domain", null, (name, i) =>
          (name.startsWith(OTHER) ? "#999999" : OKABE_ITO[i % OKABE_ITO.length]));
        drawChart("report-chart", "bar", days, datasets, true, "Messages per day by sender domain");
        $("tls-totals").hidden = true;
      } else {
        const { days, datasets } = pivotSeries(r.chart, "tls_version", TLS_ORDER, (name) => TLS_COLOURS[name] || "#666");
        drawChart("report-chart", "bar", days, datasets, true, "Messages per day by TLS version");
        const totals = $("tls-totals");
        totals.hidden = false;
        totals.replaceChildren(...r.totals.map((t) => {
          const span = document.createElement("span");
          span.dataset.tls = t.tls_version;
          span.textContent = `${t.tls_version}: ${nf.format(t.messages)} (${pct(t.share)})`;
          return span;
        }));
      }
      renderTable($("report-table"), COLUMNS[pivot], r.rows, pivot, "No submissions match these filters.");
      renderPager("report", r.page);
      if (!r.chart.length) showState("report-state", "empty", "No submissions in this range.");
    });
  }

  function loadRemediation() {
    return load("remediation", "remediation-state", "/api/v1/remediation", pagedParams("remediation"), (r) => {
      renderTable($("remediation-table"), COLUMNS.remediation, r.rows, "remediation",
                  "No sender used legacy TLS in this range.");
      renderPager("remediation", r.page);
    });
  }

  function loadFailures() {
    const p = filterParams();
    p.set("page_size", "100");
    return load("failures", "failures-state", "/api/v1/failures", p, (r) => {
      renderTable($("failures-account"), COLUMNS.failures, r.by_account, null, "No failed logins in this range.");
      renderTable($("failures-ip"), COLUMNS.failures, r.by_ip, null, "No failed logins in this range.");
    });
  }

  function loadAlerts() {
    const p = filterParams();
    p.delete("domain");
    p.delete("search");
    p.set("page_size", "500");
    return load("alerts", "alerts-state", "/api/v1/alerts", p, (rows) => {
      renderTable($("alerts-table"), COLUMNS.alerts, rows, null, "No alerts in this range.");
    });
  }

  function refresh() {
    for (const el of document.querySelectorAll("section[data-view]")) el.hidden = el.dataset.view !== state.view;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.view === state.view) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    $("filters").hidden = state.view === "overview";
    syncFilterInputs();
    writeHash();
    if (state.range === "custom" && customWindow().error) {
      showState(state.view + "-state", "empty", customWindow().error);
      return;
    }
    if (state.view === "overview") { loadWidget(); loadOverviewAlerts(); }
    else if (state.view === "report") { syncPivot(); loadReport(); }
    else if (state.view === "remediation") loadRemediation();
    else if (state.view === "failures") loadFailures();
    else if (state.view === "alerts") loadAlerts();
  }

  // ---- controls --------------------------------------------------------------------------
  function syncFilterInputs() {
    $("f-range").value = state.range;
    $("f-custom").hidden = state.range !== "custom";
    $("f-start").value = state.start.slice(0, 16);
    $("f-end").value = state.end.slice(0, 16);
    $("f-search").value = state.search;
    addDomains([]);
    $("f-domain").value = state.domain;
  }

  function syncPivot() {
    for (const tab of document.querySelectorAll("[role=tab]")) {
      const on = tab.dataset.pivot === state.pivot;
      tab.setAttribute("aria-selected", on);
      tab.tabIndex = on ? 0 : -1;
      if (on) $("pivot-panel").setAttribute("aria-labelledby", tab.id);
    }
    const chart = state.show === "chart";
    $("show-chart").setAttribute("aria-pressed", chart);
    $("show-table").setAttribute("aria-pressed", !chart);
    $("report-chart-box").hidden = !chart;
    $("report-table-box").hidden = chart;
  }

  function changed(update) {
    update();
    state.page = 1;
    refresh();
  }

  function wire() {
    $("f-range").addEventListener("change", (e) => changed(() => { state.range = e.target.value; }));
    const custom = () => changed(() => {
      state.start = $("f-start").value;
      state.end = $("f-end").value;
    });
    $("f-start").addEventListener("change", custom);
    $("f-end").addEventListener("change", custom);
    $("f-domain").addEventListener("change", (e) => changed(() => { state.domain = e.target.value; }));
    let typing = null;
    $("f-search").addEventListener("input", (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => changed(() => { state.search = e.target.value.trim(); }), 300);
    });
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    $("request-report").addEventListener("click", () => {
      const a = document.createElement("a");
      a.href = "/api/v1/export.csv?" + filterParams();
      a.download = "";
      document.body.append(a);
      a.click();
      a.remove();
    });
    const tabs = [...document.querySelectorAll("[role=tab]")];
    for (const tab of tabs) {
      tab.addEventListener("click", () => changed(() => { state.pivot = tab.dataset.pivot; }));
      tab.addEventListener("keydown", (e) => {
        const i = tabs.indexOf(tab);
        const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
        if (to === undefined) return;
        e.preventDefault();
        const target = tabs[(to + tabs.length) % tabs.length];
        target.focus();
        target.click();
      });
    }
    $("show-chart").addEventListener("click", () => { state.show = "chart"; syncPivot(); writeHash(); });
    $("show-table").addEventListener("click", () => { state.show = "table"; syncPivot(); writeHash(); });
    $("widget").addEventListener("click", openFlyout);
    $("flyout-close").addEventListener("click", () => $("flyout").close());
    $("flyout").addEventListener("click", (e) => { if (e.target === $("flyout")) $("flyout").close(); });
    $("flyout-report").addEventListener("click", () => $("flyout").close());
    window.addEventListener("hashchange", () => {
      const before = state.view;
      readHash();
      if (before !== state.view) state.page = 1;
      refresh();
    });
    // The overview's numbers follow the data without a reload.
    setInterval(() => { if (state.view === "overview" && !document.hidden) { loadWidget(); loadOverviewAlerts(); } }, 60000);
  }

  // ---- live panel: server-sent events ----------------------------------------------------
  function startLive() {
    const status = $("live-status");
    const source = new EventSource("/live/v1/stream");
    source.addEventListener("open", () => { status.textContent = "live"; status.className = "pill ok"; });
    source.addEventListener("error", () => { status.textContent = "reconnecting…"; status.className = "pill bad"; });
    source.addEventListener("summary", (e) => {
      const s = JSON.parse(e.data);
      $("live-messages").textContent = nf.format(s.messages);
      $("live-senders").textContent = nf.format(s.senders);
      $("live-failures").textContent = nf.format(s.auth_failures);
      const legacy = Object.entries(s.by_tls).filter(([t]) => LEGACY.has(t)).reduce((a, [, n]) => a + n, 0);
      $("live-legacy").textContent = s.messages ? `${nf.format(legacy)} (${pct(legacy / s.messages)})` : "0";
      const rows = Object.entries(s.by_tls).sort((a, b) => TLS_ORDER.indexOf(a[0]) - TLS_ORDER.indexOf(b[0]));
      $("live-tls").replaceChildren(...rows.map(([tls, n]) => {
        const tr = document.createElement("tr");
        const a = document.createElement("td");
        a.textContent = tls;
        const b = document.createElement("td");
        b.className = "num";
        b.textContent = nf.format(n);
        tr.append(a, b);
        return tr;
      }));
      // Events older than the allowed lateness are stored (the reports count them) but not
      // counted live: say so, or the two would seem to disagree.
      const late = s.late ? ` · ${nf.format(s.late)} late events are in the reports only` : "";
      $("live-updated").textContent = "Updated " + new Date().toISOString().slice(11, 19) + " UTC" + late;
    });
  }

  readHash();
  wire();
  refresh();
  startLive();
  getJSON("domains", "/api/v1/week-over-week").then((rows) => addDomains(rows.map((r) => r.domain))).catch(() => {});
})();
