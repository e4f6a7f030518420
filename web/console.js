// The switchboard console (SPEC 12): a voice call with its transcript, tool calls and event log,
// and the demo website it can steer. Built on /switchboard.js (window.Switchboard).
const SB = window.Switchboard;
const $ = (id) => document.getElementById(id);

const LOG_MAX = 600;
const SPEECH_RMS = 0.015;      // a 20 ms frame louder than this is speech (about -36 dBFS)
const SPEECH_HANGOVER_MS = 350; // this long below it ends the utterance
const STATUS_TEXT = { connected: "Connected", connecting: "Connecting…", error: "Error", disconnected: "Disconnected" };

const params = new URLSearchParams(location.search);

// The businesses this gateway serves (SPEC 16; public data only: id, name, publicKey). The
// console speaks for one at a time: ?tenant=<id>, else the default one. Its calls mint with that
// tenant's key and its website frame shows that tenant's demo site.
const TENANTS = JSON.parse($("tenants").textContent || "{}");
const tenantList = TENANTS.tenants || [];
const tenant = tenantList.find((t) => t.id === params.get("tenant")) ||
  tenantList.find((t) => t.id === TENANTS.default) || tenantList[0] || { id: "", publicKey: null };
const demoBase = tenant.id && tenant.id !== TENANTS.default ? "/demo/" + encodeURIComponent(tenant.id) + "/" : "/demo/";

const client = SB.connect({ url: location.origin, key: tenant.publicKey || undefined });
const sessionId = SB.tabSessionId();
let call = null;
let currentPage = params.get("page") || "homepage";
let pages = null;

// Figures for people and for the browser test: status history, audio, latency marks.
const state = {
  sessionId,
  statusHistory: [],
  audio: { framesScheduled: 0, msScheduled: 0, itemsStarted: 0 },
  speech: { inSpeech: false, lastVoiced: 0, ends: [], awaitingReply: false },
  latencies: [], // end of local speech -> first assistant audio sounding, ms
  commands: [],
  toolCalls: 0,
};
window.sbConsole = {
  get sessionId() { return sessionId; },
  tenant: tenant.id,
  state,
  metrics() {
    const ready = performance.getEntriesByName("switchboard:session-ready")[0];
    const click = performance.getEntriesByName("console:connect")[0];
    return {
      sessionReadyMs: ready ? Math.round(ready.startTime) : null,
      connectToReadyMs: ready && click ? Math.round(ready.startTime - click.startTime) : null,
      speechToAudioMs: state.latencies.slice(),
      framesScheduled: state.audio.framesScheduled,
      msScheduled: Math.round(state.audio.msScheduled),
    };
  },
  sendText: (t) => sendText(t),
};

/* ---- Status and banner ---------------------------------------------------------------------- */

function setStatus(status, detail) {
  state.statusHistory.push({ status, at: Math.round(performance.now()), detail });
  const el = $("status");
  el.dataset.state = status;
  el.querySelector(".label").textContent = STATUS_TEXT[status] || status;
  const live = status === "connected" || status === "connecting" || (status === "error" && !detail.final) ||
    (status === "disconnected" && call && call._wanted);
  const btn = $("connect");
  btn.textContent = live ? "Disconnect" : "Connect";
  btn.classList.toggle("danger", live);
  const ready = status === "connected";
  $("text").disabled = $("send").disabled = !ready;
  $("mute").disabled = !live;
  if (status === "connected") hideBanner();
  else if (status === "error") showBanner(describe(detail), detail.final ? "error" : "warn");
  else if (status === "disconnected" && call && call._wanted)
    showBanner("Connection lost (" + (detail.reason || "closed") + "). Reconnecting…", "warn");
}

function seconds(ms) { return Math.max(1, Math.round(ms / 1000)) + " s"; }

function describe(d) {
  const retry = d.retryInMs !== undefined ? " Retrying in " + seconds(d.retryInMs) + "…" : "";
  switch (d.code) {
  case "mic_denied":
    return "Microphone access is blocked. Allow the microphone for this site (the icon in the address bar), then press Connect again.";
  case "mic_not_found":
    return "No microphone was found. Plug one in, pick it above and press Connect again.";
  case "mic_unavailable":
    return "This page cannot use the microphone: open it over https or on localhost.";
  case "unreachable":
    return "Can't reach switchboard at " + location.origin + " — is the service running?" + retry;
  case "rate_limited":
    return "Too many sessions started from this address." + retry;
  case "at_capacity":
    return "Switchboard is at capacity right now." + retry;
  case "draining":
    return "Switchboard is restarting." + retry;
  default:
    return (d.message || d.code || "Something went wrong") + (d.closeCode ? " (close " + d.closeCode + ")" : "") + "." + retry;
  }
}

function showBanner(text, kind) {
  const b = $("banner");
  b.dataset.kind = kind || "info";
  b.querySelector(".text").textContent = text;
  b.hidden = false;
}
function hideBanner() { $("banner").hidden = true; }
$("banner").querySelector(".close").onclick = hideBanner;

/* ---- Transcript ----------------------------------------------------------------------------- */

const lines = new Map();

function addLine(role, text, opts) {
  const list = $("transcript");
  const empty = list.querySelector(".empty");
  if (empty) empty.remove();
  const li = document.createElement("li");
  li.className = "line " + role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = (role === "user" ? "Caller" : "Agent") + (opts && opts.typed ? " · typed" : "") + " · " + new Date().toLocaleTimeString();
  const t = document.createElement("span");
  t.className = "text";
  t.textContent = text;
  li.append(who, t);
  list.append(li);
  list.scrollTop = list.scrollHeight;
  return li;
}

function addNote(text) {
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = text;
  $("transcript").append(li);
}

function onTranscript(t) {
  const key = t.role + ":" + t.itemId;
  let li = lines.get(key);
  if (!li) {
    li = addLine(t.role, t.text);
    li.dataset.itemId = t.itemId || "";
    lines.set(key, li);
  }
  li.querySelector(".text").textContent = t.text;
  li.classList.toggle("partial", !t.final);
  li.classList.toggle("final", t.final);
  const list = $("transcript");
  list.scrollTop = list.scrollHeight;
}

/* ---- Function calls ------------------------------------------------------------------------- */

const calls = new Map();

function pretty(v) {
  if (typeof v === "string") {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch (e) { return v; }
  }
  return JSON.stringify(v, null, 2);
}

function details(label, body, open) {
  const d = document.createElement("details");
  if (open) d.open = true;
  const s = document.createElement("summary");
  s.textContent = label;
  const pre = document.createElement("pre");
  pre.textContent = body;
  d.append(s, pre);
  return d;
}

function onToolCall(ev) {
  let card = calls.get(ev.call_id);
  if (!card) {
    const list = $("calls");
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    card = document.createElement("li");
    card.className = "call";
    card.dataset.callId = ev.call_id;
    card.dataset.name = ev.name;
    const head = document.createElement("div");
    head.className = "head";
    head.innerHTML = '<span class="fn"></span><span class="via"></span><span class="dur"></span><span class="state"></span>';
    head.querySelector(".fn").textContent = ev.name;
    head.querySelector(".via").textContent = ev.via || "";
    card.append(head, details("Arguments", pretty(ev.arguments === undefined ? {} : ev.arguments), true));
    const kids = document.createElement("ol");
    kids.className = "children";
    kids.hidden = true;
    card.append(kids);
    const parent = ev.parent_call_id && calls.get(ev.parent_call_id);
    if (parent) {
      const pk = parent.querySelector(":scope > .children");
      pk.hidden = false;
      pk.append(card);
    } else {
      list.prepend(card);
    }
    calls.set(ev.call_id, card);
    state.toolCalls++;
    $("calls-count").textContent = String(calls.size);
  }
  card.dataset.status = ev.status;
  card.querySelector(".state").textContent = ev.status === "started" ? "running" : ev.status;
  if (ev.duration_ms !== undefined) card.querySelector(".dur").textContent = Math.round(ev.duration_ms) + " ms";
  if (ev.output !== undefined && !card.querySelector(":scope > details.output")) {
    const d = details("Output", pretty(ev.output), true);
    d.classList.add("output");
    card.insertBefore(d, card.querySelector(":scope > .children"));
  }
}

/* ---- Event log ------------------------------------------------------------------------------ */

let lastLog = null;

function log(dir, msg) {
  const list = $("log");
  const type = typeof msg === "string" ? msg : msg.type;
  if (lastLog && lastLog.type === type && lastLog.dir === dir && /delta$|audio\.played$|^audio$/.test(type)) {
    lastLog.n++;
    lastLog.li.querySelector(".n").textContent = " ×" + lastLog.n;
    lastLog.msg = msg;
    return;
  }
  const li = document.createElement("li");
  if (type === "error") li.classList.add("error");
  const t = new Date();
  li.innerHTML = '<span class="t"></span><span class="dir"></span><span class="ty"><span class="k"></span><span class="n"></span></span>';
  li.querySelector(".t").textContent = t.toTimeString().slice(0, 8);
  li.querySelector(".dir").textContent = dir === "in" ? "↓" : dir === "out" ? "↑" : "·";
  li.querySelector(".dir").classList.add(dir);
  li.querySelector(".k").textContent = type + (msg.name ? " " + msg.name : "") + (msg.status && type === "tool.call" ? " " + msg.status : "");
  const entry = { type, dir, n: 1, li, msg };
  li.onclick = () => {
    const pre = li.querySelector("pre");
    if (pre) return pre.remove();
    const p = document.createElement("pre");
    p.textContent = typeof entry.msg === "string" ? entry.msg : JSON.stringify(entry.msg, null, 2);
    li.append(p);
  };
  lastLog = entry;
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
  list.append(li);
  while (list.children.length > LOG_MAX) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}
$("clear-log").onclick = () => { $("log").textContent = ""; lastLog = null; };

/* ---- Demo website --------------------------------------------------------------------------- */

const frame = $("site");

function showPage(page, section) {
  currentPage = page;
  const url = demoBase + encodeURIComponent(page) + "?sessionId=" + encodeURIComponent(sessionId) + (section ? "#" + section : "");
  frame.src = url;
  $("site-path").textContent = demoBase + page;
  renderTabs();
}

// A config without the default page: fall back to the site's root, which redirects to its first
// page.
let triedRoot = false;
frame.addEventListener("load", () => {
  let isDemo = false;
  try { isDemo = !!frame.contentWindow.sbDemo; } catch (e) { /* not ours */ }
  if (!isDemo && !triedRoot) {
    triedRoot = true;
    frame.src = demoBase;
  }
});

function renderTabs() {
  const nav = $("pages");
  nav.textContent = "";
  for (const p of Object.keys(pages || {})) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = p;
    if (p === currentPage) b.setAttribute("aria-current", "page");
    b.onclick = () => showPage(p);
    nav.append(b);
  }
}

// The frame tells us the site's pages once it has loaded (they come from the agent config).
window.addEventListener("message", (e) => {
  if (e.origin !== location.origin || !e.data) return;
  if (e.data.type === "switchboard.site") {
    pages = e.data.site.pages;
    currentPage = e.data.site.page;
    $("site-path").textContent = demoBase + currentPage;
    renderTabs();
  } else if (e.data.type === "switchboard.scrolled") {
    state.commands.push({ section: e.data.section, page: e.data.page, via: e.data.via, at: Math.round(performance.now()) });
  }
});

// A command from the voice socket: steer the frame (it also gets it on its own /ws/page).
function onCommand(cmd) {
  log("in", { type: "navigate → " + cmd.page + "#" + cmd.section });
  if (cmd.page && cmd.page !== currentPage) {
    showPage(cmd.page, cmd.section);
    return;
  }
  frame.contentWindow.postMessage({ type: "switchboard.command", command: cmd }, location.origin);
}

/* ---- Tenants -------------------------------------------------------------------------------- */

// With several businesses, a picker: choosing one reloads the console for it (a call in progress
// belongs to the tenant it was minted for, so it ends with the page).
function renderTenants() {
  if (tenantList.length < 2) return;
  const sel = $("tenant");
  for (const t of tenantList) {
    const o = document.createElement("option");
    o.value = t.id;
    o.textContent = t.id + " · " + (t.publicKey || "no key");
    o.title = t.name || "";
    o.dataset.key = t.publicKey || "";
    sel.append(o);
  }
  sel.value = tenant.id;
  $("tenant-field").hidden = false;
  sel.onchange = () => {
    const q = new URLSearchParams(location.search);
    q.set("tenant", sel.value);
    location.search = q.toString();
  };
}

/* ---- Microphones ---------------------------------------------------------------------------- */

async function refreshMics() {
  const sel = $("mic");
  const keep = sel.value;
  let mics = [];
  try { mics = await SB.listMicrophones(); } catch (e) { /* no media devices */ }
  sel.textContent = "";
  const def = document.createElement("option");
  def.value = "";
  def.textContent = "Default microphone";
  sel.append(def);
  mics.forEach((m, i) => {
    if (!m.deviceId || m.deviceId === "default") return;
    const o = document.createElement("option");
    o.value = m.deviceId;
    o.textContent = m.label || "Microphone " + (i + 1);
    sel.append(o);
  });
  sel.value = [...sel.options].some((o) => o.value === keep) ? keep : "";
}
if (navigator.mediaDevices) navigator.mediaDevices.addEventListener("devicechange", refreshMics);
$("mic").onchange = async () => {
  if (call && call._wanted) {
    try { await call.setMicrophone($("mic").value || undefined); addNote("Microphone: " + $("mic").selectedOptions[0].textContent); }
    catch (e) { showBanner(describe(e), "error"); }
  }
};

/* ---- Local speech detection (for the latency figure) ---------------------------------------- */

function onLevel(rms) {
  const m = $("meter");
  m.style.width = Math.min(100, Math.round(Math.sqrt(rms) * 220)) + "%";
  const now = performance.now();
  const s = state.speech;
  if (rms > SPEECH_RMS) {
    s.inSpeech = true;
    s.lastVoiced = now;
  } else if (s.inSpeech && now - s.lastVoiced > SPEECH_HANGOVER_MS) {
    s.inSpeech = false;
    s.ends.push(Math.round(s.lastVoiced));
    s.awaitingReply = true;
    performance.mark("console:speech-end", { startTime: s.lastVoiced });
  }
}

function onPlayback() {
  state.audio.itemsStarted++;
  const s = state.speech;
  if (s.awaitingReply && s.ends.length) {
    s.awaitingReply = false;
    const end = s.ends[s.ends.length - 1];
    state.latencies.push(Math.round(performance.now() - end));
    performance.mark("console:first-audio");
  }
}

/* ---- The call ------------------------------------------------------------------------------- */

function updateAudioStats() {
  const a = state.audio;
  $("audio-stats").textContent = a.framesScheduled
    ? "Assistant audio: " + (a.msScheduled / 1000).toFixed(1) + " s in " + a.framesScheduled + " frames"
    : "No assistant audio yet";
}

async function start() {
  hideBanner();
  performance.mark("console:connect");
  call = client.voice({
    sessionId,
    microphone: $("mic").value || undefined,
    onStatus: setStatus,
    onTranscript,
    onToolCall,
    onCommand,
    onEvent: (m) => log("in", m),
  });
  window.sbConsole.call = call;
  call.on("level", onLevel);
  call.on("playback", onPlayback);
  call.on("audio", (pcm) => log("in", "audio"));
  call.player.on("scheduled", (id, ms) => {
    state.audio.framesScheduled++;
    state.audio.msScheduled += ms;
    updateAudioStats();
  });
  call.on("ready", () => { addNote("Session ready · " + sessionId); refreshMics(); });
  try {
    await call.connect();
  } catch (e) {
    if (e.code && e.code.startsWith("mic")) return; // the banner says what to do
  }
}

function stop() {
  if (call) call.disconnect();
  call = null;
  addNote("Call ended");
}

$("connect").onclick = () => {
  if (call && call._wanted) stop();
  else start();
};

$("mute").onclick = () => {
  if (!call) return;
  const m = !call.muted;
  call.setMuted(m);
  $("mute").setAttribute("aria-pressed", String(m));
  $("mute").textContent = m ? "Unmute" : "Mute";
};

function sendText(text) {
  if (!call || !text) return false;
  if (!call.sendText(text)) return false;
  log("out", { type: "conversation.item.create", text });
  addLine("user", text, { typed: true });
  return true;
}

$("say").onsubmit = (e) => {
  e.preventDefault();
  const input = $("text");
  if (sendText(input.value.trim())) input.value = "";
};

$("session-id").textContent = sessionId;
renderTenants();
showPage(currentPage);
refreshMics();
if (params.get("autoconnect") === "1") start();
