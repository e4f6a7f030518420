// The calls dashboard (SPEC 15): the calls list with filters and cursor paging, a call's detail
// (transcript, nested tool calls, summary and lead fields, CRM status, "run again"), analytics
// for the last 30 days with a chart drawn here in SVG, and live updates by polling (one request
// at a time, paused while the tab is hidden). The API secret is asked once and kept in
// sessionStorage; a 401 asks again. No build step, no library.

const KEY = "switchboard.apiSecret";
const POLL_MS = 3000;
const PAGE = 25;
const $ = (id) => document.getElementById(id);

let secret = sessionStorage.getItem(KEY) || "";
let cursor = null;          // the next page's cursor, null on the last page
let shown = new Map();      // call id -> its row
let selected = null;        // the call whose detail is open
let polling = false;
let waitingLogin = null;

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (secret) headers.Authorization = "Bearer " + secret;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) throw new Unauthorized();
  const body = r.status === 204 ? null : await r.json();
  if (!r.ok) throw new Error((body && body.error && body.error.message) || r.statusText);
  return body;
}

// Shows the secret dialog; resolves when a secret was entered (one dialog at a time).
function askSecret(why) {
  if (waitingLogin) return waitingLogin;
  $("login-why").textContent = why;
  $("secret").value = "";
  const d = $("login");
  waitingLogin = new Promise((resolve) => {
    $("login-form").onsubmit = () => {
      secret = $("secret").value;
      sessionStorage.setItem(KEY, secret);
      waitingLogin = null;
      resolve();
    };
  });
  d.showModal();
  return waitingLogin;
}

// Runs fn, asking for the secret (again) as long as the API says 401.
async function authed(fn) {
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof Unauthorized)) throw e;
      sessionStorage.removeItem(KEY);
      await askSecret(secret ? "That secret was refused. Try again." :
                               "This gateway needs its API secret (or a business's).");
    }
  }
}

// ---- Formatting ----------------------------------------------------------------------------

const fmtTime = (ms) => new Date(ms).toLocaleString();
const fmtClock = (ms) => new Date(ms).toLocaleTimeString();
function fmtDuration(ms) {
  if (ms == null) return "–";
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}
const pct = (x) => (x == null ? "–" : (100 * x).toFixed(0) + "%");
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
function crmState(c) {
  const pc = c.postcall;
  if (!pc) return "none";
  if (pc.state === "running" || pc.state === "pending") return pc.state;
  return pc.steps ? pc.steps.crm : pc.state;
}
function badge(state) {
  return el("span", { class: "badge " + state, text: state });
}

// ---- The list ------------------------------------------------------------------------------

function query(extra = {}) {
  const p = new URLSearchParams();
  const set = (k, v) => { if (v) p.set(k, v); };
  set("from", $("filter-from").value);
  set("to", $("filter-to").value);
  set("channel", $("filter-channel").value);
  set("outcome", $("filter-outcome").value);
  set("q", $("filter-q").value.trim());
  p.set("limit", String(PAGE));
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return "/api/calls?" + p.toString();
}

function rowOf(c) {
  const tr = el("tr", { "data-id": c.id },
    el("td", { text: fmtTime(c.startedAt) }),
    el("td", { text: c.channel }),
    el("td", { text: c.from || "–" }),
    el("td", { text: fmtDuration(c.durationMs) }),
    el("td", { class: "outcome", text: c.outcome || "–" }),
    el("td", { class: "crm" }, badge(crmState(c))));
  tr.addEventListener("click", () => openCall(c.id));
  return tr;
}

function updateRow(tr, c) {
  const fresh = rowOf(c);
  if (tr.innerHTML === fresh.innerHTML) return;
  tr.replaceChildren(...fresh.childNodes);
}

async function loadFirstPage() {
  const page = await authed(() => api(query()));
  const body = $("calls").tBodies[0];
  body.replaceChildren();
  shown = new Map();
  for (const c of page.calls) {
    const tr = rowOf(c);
    if (c.id === selected) tr.classList.add("selected");
    shown.set(c.id, tr);
    body.append(tr);
  }
  cursor = page.nextCursor || null;
  $("more").hidden = !cursor;
  $("empty").hidden = page.calls.length > 0;
}

async function loadMore() {
  if (!cursor) return;
  const page = await authed(() => api(query({ cursor })));
  for (const c of page.calls) {
    if (shown.has(c.id)) continue;
    const tr = rowOf(c);
    shown.set(c.id, tr);
    $("calls").tBodies[0].append(tr);
  }
  cursor = page.nextCursor || null;
  $("more").hidden = !cursor;
}

// New calls go on top; rows already shown take their new state (job status changes).
async function refreshList() {
  const page = await authed(() => api(query()));
  const body = $("calls").tBodies[0];
  let at = body.firstChild;
  for (const c of page.calls) {
    const tr = shown.get(c.id);
    if (tr) {
      updateRow(tr, c);
      at = tr.nextSibling;
    } else {
      const n = rowOf(c);
      n.classList.add("fresh");
      shown.set(c.id, n);
      body.insertBefore(n, at);
    }
  }
  $("empty").hidden = shown.size > 0;
}

// ---- A call's detail -----------------------------------------------------------------------

function toolItem(t, byParent) {
  const kids = byParent.get(t.callId) || [];
  const head = el("summary", {}, el("b", { text: t.name }), " ", badge(t.status),
                  el("span", { class: "muted", text: ` ${t.durationMs ?? "–"} ms · ${t.via || ""}` }));
  const body = el("details", {}, head,
    el("pre", { class: "args", text: "arguments: " + JSON.stringify(t.arguments, null, 1) }),
    el("pre", { class: "output", text: "output: " + (typeof t.output === "string" ? t.output :
                                                    JSON.stringify(t.output, null, 1)) }));
  const li = el("li", { class: "tool", "data-name": t.name }, body);
  if (kids.length) li.append(el("ul", { class: "tools" }, ...kids.map((k) => toolItem(k, byParent))));
  return li;
}

function renderTools(list, target) {
  const ids = new Set(list.map((t) => t.callId));
  const byParent = new Map();
  const roots = [];
  for (const t of list) {
    if (t.parentCallId && ids.has(t.parentCallId)) {
      if (!byParent.has(t.parentCallId)) byParent.set(t.parentCallId, []);
      byParent.get(t.parentCallId).push(t);
    } else {
      roots.push(t);
    }
  }
  target.replaceChildren(...roots.map((t) => toolItem(t, byParent)));
  if (!roots.length) target.append(el("li", { class: "muted", text: "none" }));
}

function renderSummary(s) {
  const box = $("summary");
  if (!s) {
    box.replaceChildren(el("p", { class: "muted", text: "No summary yet." }));
    return;
  }
  const c = s.caller || {};
  const rows = [["Name", c.name], ["Phone", c.phone], ["Email", c.email], ["Reason", s.reason],
                ["Outcome", s.outcome], ["Follow-up", s.followUp], ["Sentiment", s.sentiment]];
  const dl = el("dl", { class: "lead" });
  for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", { text: v ?? "–" }));
  box.replaceChildren(el("p", { class: "text", text: s.summary }), dl);
}

function renderCall(c) {
  $("detail").hidden = false;
  $("detail-title").textContent = `${c.channel} call · ${fmtTime(c.startedAt)}`;
  $("detail-meta").textContent =
    `${c.id} · ${fmtDuration(c.durationMs)} · ${c.endReason || "live"}` +
    (c.from ? ` · from ${c.from}` : "") + (c.tenant ? ` · ${c.tenant}` : "");
  renderSummary(c.summary);
  const pc = c.postcall;
  $("crm-status").replaceWith(Object.assign(badge(pc ? crmState(c) : "none"), { id: "crm-status" }));
  const err = $("postcall-error");
  err.hidden = !(pc && pc.lastError);
  err.textContent = pc && pc.lastError ?
    `Attempt ${pc.attempts}: ${pc.lastError}` + (pc.nextAt ? ` (next try ${fmtClock(pc.nextAt)})` : "") : "";
  const crm = (c.toolCalls || []).filter((t) => t.parentCallId === "postcall");
  const own = (c.toolCalls || []).filter((t) => t.parentCallId !== "postcall");
  renderTools(crm, $("crm-tools"));
  renderTools(own, $("tools"));
  $("transcript").replaceChildren(...(c.transcript || []).map((t) =>
    el("li", { class: t.role }, el("time", { text: fmtClock(t.at) + " · " + t.role }), t.text)));
}

async function openCall(id) {
  selected = id;
  for (const [k, tr] of shown) tr.classList.toggle("selected", k === id);
  renderCall(await authed(() => api("/api/calls/" + encodeURIComponent(id))));
}

async function runAgain() {
  if (!selected) return;
  await authed(() => api(`/api/calls/${encodeURIComponent(selected)}/postcall`, { method: "POST" }));
  $("crm-status").replaceWith(Object.assign(badge("pending"), { id: "crm-status" }));
}

// ---- Analytics -----------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function drawChart(days) {
  const W = 900, H = 140, pad = 18, n = days.length;
  const max = Math.max(1, ...days.map((d) => d.calls));
  const bw = (W - 2 * pad) / n;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
                         "aria-label": "calls per day" });
  days.forEach((d, i) => {
    const h = ((H - 2 * pad) * d.calls) / max, hb = ((H - 2 * pad) * d.booked) / max;
    const x = pad + i * bw + 1;
    const r = svg("rect", { class: "bar", x, y: H - pad - h, width: bw - 2, height: h,
                            "data-date": d.date, "data-calls": d.calls });
    r.append(Object.assign(svg("title", {}), { textContent: `${d.date}: ${d.calls} calls, ${d.booked} booked` }));
    s.append(r, svg("rect", { class: "bar booked", x, y: H - pad - hb, width: bw - 2, height: hb }));
    if (i % 5 === 0 || i === n - 1) {
      const t = svg("text", { x, y: H - 4 });
      t.textContent = d.date.slice(5);
      s.append(t);
    }
  });
  const t = svg("text", { x: 2, y: 12 });
  t.textContent = `max ${max}/day`;
  s.append(t);
  $("chart").replaceChildren(s);
}

async function loadAnalytics() {
  const a = await authed(() => api("/api/analytics?days=30"));
  drawChart(a.days);
  const mix = Object.entries(a.outcomes).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`)
    .join(", ") || "–";
  const kpis = [["Calls", a.calls], ["Average duration", fmtDuration(a.avgDurationMs)],
                ["Booking conversion", pct(a.bookingConversion)],
                ["Tool-call success", pct(a.toolSuccessRate)],
                ["First audio p50 / p95", a.firstAudioMs.p50 == null ? "–" :
                  `${a.firstAudioMs.p50} / ${a.firstAudioMs.p95} ms`],
                ["Outcomes", mix]];
  $("kpis").replaceChildren(...kpis.map(([k, v]) =>
    el("div", { "data-kpi": k }, el("dt", { text: k }), el("dd", { text: String(v) }))));
}

// ---- Live ----------------------------------------------------------------------------------

async function poll() {
  if (polling || document.hidden || waitingLogin) return;
  polling = true;
  try {
    await refreshList();
    if (selected) renderCall(await authed(() => api("/api/calls/" + encodeURIComponent(selected))));
    $("live").textContent = "live · updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("live").textContent = "offline: " + e.message;
  } finally {
    polling = false;
  }
}

async function start() {
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadFirstPage().catch((e) => { $("live").textContent = e.message; });
  });
  $("more").addEventListener("click", () => loadMore());
  $("run-again").addEventListener("click", () => runAgain());
  await loadFirstPage();
  await loadAnalytics();
  $("live").textContent = "live";
  document.body.dataset.ready = "1";
  setInterval(poll, POLL_MS);
  setInterval(() => { if (!document.hidden && !waitingLogin) loadAnalytics().catch(() => {}); },
              10 * POLL_MS);
}

start().catch((e) => { $("live").textContent = "error: " + e.message; });
