// Skyfleet dashboard: a client of the REST API, nothing more. Every figure comes from /v1 as the
// signed-in user, so the API's access decision is the only one. The page never holds a Keystone token:
// signing in (POST /v1/auth/session) makes Skyfleet set an HttpOnly session cookie that no script can
// read, and every change (POST, PUT, PATCH, DELETE) echoes the session's CSRF token (the skyfleet_csrf
// cookie) in X-CSRF-Token. Nothing is kept in sessionStorage or localStorage. Text from the API is
// always set with textContent, never parsed as HTML. No inline script or style: the page runs under a
// strict CSP.
"use strict";

const state = { authMode: null, who: null, abort: null, notice: null };

// The session's CSRF token: the one cookie the page may read (the session cookie is HttpOnly).
function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "skyfleet_csrf") return decodeURIComponent(value.join("="));
  }
  return null;
}

class ApiError extends Error {
  constructor(status, title, detail, requestId) {
    super(`${status} ${title}: ${detail}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.requestId = requestId;
  }
}

// A call of the API as the signed-in user (the session cookie goes along: same origin only).
// `options`: method, a JSON body, extra headers.
async function api(path, signal, options) {
  let response;
  const o = options || {};
  const method = o.method || (o.body !== undefined ? "POST" : "GET");
  const init = { method, headers: Object.assign({ Accept: "application/json" }, o.headers || {}),
    cache: "no-store", credentials: "same-origin", signal };
  if (method !== "GET" && method !== "HEAD") {
    const csrf = csrfToken();
    if (csrf) init.headers["X-CSRF-Token"] = csrf;
  }
  if (o.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(o.body);
  }
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Network error", "Skyfleet did not answer", null);
  }
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const b = body || {};
    throw new ApiError(response.status, b.title || response.statusText, b.detail || "",
                       b.request_id || response.headers.get("X-Request-Id"));
  }
  return body;
}

// Every page of a list whose body has `key` and `next_marker` (at most `pages` pages).
async function apiAll(path, key, signal, pages = 10) {
  const rows = [];
  let marker = null;
  for (let i = 0; i < pages; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const body = await api(marker ? `${path}${sep}marker=${encodeURIComponent(marker)}` : path, signal);
    rows.push(...(body[key] || []));
    marker = body.next_marker;
    if (marker === null || marker === undefined) break;
  }
  return rows;
}

// ---- DOM helpers: elements are built, never parsed from strings --------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmtTime(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function badge(value) {
  const v = String(value || "unknown");
  return el("span", { class: `badge st-${v.replace(/[^a-z0-9-]/gi, "-").toLowerCase()}`, text: v });
}

// A table with a caption and column headers, inside a scrollable region for narrow screens.
function table(caption, columns, rows, rowFn, empty) {
  const t = el("table", {},
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c })))));
  const body = el("tbody");
  for (const row of rows) {
    const cells = rowFn(row);
    body.append(el("tr", {}, cells.map((c, i) => (i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, c)))));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: columns.length, class: "empty", text: empty || "None." })));
  t.append(body);
  return el("div", { class: "scroll", role: "region", "aria-label": caption, tabindex: 0 }, t);
}

function errorBox(err, what) {
  if (err && err.name === "AbortError") return null;
  const box = el("div", { class: "error", role: "alert" });
  if (err instanceof ApiError) {
    const text = err.status === 403 ? `${what}: not available to your token.` : `${what}: the API refused.`;
    box.append(el("strong", { text }), " ",
      el("span", { class: "detail", text: `${err.status} ${err.title}${err.detail ? " — " + err.detail : ""}` }));
    if (err.requestId) box.append(" · ", el("span", { class: "rid" }, "request id ", el("code", { text: err.requestId })));
    if (err.status === 401 && what !== "Sign-in") box.append(" ", el("a", { href: "#/login", text: "Sign in again" }));
  } else {
    box.append(el("strong", { text: `${what}: ${err}` }));
  }
  return box;
}

function meter(used, total, label) {
  if (!total) return "—";
  const pct = Math.round((100 * used) / total);
  return el("span", { class: "cap" },
    el("meter", { min: 0, max: total, value: used, low: total * 0.7, high: total * 0.9, optimum: 0,
                  "aria-label": `${label} ${used} of ${total}` }),
    el("span", { class: "num", text: `${used}/${total} (${pct}%)` }));
}

function section(title, ...children) {
  const id = "h-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return el("section", { class: "panel", "aria-labelledby": id }, el("h2", { id, text: title }), ...children);
}

// ---- views -----------------------------------------------------------------------------------

// ---- the URL's hash: a view's path and its filters (#/overview?group=eu&availability=online) -----

function hashPath() {
  return location.hash.replace(/^#\/?/, "").split("?")[0];
}

function hashParams() {
  const at = location.hash.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : location.hash.slice(at + 1));
}

// Put a view's filters in the URL so the view can be shared; replaceState fires no hashchange, so the
// view is not built again (the view itself reads what the filters select).
function setHashParams(view, values) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) {
    if (v === "" || v === null || v === undefined || (k === "page" && v === 1)) continue;
    p.set(k, String(v));
  }
  const query = p.toString();
  history.replaceState(null, "", `#/${view}${query ? "?" + query : ""}`);
}

// Calls the user's typing into one call once the typing pauses.
function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

// ---- sparklines: a small inline SVG line of a series' points (oldest first) -----------------------

function sparkline(points, label, unit) {
  const values = (points || []).map((p) => p[1]).filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!values.length) return "—";
  const w = 80;
  const h = 18;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min || 1;
  const xy = values.map((v, i) => [values.length === 1 ? w / 2 : 1 + (i * (w - 2)) / (values.length - 1),
    h - 2 - ((v - min) / span) * (h - 4)]);
  const round = (v) => String(Math.round(v * 10) / 10);
  const last = xy[xy.length - 1];
  const text = `${label}: ${values.length} points, latest ${round(values[values.length - 1])} ${unit}, ` +
    `min ${round(min)}, max ${round(max)}`;
  return svg("svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "img", "aria-label": text,
    "data-points": values.length },
  svg("title", { text }),
  svg("polyline", { points: xy.map(([x, y]) => `${round(x)},${round(y)}`).join(" ") }),
  svg("circle", { cx: round(last[0]), cy: round(last[1]), r: 1.8 }));
}

// ---- the fleet overview -------------------------------------------------------------------------

const AVAILABILITIES = ["online", "degraded", "offline", "unknown"];
const PAGE_ROWS = 50;  // rows of the site grid drawn at once; /v1/indicators takes 64 sites a call
const SITES_RENDERED = "skyfleet:sites-rendered";  // performance marks, read by the benchmark and tests:
const SITES_COMPLETE = "skyfleet:sites-complete";  // the grid's first rows drawn; every matching site read

// The overview's filters go to GET /v1/sites itself (selector, group, availability, name): the API
// filters, the page draws what it answers, and the tally counts the sites that match.
function sitesQuery(f, limit) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (f.label) q.set("selector", f.label);
  if (f.group) q.set("group", f.group);
  if (f.availability) q.set("availability", f.availability);
  if (f.q) q.set("name", f.q);
  return `/v1/sites?${q}`;
}

async function viewOverview(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Fleet overview" }));
  const p = hashParams();
  const f = { label: p.get("label") || "", group: p.get("group") || "", availability: p.get("availability") || "",
    q: p.get("q") || "", page: Math.max(1, parseInt(p.get("page"), 10) || 1) };
  const sitesPanel = el("div");
  const inventoryPanel = el("div");
  main.append(sitesPanel, inventoryPanel);
  const summary = api("/v1/inventory/summary", signal);
  await Promise.allSettled([overviewSites(sitesPanel, signal, f, summary), overviewInventory(inventoryPanel, summary)]);
}

async function overviewInventory(holder, summaryCall) {
  let s;
  try {
    s = await summaryCall;
  } catch (err) {
    holder.append(section("Inventory", errorBox(err, "The inventory summary")));
    return;
  }
  const kinds = Object.entries(s.totals || {});
  const cap = s.capacity;
  holder.append(section("Inventory",
    cap ? el("p", { class: "caps" }, "vCPUs ", meter(cap.vcpus_used, cap.vcpus, "vCPUs"),
      " RAM MiB ", meter(cap.memory_mb_used, cap.memory_mb, "RAM"),
      " Disk GiB ", meter(cap.local_gb_used, cap.local_gb, "Disk")) : null,
    table("Resources observed on the sites, by kind and status", ["Kind", "Counts"], kinds,
      ([kind, byStatus]) => [kind, Object.entries(byStatus).map(([st, n]) => `${st}: ${n}`).join(", ")],
      "Nothing observed yet.")));
}

// Every site the filters select, a page at a time: a first short page (the grid's first rows at once),
// then pages of 1000; `onRows(rows, done)` after each.
async function loadSites(f, signal, onRows) {
  let rows = [];
  let marker = null;
  let limit = PAGE_ROWS * 2;
  for (let i = 0; i < 50; i++) {
    const body = await api(sitesQuery(f, limit) + (marker ? `&marker=${encodeURIComponent(marker)}` : ""), signal);
    rows = rows.concat(body.sites || []);
    marker = body.next_marker;
    const done = marker === null || marker === undefined;
    onRows(rows, done);
    if (done) break;
    limit = 1000;
  }
  return rows;
}

async function overviewSites(holderPanel, signal, f, summaryCall) {
  let rows = [];
  let complete = false;
  const bySite = new Map();
  const groups = new Set();
  const groupList = el("datalist", { id: "site-groups" });
  const fields = {
    label: el("input", { id: "site-label", type: "text", value: f.label, placeholder: "tier=edge", spellcheck: "false",
      "aria-describedby": "site-label-help" }),
    group: el("input", { id: "site-group", type: "text", value: f.group, list: "site-groups", spellcheck: "false" }),
    availability: el("select", { id: "site-availability" }, el("option", { value: "", text: "any" }),
      AVAILABILITIES.map((a) => el("option", { value: a, text: a }))),
    q: el("input", { id: "site-filter", type: "search", value: f.q, placeholder: "part of a name", spellcheck: "false" }),
  };
  fields.availability.value = f.availability;
  const tallyHolder = el("div");
  const problem = el("div", { id: "site-filter-problem" });
  const pager = el("nav", { class: "pager", "aria-label": "Pages of the site list" });
  const holder = el("div", { id: "site-grid" });
  const status = el("p", { id: "sites-live", class: "status", role: "status", text: "connecting…" });
  const sparkCache = new Map();  // site id -> its latency series (or null: none)
  let marked = false;
  let sparkCall = null;

  // The API latency of the sites of this page over the last hour: one call for the rows not seen yet.
  const sparks = (shown) => {
    const fill = () => {
      for (const slot of holder.querySelectorAll(".spark-slot")) {
        if (!sparkCache.has(slot.dataset.siteId)) continue;
        const s = sparkCache.get(slot.dataset.siteId);
        slot.replaceChildren(s ? sparkline(s.points, `API latency of ${s.site} over the last hour`, s.unit) : "—");
      }
    };
    fill();
    const missing = shown.map((s) => s.id).filter((id) => !sparkCache.has(id));
    if (!missing.length) return;
    if (sparkCall) sparkCall.abort();
    sparkCall = new AbortController();
    const own = sparkCall;
    signal.addEventListener("abort", () => own.abort());
    api(`/v1/indicators?site=${encodeURIComponent(missing.join(","))}&name=audit.latency_ms&since=1h&step=5m`, own.signal)
      .then((body) => {
        for (const id of missing) sparkCache.set(id, null);
        for (const s of body.series || []) sparkCache.set(s.site_id, s);
        fill();
      })
      .catch(() => {
        for (const slot of holder.querySelectorAll(".spark-slot")) if (slot.textContent === "…") slot.textContent = "—";
      });
  };

  const draw = () => {
    for (const s of rows) if (s.group) groups.add(s.group);
    groupList.replaceChildren(...[...groups].sort().map((g) => el("option", { value: g })));
    tallyHolder.replaceChildren(availabilityTally(rows, complete));
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
    if (complete) f.page = Math.min(f.page, pages);
    const start = Math.min((f.page - 1) * PAGE_ROWS, (pages - 1) * PAGE_ROWS);
    const shown = rows.slice(start, start + PAGE_ROWS);
    holder.replaceChildren(siteTable(shown, bySite, rows.length, start, complete));
    const move = (by) => {
      f.page = Math.min(Math.max(1, f.page + by), pages);
      setHashParams("overview", f);
      draw();
    };
    const prev = el("button", { type: "button", id: "sites-prev", disabled: f.page <= 1, text: "← Previous" });
    const next = el("button", { type: "button", id: "sites-next", disabled: f.page >= pages, text: "Next →" });
    prev.addEventListener("click", () => move(-1));
    next.addEventListener("click", () => move(1));
    pager.replaceChildren(prev, el("span", { id: "sites-page", class: "num",
      text: ` page ${f.page} of ${pages}${complete ? "" : "+"} ` }), next);
    pager.hidden = complete && pages <= 1;
    if (!marked) {  // the grid's first rows are in the document: marked once the frame that shows them is done
      marked = true;
      requestAnimationFrame(() => setTimeout(() => performance.mark(SITES_RENDERED), 0));
    }
    sparks(shown);
  };

  let loading = null;
  const load = async () => {
    if (loading) loading.abort();
    const own = new AbortController();
    loading = own;
    signal.addEventListener("abort", () => own.abort());
    complete = false;
    try {
      await loadSites(f, own.signal, (got, done) => {
        if (own.signal.aborted) return;
        rows = got;
        complete = done;
        problem.replaceChildren();
        draw();
      });
      if (complete) performance.mark(SITES_COMPLETE);
    } catch (err) {
      if (own.signal.aborted) return;
      const box = errorBox(err, "The site filter");
      if (box) problem.replaceChildren(box);
      rows = [];
      complete = true;
      draw();
      throw err;
    }
  };

  holderPanel.append(section("Sites", tallyHolder, status,
    el("div", { class: "filters", role: "search", "aria-label": "Filter the sites" },
      el("label", { for: "site-filter", text: "Name" }), fields.q,
      el("label", { for: "site-label", text: "Label" }), fields.label,
      el("label", { for: "site-group", text: "Group" }), fields.group, groupList,
      el("label", { for: "site-availability", text: "Availability" }), fields.availability),
    el("p", { id: "site-label-help", class: "status",
      text: "Label: key=value, key!=value, key or !key, several joined with commas. The filters are in the URL: share it." }),
    problem, holder, pager));
  try {
    await load();
  } catch (err) {  // a tenant (403), or no API: the section says why, with no filters
    if (!(err instanceof ApiError && err.status === 400)) {
      holderPanel.replaceChildren(section("Sites", errorBox(err, "The list of sites (fleet admins only)")));
      return;
    }
  }
  const changed = () => {  // every field is read: a pending keystroke's pause goes along
    for (const key of Object.keys(fields)) f[key] = fields[key].value.trim();
    f.page = 1;
    setHashParams("overview", f);
    load().catch(() => {});
  };
  const typed = debounce(changed, 300);
  for (const key of ["label", "group", "q"]) fields[key].addEventListener("input", typed);
  fields.availability.addEventListener("change", changed);
  summaryCall.then((s) => {
    for (const x of s.sites || []) bySite.set(x.site_id, x);
    draw();
  }).catch(() => {});
  // Live: a site's event (availability, registered, changed, removed) reads the list again, at most
  // once per second, and redraws the tally and the table in place; no reload.
  let pending = null;
  followEvents(signal, status, (e) => {
    if (!String(e.kind).startsWith("site.") || pending) return;
    pending = setTimeout(async () => {
      try { await load(); } catch (_) { /* shown in the problem box */ }
      pending = null;
    }, 1000);
  });
}

function availabilityTally(rows, complete) {
  const counts = Object.fromEntries(AVAILABILITIES.map((a) => [a, 0]));
  for (const s of rows) counts[s.availability] = (counts[s.availability] || 0) + 1;
  return el("ul", { class: "tally", id: "availability-counts", "aria-label": "Matching sites per availability",
    "aria-busy": complete ? "false" : "true" },
  el("li", { class: "total" }, el("span", { class: "n", text: rows.length }), complete ? " sites" : " sites so far…"),
  Object.entries(counts).map(([a, n]) => el("li", { "data-availability": a }, el("span", { class: "n", text: n }), " ", badge(a))));
}

function siteTable(rows, bySite, total, start, complete) {
  const range = total > rows.length ? `, ${start + 1}–${start + rows.length} shown` : "";
  return table(`Sites (${total}${complete ? "" : "+"} matching${range})`,
    ["Site", "Availability", "Group", "Labels", "Latency (ms)", "Latency, 1 h", "vCPUs", "RAM (MiB)", "Last audit"],
    rows, (s) => {
      const inv = bySite.get(s.id);
      const cap = inv && inv.capacity;
      return [el("a", { href: `#/site/${encodeURIComponent(s.name)}`, text: s.name }),
        badge(s.availability), s.group || "—",
        Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—",
        s.latency_ms === null || s.latency_ms === undefined ? "—" : s.latency_ms.toFixed(1),
        el("span", { class: "spark-slot", "data-site-id": s.id, text: "…" }),
        cap ? meter(cap.vcpus_used, cap.vcpus, "vCPUs") : "—",
        cap ? meter(cap.memory_mb_used, cap.memory_mb, "RAM") : "—",
        fmtTime(s.last_audit_at)];
    }, "No site matches.");
}

async function viewSite(main, signal, name) {
  main.append(el("p", {}, el("a", { href: "#/overview", text: "← Fleet overview" })));
  let site;
  try {
    site = await api(`/v1/sites/${encodeURIComponent(name)}`, signal);
  } catch (err) {
    main.append(el("h1", { class: "view-title", text: `Site ${name}` }), errorBox(err, `Site ${name}`));
    return;
  }
  main.append(el("h1", { class: "view-title" }, `Site ${site.name} `, badge(site.availability)));
  const caps = site.capabilities || {};
  const facts = [["Group", site.group || "—"], ["Region", caps.region_name || "—"],
    ["Labels", Object.entries(site.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"],
    ["Managed", site.managed ? "yes" : "no"], ["Latency", site.latency_ms ? `${site.latency_ms} ms` : "—"],
    ["Availability zones", (caps.availability_zones || []).join(", ") || "—"],
    ["Last seen", fmtTime(site.last_seen_at)], ["Last audit", fmtTime(site.last_audit_at)],
    ["Consecutive failures", site.consecutive_failures], ["Last error", site.last_error || "—"],
    ["Description", site.description || "—"]];
  main.append(section("Facts", el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]))));
  const [summary, events, series] = await Promise.allSettled([api("/v1/inventory/summary", signal),
    api(`/v1/events?site=${encodeURIComponent(site.id)}&limit=20`, signal),
    api(`/v1/indicators?site=${encodeURIComponent(site.id)}&since=1h&step=5m`, signal)]);
  const byName = new Map(series.status === "fulfilled" ? series.value.series.map((s) => [s.name, s]) : []);
  main.append(section("Services", table("Services in the site's catalog",
    ["Service", "Status", "Version", "Microversions", "Latency (ms)", "Latency, 1 h", "Endpoint"], caps.services || [],
    (s) => {
      const trend = byName.get(`api.${s.type}.latency_ms`);
      return [s.type, badge(s.status), s.version || "—",
        s.min_microversion ? `${s.min_microversion} – ${s.max_microversion}` : "—",
        s.latency_ms === null || s.latency_ms === undefined ? "—" : String(s.latency_ms),
        trend ? sparkline(trend.points, `${s.type} API latency over the last hour`, trend.unit) : "—",
        el("code", { text: s.endpoint || "" })];
    }, "Not audited yet.")));
  if (summary.status === "fulfilled") {
    const inv = (summary.value.sites || []).find((s) => s.site_id === site.id);
    const cap = inv && inv.capacity;
    main.append(section("Capacity", cap ? el("p", { class: "caps" },
      "vCPUs ", meter(cap.vcpus_used, cap.vcpus, "vCPUs"), " RAM MiB ", meter(cap.memory_mb_used, cap.memory_mb, "RAM"),
      " Disk GiB ", meter(cap.local_gb_used, cap.local_gb, "Disk")) : el("p", { text: "No capacity observed yet." })));
  }
  main.append(section("Indicators", series.status === "fulfilled"
    ? indicatorTable(series.value.series) : errorBox(series.reason, "Indicators")));
  main.append(section("Recent events", events.status === "fulfilled"
    ? eventTable("Recent events of this site", events.value.events) : errorBox(events.reason, "Events")));
}

// The latest value of each of a site's indicator series, with its mean and max over the hour (5 min buckets).
function indicatorTable(rows) {
  const round = (v) => String(Math.round(v * 100) / 100);
  return table("Indicators of this site over the last hour (GET /v1/indicators)",
    ["Indicator", "Latest", "Mean", "Max", "Unit", "Last hour", "At"], rows, (s) => {
      const values = s.points.map((p) => p[1]);
      const last = s.points[s.points.length - 1] || [null, null];
      return [s.name, last[1] === null ? "—" : round(last[1]),
        values.length ? round(values.reduce((a, b) => a + b, 0) / values.length) : "—",
        values.length ? round(Math.max(...values)) : "—", s.unit, sparkline(s.points, `${s.name} over the last hour`, s.unit),
        fmtTime(last[0])];
    }, "No samples in the last hour.");
}

function eventRow(e) {
  return [fmtTime(e.created_at), badge(e.severity), e.kind, e.site_name || "—", e.message];
}

function eventTable(caption, rows) {
  return table(caption, ["Time", "Severity", "Kind", "Site", "Message"], rows, eventRow, "No events.");
}

async function viewEvents(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Events" }));
  const status = el("p", { id: "stream-status", class: "status", role: "status", text: "connecting…" });
  const live = el("tbody", { id: "live-events" });
  const liveTable = el("div", { class: "scroll", role: "region", "aria-label": "Live events", tabindex: 0 },
    el("table", {}, el("caption", { text: "Live events (newest first)" }),
      el("thead", {}, el("tr", {}, ["Time", "Severity", "Kind", "Site", "Message"].map((c) => el("th", { scope: "col", text: c })))),
      live));
  main.append(section("Live", status, liveTable));
  const recent = el("div");
  main.append(section("Recent", recent));
  try {
    const body = await api("/v1/events?limit=50", signal);
    recent.append(eventTable("The last 50 events", body.events));
  } catch (err) {
    const box = errorBox(err, "Events");
    if (box) recent.append(box);
  }
  followEvents(signal, status, (e) => {
    live.prepend(el("tr", { "data-event-id": e.id }, eventRow(e).map((c, i) => (i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, c)))));
    while (live.children.length > 200) live.lastElementChild.remove();
  });
}

// The live stream with EventSource: the browser sends the session cookie itself (same origin), so no
// token is ever put in a URL or a header by this page. EventSource reconnects on its own with
// Last-Event-ID when a stream ends; when the server refuses it (401, 403, 429...) it gives up, and the
// page asks /v1/events why, shows it, and tries again later unless the session is gone.
function followEvents(signal, status, onEvent) {
  let delay = 2000;
  let source = null;
  let timer = null;
  const open = () => {
    if (signal.aborted) return;
    source = new EventSource("/v1/events/stream");
    source.onopen = () => {
      status.textContent = "live: connected";
      delay = 2000;
    };
    source.onmessage = (message) => {
      try { onEvent(JSON.parse(message.data)); } catch (_) { /* not an event: ignore */ }
    };
    source.onerror = async () => {
      if (source.readyState !== EventSource.CLOSED) {
        status.textContent = "live: reconnecting…";
        return;
      }
      source.close();
      try {
        await api("/v1/events?limit=1", signal);
        status.textContent = "live: connection lost, retrying…";
      } catch (err) {
        const box = errorBox(err, "The live event stream");
        if (box) status.replaceChildren(box);
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return;
        if (err.name === "AbortError") return;
      }
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  signal.addEventListener("abort", () => {
    if (source) source.close();
    if (timer) clearTimeout(timer);
  });
  open();
}

async function viewImages(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Images" }));
  try {
    const rows = await apiAll("/v1/images?limit=1000", "resources", signal);
    main.append(section("Images and their copies", table("Images, with their binding status on each site",
      ["Image", "State", "Mode", "Project", "Copies per site", "Updated"], rows, (r) => [
        r.name, badge(r.state), (r.options && r.options.mode) || (r.spec && r.spec.mode) || "—", r.project_id || "public",
        r.bindings && r.bindings.length ? el("ul", { class: "bindings" }, r.bindings.map((b) =>
          el("li", {}, `${b.site_name} `, badge(b.status), b.error ? el("span", { class: "detail", text: ` ${b.error}` }) : null)))
          : "no site yet",
        fmtTime(r.updated_at)], "No image declared.")));
  } catch (err) {
    const box = errorBox(err, "Images");
    if (box) main.append(box);
  }
}

async function viewServers(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Servers" }));
  try {
    const rows = await apiAll("/v1/servers?limit=1000", "servers", signal);
    main.append(section("Servers booted through Skyfleet", table("Servers, with their status and site",
      ["Server", "Status", "Site", "Zone", "Project", "Error", "Created"], rows, (s) => [
        s.name, badge(s.status), s.site || "—", s.availability_zone || "—", s.project_id || "—",
        s.error || "—", fmtTime(s.created_at)], "No server.")));
  } catch (err) {
    const box = errorBox(err, "Servers");
    if (box) main.append(box);
  }
}

// Read again every 2 s while the view is open, so a new operation and its progress show without a reload.
async function viewOperations(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Operations" }));
  const holder = el("div");
  const status = el("p", { id: "operations-live", class: "status", role: "status" });
  main.append(section("Recent operations", status, holder));
  while (!signal.aborted) {
    let body;
    try {
      body = await api("/v1/operations?limit=100", signal);
    } catch (err) {
      const box = errorBox(err, "Operations");
      if (box) holder.replaceChildren(box);
      return;
    }
    holder.replaceChildren(operationTable(body.operations));
    const open = body.operations.filter((o) => !o.finished_at).length;
    status.textContent = `${open ? `${open} under way` : "none under way"}; refreshed every 2 s, last at ${fmtTime(new Date())}`;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function operationTable(operations) {
  return table("Operations, newest first, with their progress over the sites",
    ["Operation", "Kind", "State", "Progress", "Failed", "Created", "Finished"], operations, (o) => {
      const c = o.counts || {};
      const done = (c.succeeded || 0) + (c.failed || 0) + (c.cancelled || 0);
      const pct = o.total ? Math.floor((100 * done) / o.total) : 100;
      return [el("code", { text: o.id.slice(0, 8), title: o.id }), o.kind, badge(o.state),
        el("span", { class: "cap" }, el("progress", { max: o.total || 1, value: done, "aria-label": `${done} of ${o.total} tasks done` }),
          el("span", { class: "num", text: `${done}/${o.total} (${pct} %)` })),
        String(c.failed || 0), fmtTime(o.created_at), fmtTime(o.finished_at)];
    }, "No operation.");
}

// ---- quota: the global limit of a project, its usage and each site's share -----------------------

async function viewQuota(main, signal, project) {
  main.append(el("h1", { class: "view-title", text: "Quota" }));
  const pid = project || (state.who && state.who.project_id) || "";
  const input = el("input", { id: "quota-project", value: pid, required: true, spellcheck: "false" });
  const form = el("form", { class: "filters", id: "quota-form" },
    el("label", { for: "quota-project", text: "Project id" }), input, el("button", { type: "submit", text: "Show" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/quota/${encodeURIComponent(input.value.trim())}`;
  });
  main.append(section("Project", form, el("p", { class: "status",
    text: "A tenant sees its own project (the one its token is scoped to); a fleet admin any project." })));
  if (!pid) return;
  const path = `/v1/quotas/${encodeURIComponent(pid)}`;
  const [quota, usage] = await Promise.allSettled([api(path, signal), api(`${path}/usage`, signal)]);
  if (quota.status === "rejected") {
    main.append(section("Global quota", errorBox(quota.reason, `The quota of project ${pid}`)));
    return;
  }
  const q = quota.value;
  main.append(section("Global quota", el("dl", { class: "facts", id: "quota-facts" },
    [["Project", `${q.project_name || "—"} (${q.project_id})`], ["Domain", q.domain_name],
      ["Quota class", q.quota_class || "default"], ["Mode", q.mode], ["Split policy", q.policy]]
      .map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
  q.warnings.length ? el("ul", { class: "warnings" }, q.warnings.map((w) => el("li", { text: w }))) : null));
  if (usage.status === "rejected") {
    main.append(section("Usage", errorBox(usage.reason, "The quota usage")));
    return;
  }
  const u = usage.value;
  const resources = Object.keys(u.limits).sort();
  const over = new Set(u.over_limit);
  const cell = (n) => (n === undefined || n === null ? "—" : n < 0 ? "unlimited" : String(n));
  main.append(section("Usage and split over the sites", table(
    `Global limit, usage and each site's share of project ${q.project_name || pid} (used / limit written)`,
    ["Resource", "Global limit", "Used", ...u.sites.map((s) => s.site_name)], resources, (r) => {
      const limit = u.limits[r];
      const used = u.usage[r] || 0;
      return [r, cell(limit),
        el("span", { class: over.has(r) ? "cap over" : "cap" }, limit > 0 ? meter(used, limit, r) : String(used),
          over.has(r) ? badge("over-limit") : null),
        ...u.sites.map((s) => `${cell(s.usage[r])} / ${cell(s.applied[r])}`)];
    }, "No limit."),
  table("Sites of the split", ["Site", "Availability", "Observed", "Written", "Last error"], u.sites, (s) => [
    s.site_name, badge(s.availability), fmtTime(s.observed_at), fmtTime(s.applied_at), s.last_error || "—"],
  "The project is on no site yet.")));
}

// ---- rollouts: the waves of each image with a controlled rollout --------------------------------

function waveState(rollout, index) {
  if (rollout.state === "done" || rollout.state === "rolled-back") return rollout.state;
  if (index < rollout.wave) return "done";
  return index === rollout.wave ? rollout.state : "waiting";
}

async function viewRollouts(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Rollouts" }));
  let images;
  try {
    images = await apiAll("/v1/images?limit=1000", "resources", signal);
  } catch (err) {
    const box = errorBox(err, "Images");
    if (box) main.append(box);
    return;
  }
  const controlled = images.filter((r) => (r.options && (r.options.rollout || r.options.mode === "controlled")));
  if (!controlled.length) main.append(section("Controlled rollouts", el("p", { text: "No image with a controlled rollout." })));
  for (const summary of controlled) {
    let image;
    try {
      image = await api(`/v1/images/${encodeURIComponent(summary.name)}`, signal);
    } catch (err) {
      main.append(section(`Image ${summary.name}`, errorBox(err, `Image ${summary.name}`)));
      continue;
    }
    const rollout = (image.options || {}).rollout;
    if (!rollout) {
      main.append(section(`Image ${image.name}`, el("p", { text: "Controlled, no rollout started yet." })));
      continue;
    }
    const bySite = new Map((image.bindings || []).map((b) => [b.site_name, b]));
    const waves = (rollout.wave_names || []).map((names, i) => ({ i, names }));
    const all = waves.flatMap((w) => w.names);
    const copied = all.filter((n) => (bySite.get(n) || {}).status === "in-sync").length;
    const pct = all.length ? Math.floor((100 * copied) / all.length) : 0;
    main.append(section(`Image ${image.name}`,
      el("p", { class: "caps" }, "Rollout ", badge(rollout.state), ` wave ${Math.min(rollout.wave + 1, waves.length)} of ${waves.length}`,
        ` · generation ${rollout.generation} · max failures per wave ${rollout.max_failures}`,
        rollout.manual ? " · manual" : "", ` · updated ${fmtTime(rollout.updated_at)}`),
      el("p", { class: "cap rollout-progress" }, "Progress ",
        el("progress", { max: all.length || 1, value: copied, "data-image": image.name,
          "aria-label": `Rollout of image ${image.name}: ${copied} of ${all.length} sites in sync` }),
        el("span", { class: "num", text: `${copied}/${all.length} sites in sync (${pct} %)` })),
      rollout.reason ? el("p", { class: "detail", text: rollout.reason }) : null,
      table(`Waves of image ${image.name}`, ["Wave", "State", "Sites and their copies"], waves, (w) => [
        `Wave ${w.i + 1}`, badge(waveState(rollout, w.i)),
        el("ul", { class: "bindings" }, w.names.map((n) => {
          const b = bySite.get(n);
          return el("li", {}, `${n} `, b ? badge(b.status) : "no copy yet");
        }))], "No wave.")));
  }
}

// ---- inventory search: every tenant resource of every site, from the global view ----------------

const TENANT_KINDS = ["servers", "volumes", "images", "networks", "subnets", "ports", "routers", "floating_ips",
  "security_groups", "keypairs"];
const SEARCH_ROWS = 50;  // rows per kind

// One GET /v1/inventory/{kind}?q= per kind searched (q: a name substring, an id prefix or an exact IP).
// The API scopes the rows: a tenant finds its own project's resources only.
async function viewInventory(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Inventory search" }));
  const p = hashParams();
  const f = { q: p.get("q") || "", kind: p.get("kind") || "", site: p.get("site") || "" };
  const fields = {
    q: el("input", { id: "inv-q", type: "search", value: f.q, placeholder: "name, id or IP address", spellcheck: "false" }),
    kind: el("select", { id: "inv-kind" }, el("option", { value: "", text: "every kind" }),
      TENANT_KINDS.map((k) => el("option", { value: k, text: k.replace("_", " ") }))),
    site: el("input", { id: "inv-site", type: "text", value: f.site, list: "inv-sites", placeholder: "every site",
      spellcheck: "false" }),
  };
  fields.kind.value = f.kind;
  const siteList = el("datalist", { id: "inv-sites" });
  const form = el("form", { class: "filters", id: "inventory-form", role: "search", "aria-label": "Search the inventory" },
    el("label", { for: "inv-q", text: "Find" }), fields.q, el("label", { for: "inv-kind", text: "Kind" }), fields.kind,
    el("label", { for: "inv-site", text: "Site" }), fields.site, siteList, el("button", { type: "submit", text: "Search" }));
  const status = el("p", { id: "inventory-status", class: "status", role: "status" });
  const results = el("div", { id: "inventory-results" });
  main.append(section("Search", form, el("p", { class: "status",
    text: "Every site's servers, volumes, images, networks, ports and more, as Skyfleet last observed them. " +
      "A name matches anywhere, an id from its start, an IP address whole. The search is in the URL: share it." })),
  section("Results", status, results));
  api("/v1/inventory/summary", signal).then((s) => siteList.replaceChildren(
    ...(s.sites || []).map((x) => el("option", { value: x.site })))).catch(() => {});

  let seq = 0;
  const search = async () => {
    const mine = ++seq;
    f.q = fields.q.value.trim();
    f.kind = fields.kind.value;
    f.site = fields.site.value.trim();
    setHashParams("inventory", f);
    if (!f.q && !f.site && !f.kind) {
      status.textContent = "Type a name, an id or an IP address, or choose a kind or a site.";
      results.replaceChildren();
      return;
    }
    status.textContent = "searching…";
    const kinds = f.kind ? [f.kind] : TENANT_KINDS;
    const answers = await Promise.allSettled(kinds.map((kind) => {
      const q = new URLSearchParams({ limit: String(SEARCH_ROWS), sort: "name" });
      if (f.q) q.set("q", f.q);
      if (f.site) q.set("site", f.site);
      return api(`/v1/inventory/${kind}?${q}`, signal);
    }));
    if (mine !== seq || signal.aborted) return;
    const rows = [];
    const full = [];
    const refusals = new Map();
    answers.forEach((a, i) => {
      if (a.status === "fulfilled") {
        rows.push(...a.value.items);
        if (a.value.next_offset !== null && a.value.next_offset !== undefined) full.push(kinds[i]);
      } else if (a.reason instanceof ApiError) {
        refusals.set(`${a.reason.status} ${a.reason.detail}`, a.reason);
      }
    });
    status.replaceChildren(`${rows.length} found` + (full.length
      ? `; only the first ${SEARCH_ROWS} of ${full.join(", ")}: narrow the search` : ""));
    const boxes = [...refusals.values()].map((err) => errorBox(err, "The search"));
    results.replaceChildren(...boxes, table(`Resources found (${rows.length})`,
      ["Name", "Kind", "Site", "Status", "Project", "IP addresses", "Id", "Observed"], rows, (r) => [
        r.name || "(no name)", r.kind, r.site, r.status ? badge(r.status) : "—", r.project_id || "—",
        (r.ips || []).join(", ") || "—", el("code", { text: r.remote_id }),
        el("span", {}, fmtTime(r.observed_at), r.stale ? el("span", { text: " " }) : null, r.stale ? badge("stale") : null)],
      "Nothing found."));
  };
  const again = debounce(search, 300);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  fields.q.addEventListener("input", again);
  fields.site.addEventListener("change", search);
  fields.kind.addEventListener("change", search);
  await search();
}

// ---- identity: the declared projects, users, groups and role assignments (a domain admin's own) ----

const IDENTITY_KINDS = [["projects", "Projects"], ["users", "Users"], ["groups", "Groups"],
  ["role-assignments", "Role assignments"]];

function bindingCounts(r) {
  const c = r.counts || {};
  const parts = Object.entries(c).filter(([, n]) => n).map(([st, n]) => `${st}: ${n}`);
  return parts.join(", ") || "no site yet";
}

function identityRow(kind, r) {
  const s = r.spec || {};
  const common = [badge(r.state), bindingCounts(r), fmtTime(r.updated_at)];
  if (kind === "projects") return [r.name, s.domain || "Default", s.enabled === false ? "no" : "yes", ...common];
  if (kind === "users") return [r.name, s.domain || "Default", s.default_project || "—", (s.groups || []).join(", ") || "—", ...common];
  if (kind === "groups") return [r.name, s.domain || "Default", s.description || "—", ...common];
  const who = s.user ? `user ${s.user}` : `group ${s.group}`;
  const on = s.project ? `project ${s.project}` : `domain ${s.domain || "Default"}`;
  return [r.name, who, s.role, on + (s.inherited ? " (inherited)" : ""), ...common];
}

const IDENTITY_COLUMNS = {
  projects: ["Project", "Domain", "Enabled"], users: ["User", "Domain", "Default project", "Groups"],
  groups: ["Group", "Domain", "Description"], "role-assignments": ["Assignment", "Who", "Role", "On"],
};

// GET /v1/identity/{kind}: the API shows a domain admin its own domain's declarations only, and a
// fleet admin every domain's; anybody else gets its 403.
async function viewIdentity(main, signal) {
  const who = state.who;
  const domain = who && who.domain_admin ? who.domain_name : null;
  main.append(el("h1", { class: "view-title", text: domain ? `Identity of domain ${domain}` : "Identity" }));
  main.append(el("p", { class: "status", id: "identity-scope", text: domain
    ? `As the admin of domain ${domain} you see and declare its projects, users, groups and role assignments, ` +
      "which Skyfleet provisions into every site's Keystone. The fleet (sites, inventory, tenants' resources) is " +
      "for fleet admins and is not shown."
    : "The projects, users, groups and role assignments declared for every site's Keystone." }));
  const answers = await Promise.allSettled(IDENTITY_KINDS.map(([kind]) =>
    apiAll(`/v1/identity/${kind}?limit=1000`, "resources", signal)));
  IDENTITY_KINDS.forEach(([kind, title], i) => {
    const a = answers[i];
    if (a.status === "rejected") {
      const box = errorBox(a.reason, title);
      if (box) main.append(section(title, box));
      return;
    }
    main.append(section(title, table(`${title} declared${domain ? ` in domain ${domain}` : ""}`,
      [...IDENTITY_COLUMNS[kind], "State", "On the sites", "Updated"], a.value, (r) => identityRow(kind, r),
      "None declared.")));
  });
}

// ---- map: sites by latitude and longitude on an equirectangular projection -----------------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

async function viewMap(main, signal) {
  main.append(el("h1", { class: "view-title", text: "Map of the sites" }));
  let sites;
  try {
    sites = await apiAll("/v1/sites?limit=1000", "sites", signal);
  } catch (err) {
    main.append(section("Map", errorBox(err, "The list of sites (fleet admins only)")));
    return;
  }
  const placed = sites.filter((s) => s.location);
  // x = longitude + 180, y = 90 - latitude: one unit per degree, the whole world in 360 x 180
  const grid = [];
  for (let lon = -150; lon < 180; lon += 30) grid.push(svg("line", { x1: lon + 180, y1: 0, x2: lon + 180, y2: 180, class: "grid" }));
  for (let lat = -60; lat < 90; lat += 30) grid.push(svg("line", { x1: 0, y1: 90 - lat, x2: 360, y2: 90 - lat, class: lat === 0 ? "grid equator" : "grid" }));
  const dots = placed.map((s) => {
    const x = s.location.longitude + 180;
    const y = 90 - s.location.latitude;
    return svg("a", { href: `#/site/${encodeURIComponent(s.name)}`, "data-site": s.name, "data-availability": s.availability },
      svg("circle", { cx: x, cy: y, r: 3, class: `dot av-${s.availability}` },
        svg("title", { text: `${s.name}: ${s.availability} (${s.location.latitude}, ${s.location.longitude})` })),
      svg("text", { x: x + 4, y: y + 1.5, class: "label", text: s.name }));
  });
  const map = svg("svg", { viewBox: "0 0 360 180", class: "map", role: "img", id: "site-map",
    "aria-label": `Sites placed by latitude and longitude: ${placed.length} of ${sites.length}` },
  svg("rect", { x: 0, y: 0, width: 360, height: 180, class: "sea" }), grid, dots);
  const legend = el("ul", { class: "tally legend" }, AVAILABILITIES.map((a) =>
    el("li", {}, el("span", { class: `swatch av-${a}`, "aria-hidden": "true" }), " ", a)));
  main.append(section("Map", el("p", { class: "status",
    text: "Equirectangular projection (longitude across, latitude up), lines every 30°; no coastline." }),
  el("div", { class: "scroll" }, map), legend));
  main.append(section("Sites on the map", table("Sites and their location", ["Site", "Availability", "Latitude", "Longitude"],
    sites, (s) => [el("a", { href: `#/site/${encodeURIComponent(s.name)}`, text: s.name }), badge(s.availability),
      s.location ? String(s.location.latitude) : "no location", s.location ? String(s.location.longitude) : "—"],
    "No site.")));
}

// ---- shell: login, routing --------------------------------------------------------------------

const VIEWS = { overview: viewOverview, events: viewEvents, images: viewImages, servers: viewServers,
  operations: viewOperations, quota: viewQuota, rollouts: viewRollouts, map: viewMap, inventory: viewInventory,
  identity: viewIdentity };
// A domain admin reaches its domain's declared identity and nothing of the fleet: the other views are
// not offered (the API would refuse them anyway).
const DOMAIN_ADMIN_VIEWS = new Set(["identity"]);

function domainAdmin() {
  return Boolean(state.who && state.who.domain_admin);
}

function showLogin(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("view").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("login-panel").hidden = false;
  const box = document.getElementById("login-error");
  box.replaceChildren();
  if (message) box.append(message);
  document.getElementById("signin-user").focus();
}

async function route() {
  if (state.abort) state.abort.abort();
  const needLogin = state.authMode !== "noauth" && !state.who;
  if (needLogin || location.hash === "#/login") {
    showLogin(state.notice);
    state.notice = null;
    return;
  }
  state.abort = new AbortController();
  const signal = state.abort.signal;
  document.getElementById("login-panel").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = state.authMode === "noauth";
  const main = document.getElementById("view");
  main.hidden = false;
  main.replaceChildren();
  const parts = (hashPath() || (domainAdmin() ? "identity" : "overview")).split("/");
  let name = parts[0];
  if (domainAdmin() && !DOMAIN_ADMIN_VIEWS.has(name)) name = "identity";
  for (const a of document.querySelectorAll("#nav a")) {
    a.parentElement.hidden = domainAdmin() && !DOMAIN_ADMIN_VIEWS.has(a.dataset.view);
    if (a.dataset.view === (name === "site" ? "overview" : name)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    if (name === "identity") await viewIdentity(main, signal);
    else if (name === "site" && parts[1]) await viewSite(main, signal, decodeURIComponent(parts.slice(1).join("/")));
    else if (name === "quota") await viewQuota(main, signal, decodeURIComponent(parts.slice(1).join("/")));
    else await (VIEWS[name] || viewOverview)(main, signal);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) state.who = null;  // the session ended
    const box = errorBox(err, "This view");
    if (box) main.append(box);
  }
}

function whoOf(session) {
  return { user: session.user_name || "", project: session.project_name || session.project_id || "",
    project_id: session.project_id, fleet_admin: Boolean(session.fleet_admin),
    domain_admin: Boolean(session.domain_admin), domain_name: session.domain_name || "" };
}

// Sign in: Skyfleet keeps the token and sets the HttpOnly session cookie; the page keeps who signed in.
async function openSession(options) {
  let session;
  try {
    session = await api("/v1/auth/session", undefined, Object.assign({ method: "POST" }, options));
  } catch (err) {
    showLogin(errorBox(err, "Sign-in"));
    return false;
  }
  state.who = whoOf(session);
  showWho();
  if (location.hash === "#/login" || !location.hash) location.hash = domainAdmin() ? "#/identity" : "#/overview";
  else route();
  return true;
}

// A pasted token is exchanged for a session at once and forgotten by the page.
async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("token");
  const token = input.value.trim();
  input.value = "";
  await openSession({ headers: { "X-Auth-Token": token } });
}

// User name and password: Skyfleet asks the home Keystone for a project-scoped token and keeps it.
async function signInWithPassword(event) {
  event.preventDefault();
  const field = (id) => document.getElementById(id);
  const password = field("signin-password");
  const body = { username: field("signin-user").value.trim(), password: password.value,
    project: field("signin-project").value.trim(), domain: field("signin-domain").value.trim() || "Default" };
  password.value = "";
  if (!await openSession({ body })) password.focus();
}

function showWho() {
  const who = state.who;
  document.getElementById("who").textContent = state.authMode === "noauth" ? "noauth (this machine only)"
    : who && who.domain_admin ? `${who.user} · admin of domain ${who.domain_name}`
      : who ? `${who.user} · ${who.project}` : "";
}

// Sign out: Skyfleet forgets the session and clears its cookies (DELETE /v1/auth/session).
async function signOut() {
  if (state.abort) state.abort.abort();
  let failed = null;
  try {
    await api("/v1/auth/session", undefined, { method: "DELETE" });
  } catch (err) {
    failed = errorBox(err, "Sign-out");
  }
  state.who = null;
  state.notice = failed;
  showWho();
  if (location.hash === "#/login") route();
  else location.hash = "#/login";
}

async function start() {
  document.getElementById("login").addEventListener("submit", signIn);
  document.getElementById("password-login").addEventListener("submit", signInWithPassword);
  document.getElementById("logout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  try {
    const meta = await api("/");
    state.authMode = meta.auth_mode;
    document.getElementById("version").textContent = `Skyfleet ${meta.version} · auth: ${meta.auth_mode}`;
    if (state.authMode !== "noauth" && csrfToken()) {  // a session cookie may still be live: whose?
      const session = await api("/v1/auth/session");
      state.who = session.authenticated ? whoOf(session) : null;
    }
    showWho();
  } catch (err) {
    document.getElementById("version").replaceChildren(errorBox(err, "Skyfleet") || "");
  }
  route();
}

document.addEventListener("DOMContentLoaded", start);
