// Browser end to end (issue 6): Debian's chromium driven by playwright-core against the real
// switchboard and switchboard-sim (agent mode). A fake microphone plays a WAV made with espeak-ng.
//
//   node tests/browser/e2e.mjs [--markdown]     (from the repository root or anywhere)
//
// Environment: SWITCHBOARD_BIN, SWITCHBOARD_SIM_BIN (default build/bin/...), CHROMIUM
// (/usr/bin/chromium), ARTIFACTS (build/test-artifacts). Prints TAP lines, the measured figures,
// and "N passed, N failed"; screenshots and the browser's console go to ARTIFACTS.
//
// The simulator cannot recognise speech; it is started with --transcripts, so the Nth turn its
// VAD hears gets the Nth sentence of SPOKEN as its transcript and the tool rules of a typed turn.
// The fake microphone speaks both sentences (a supervisor question, then "show me pricing"),
// SILENCE_GAP_S apart: far more than the 500 ms of silence that end a turn, and enough for the
// first answer to finish. Typed turns through the message box are checked after them.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { abs, exited, sleep, startStack, stopAll, tmpDir } from "./stack.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ART = abs(process.env.ARTIFACTS || "build/test-artifacts");
const MARKDOWN = process.argv.includes("--markdown");
const STEP_TIMEOUT_MS = 20000;
const SPOKEN = ["Is Monday available for an oil change?", "Show me pricing."];
const SILENCE_LEAD_S = 0.8;
const SILENCE_GAP_S = 4.0;
const SILENCE_TAIL_S = 30.0;

fs.mkdirSync(ART, { recursive: true });
const tmp = tmpDir("sb-e2e-");
let passed = 0, failed = 0, n = 0;

function ok(cond, what, extra) {
  n++;
  if (cond) { passed++; console.log(`ok ${n} - ${what}`); }
  else { failed++; console.log(`not ok ${n} - ${what}${extra ? "\n  # " + extra : ""}`); }
  return cond;
}

process.on("SIGINT", () => { stopAll(); process.exit(130); });

/* ---- The fake microphone's WAV ------------------------------------------------------------ */

function readWav(file) {
  const b = fs.readFileSync(file);
  let off = 12, fmt = null, data = null;
  while (off + 8 <= b.length) {
    const id = b.toString("ascii", off, off + 4), len = b.readUInt32LE(off + 4);
    if (id === "fmt ") fmt = { channels: b.readUInt16LE(off + 10), rate: b.readUInt32LE(off + 12), bits: b.readUInt16LE(off + 22) };
    if (id === "data") data = b.subarray(off + 8, off + 8 + Math.min(len, b.length - off - 8));
    off += 8 + len + (len & 1);
  }
  if (!fmt || !data || fmt.bits !== 16 || fmt.channels !== 1) throw new Error("unexpected WAV from espeak-ng: " + JSON.stringify(fmt));
  return { rate: fmt.rate, pcm: data };
}

function writeWav(file, rate, chunks) {
  const len = chunks.reduce((s, c) => s + c.length, 0);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0); h.writeUInt32LE(36 + len, 4); h.write("WAVE", 8); h.write("fmt ", 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34); h.write("data", 36);
  h.writeUInt32LE(len, 40);
  fs.writeFileSync(file, Buffer.concat([h, ...chunks]));
}

/* Speech with silences around it; returns the file and where each utterance ends (s). */
function makeSpeech() {
  const parts = SPOKEN.map((text, i) => {
    const f = path.join(tmp, "say" + i + ".wav");
    execFileSync("espeak-ng", ["-v", "en-us", "-s", "160", "-w", f, text]);
    return readWav(f);
  });
  const rate = parts[0].rate;
  const silence = (s) => Buffer.alloc(Math.round(s * rate) * 2);
  const chunks = [silence(SILENCE_LEAD_S)];
  const ends = [];
  let t = SILENCE_LEAD_S;
  parts.forEach((p, i) => {
    chunks.push(p.pcm);
    t += p.pcm.length / 2 / rate;
    ends.push(t);
    const gap = i === parts.length - 1 ? SILENCE_TAIL_S : SILENCE_GAP_S;
    chunks.push(silence(gap));
    t += gap;
  });
  const file = path.join(ART, "fake-mic.wav");
  writeWav(file, rate, chunks);
  return { file, ends, rate };
}

/* ---- The test ------------------------------------------------------------------------------ */

async function waitFor(page, fn, arg, what, timeout) {
  try {
    await page.waitForFunction(fn, arg, { timeout: timeout || STEP_TIMEOUT_MS, polling: 50 });
    return true;
  } catch (e) {
    return false;
  }
}

/* True when `want` appears in order (not necessarily adjacent) in the list of statuses. */
function subsequence(list, want) {
  let i = 0;
  for (const s of list) if (s === want[i]) i++;
  return i === want.length;
}

/* ---- Two businesses on one gateway (SPEC 16) ---------------------------------------------- */

const TENANTS = {
  acme: {
    company: { name: "Acme Dental", timezone: "America/New_York" },
    brief: "Acme Dental cleans teeth. ACME-BRIEF-MARKER.",
    pages: { smile: ["top", "prices"] },
    publicKey: "pk_acme_0123456789abcdefghijkl",
    apiSecret: "sk-acme-secret-0123456789",
  },
  beta: {
    company: { name: "Beta Bikes", timezone: "Europe/Berlin" },
    brief: "Beta Bikes repairs bicycles. BETA-BRIEF-MARKER.",
    pages: { shop: ["hero", "repairs", "contact"] },
    publicKey: "pk_beta_0123456789abcdefghijkl",
    apiSecret: "sk-beta-secret-0123456789",
  },
};

/*
 * A tenant's demo page mints with its own key, so its call is that tenant's: the standalone
 * page's widget sends X-Switchboard-Key, and the upstream session.update the simulator recorded
 * carries that tenant's brief. The console lists both tenants and shows the chosen one's site.
 */
async function tenantsTest(browser) {
  const dir = tmpDir("sb-e2e-tenants-");
  for (const [id, cfg] of Object.entries(TENANTS)) fs.writeFileSync(path.join(dir, id + ".json"), JSON.stringify(cfg));
  const stack = await startStack({ prefix: "sb-e2e-t-", env: { SWITCHBOARD_CONFIG: dir } });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  try {
    const page = await context.newPage();
    const mints = [];
    page.on("request", (r) => { if (r.url().endsWith("/api/sessions")) mints.push(r.headers()["x-switchboard-key"]); });
    await page.goto(stack.base + "/demo/beta/shop");
    ok(await page.locator("#repairs").count() === 1 && await page.title() === "Beta Bikes · Shop",
      "/demo/beta/shop renders beta's page from beta's config");
    await page.click("#talk");
    ok(await waitFor(page, () => document.getElementById("widget").dataset.state === "connected"),
      "beta's demo widget connects");
    ok(mints.length >= 1 && mints.every((k) => k === TENANTS.beta.publicKey),
      "beta's demo page mints with beta's publicKey (X-Switchboard-Key)", JSON.stringify(mints));
    const events = await (await fetch(stack.simBase + "/sim/events")).json();
    const accepted = events.sessions.filter((s) => s.http_status === 101);
    const instr = accepted.length ? accepted[accepted.length - 1].events[0].session.instructions : "";
    ok(instr.includes("BETA-BRIEF-MARKER") && !instr.includes("ACME-BRIEF-MARKER"),
      "the call's session.update has beta's instructions", instr.slice(0, 200));
    await page.screenshot({ path: path.join(ART, "demo-tenant-beta.png") });
    await page.close();

    const con = await context.newPage();
    await con.goto(stack.base + "/?tenant=acme");
    const options = await con.$$eval("#tenant option", (os) => os.map((o) => o.textContent));
    ok(options.length === 2 && options[0].startsWith("acme · pk_acme_") && options[1].startsWith("beta · pk_beta_") &&
      await con.locator("#tenant-field").isVisible(), "the console lists the tenants with their public keys", JSON.stringify(options));
    ok(await waitFor(con, () => {
      const f = document.getElementById("site").contentDocument;
      return f && f.getElementById("prices") && f.location.pathname === "/demo/acme/smile";
    }), "the console chosen for acme shows acme's site");
    await con.screenshot({ path: path.join(ART, "console-tenant-acme.png") });
    await con.close();
  } finally {
    await context.close().catch(() => {});
    stack.sb.kill("SIGKILL");
    stack.sim.kill("SIGKILL");
  }
}

async function main() {
  const speech = makeSpeech();
  const stack = await startStack({ prefix: "sb-e2e-", simArgs: ["--transcripts", SPOKEN.join("|")] });
  let sb = stack.sb;
  const base = stack.base;

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      `--use-file-for-fake-audio-capture=${speech.file}%noloop`,
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const page = await context.newPage();
  const consoleLog = fs.createWriteStream(path.join(ART, "browser-console.log"));
  page.on("console", (m) => consoleLog.write(`[${m.type()}] ${m.text()}\n`));
  page.on("pageerror", (e) => consoleLog.write(`[pageerror] ${e.stack || e}\n`));
  const figures = {};

  try {
    await page.goto(base + "/");
    ok(await page.title() === "switchboard · console", "console served at /");
    const frame = page.frameLocator("#site");
    ok(await waitFor(page, () => {
      const f = document.getElementById("site").contentDocument;
      return f && f.getElementById("pricing") && f.getElementById("hero");
    }), "demo site in the frame has the configured sections");

    await page.click("#connect");
    ok(await waitFor(page, () => document.getElementById("status").dataset.state === "connected"),
      "status turns connected");
    const hist = await page.evaluate(() => window.sbConsole.state.statusHistory.map((h) => h.status));
    ok(subsequence(hist, ["connecting", "connected"]), "status went connecting -> connected", hist.join(","));

    // Spoken turn 1: the supervisor question, heard by the sim's VAD and given its words.
    const userLine = (text) => waitFor(page, (t) => [...document.querySelectorAll("#transcript li.line.user.final .text")]
      .some((el) => el.textContent.trim() === t), text);
    ok(await userLine(SPOKEN[0]), "the first spoken turn's user transcript line shows its words", SPOKEN[0]);
    const sup = '.call[data-name="getNextResponseFromSupervisor"]';
    ok(await waitFor(page, (q) => document.querySelector(q + '[data-status="completed"]'), sup),
      "the spoken question calls the supervisor; the call appears in the panel and completes");
    ok(await waitFor(page, (q) => document.querySelector(q + ' .children .call[data-name="checkAvailability"]'), sup),
      "its nested checkAvailability call is shown under it");
    const supArgs = await page.textContent(sup + " > details:first-of-type pre");
    const supOut = await page.textContent(sup + " > details.output pre");
    ok(supOut && supOut.length > 0, "the supervisor call shows its output");
    ok(supArgs && supArgs.includes(SPOKEN[0]), "the supervisor got the spoken words as context", supArgs);
    ok(await waitFor(page, () => document.querySelector("#transcript li.line.assistant.final .text")?.textContent.length > 0),
      "an assistant transcript line appears");
    ok(await waitFor(page, () => window.sbConsole.state.audio.framesScheduled > 5 && window.sbConsole.state.audio.itemsStarted > 0),
      "assistant audio frames are scheduled and start playing");
    ok(await waitFor(page, () => window.sbConsole.state.latencies.length >= 1),
      "end of the spoken supervisor turn -> first audio of its answer measured");
    await page.screenshot({ path: path.join(ART, "console-call.png") });

    // Spoken turn 2: "Show me pricing." -> navigate -> the demo frame scrolls.
    ok(await userLine(SPOKEN[1]), "the second spoken turn's user transcript line shows its words", SPOKEN[1]);
    ok(await waitFor(page, () => document.querySelector('.call[data-name="navigate"][data-status="completed"]')),
      "the spoken navigate turn's tool call completes");
    const navOut = JSON.parse(await page.textContent('.call[data-name="navigate"] > details.output pre'));
    ok(navOut.ok && navOut.acked && navOut.delivered >= 2, "navigate was delivered to the voice socket and the page, and acked", JSON.stringify(navOut));
    const scrolledTo = (section) => waitFor(page, (sec) => {
      const f = document.getElementById("site").contentWindow;
      const el = f.document.getElementById(sec);
      const top = el.getBoundingClientRect().top;
      return f.sbDemo.nav.last && f.sbDemo.nav.last.section === sec && top >= -2 && top < 90;
    }, section);
    ok(await scrolledTo("pricing"), "the demo page scrolled to #pricing");
    await sleep(400); // let the highlight show
    await page.screenshot({ path: path.join(ART, "console-after-navigate.png") });
    await page.locator("#site").screenshot({ path: path.join(ART, "demo-after-navigate.png") });
    ok(await waitFor(page, () => window.sbConsole.state.latencies.length >= 2),
      "end of the spoken navigate turn -> first audio of its answer measured");
    const spokenLatencies = await page.evaluate(() => window.sbConsole.state.latencies.slice(0, 2));
    figures.spokenSupervisorMs = spokenLatencies[0];
    figures.spokenNavigateMs = spokenLatencies[1];
    const userLines = await page.$$eval("#transcript li.line.user.final .text", (els) => els.map((e) => e.textContent.trim()));
    ok(userLines.length === 2 && userLines[0] === SPOKEN[0] && userLines[1] === SPOKEN[1],
      "the VAD heard exactly the two spoken turns, in order", JSON.stringify(userLines));
    void frame;

    // Typed turns through the message box (the conversation.item.create path).
    await page.fill("#text", "Is Tuesday available for an oil change?");
    await page.click("#send");
    ok(await waitFor(page, (q) => document.querySelectorAll(q + '[data-status="completed"]').length >= 2, sup),
      "a typed question calls the supervisor too");
    await page.fill("#text", "go to contact");
    await page.click("#send");
    ok(await scrolledTo("contact"), "a typed navigate scrolls the demo page to #contact");

    // Reconnect: kill switchboard, watch the page go disconnected -> connecting -> connected.
    const mark = await page.evaluate(() => window.sbConsole.state.statusHistory.length);
    sb.kill("SIGKILL");
    ok(await waitFor(page, () => document.getElementById("status").dataset.state !== "connected"),
      "status leaves connected when switchboard dies");
    ok(await waitFor(page, () => /reach switchboard|Reconnecting/.test(document.querySelector("#banner .text").textContent) && !document.getElementById("banner").hidden),
      "a clear message says the server is unreachable");
    await sleep(1500);
    await page.screenshot({ path: path.join(ART, "console-server-down.png") });
    sb = await stack.restart("switchboard2");
    ok(await waitFor(page, () => document.getElementById("status").dataset.state === "connected", null, "", 30000),
      "status is connected again after the restart");
    const after = await page.evaluate((m) => window.sbConsole.state.statusHistory.slice(m).map((h) => h.status), mark);
    ok(subsequence(after, ["disconnected", "connecting", "connected"]), "reconnect went disconnected -> connecting -> connected", after.join(","));
    ok(await waitFor(page, () => document.getElementById("banner").hidden), "the message goes away once connected");

    const m = await page.evaluate(() => window.sbConsole.metrics());
    Object.assign(figures, m);
    await page.screenshot({ path: path.join(ART, "console-reconnected.png") });

    // Mic denied: a clear message, no connection attempt.
    const denied = await context.newPage();
    await denied.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
    });
    await denied.goto(base + "/");
    await denied.click("#connect");
    ok(await waitFor(denied, () => document.getElementById("status").dataset.state === "error" &&
      /Microphone access is blocked/.test(document.querySelector("#banner .text").textContent)),
    "a denied microphone shows error and says how to fix it");
    await denied.screenshot({ path: path.join(ART, "console-mic-denied.png") });
    await denied.close();

    // The demo page on its own: unknown pages are 404, the services page comes from the config.
    const r404 = await page.request.get(base + "/demo/no-such-page");
    ok(r404.status() === 404, "/demo/{unknown} is 404");
    const svc = await context.newPage();
    await svc.goto(base + "/demo/services");
    ok(await svc.locator("#oil-change").count() === 1 && await svc.locator("#widget").isVisible(),
      "/demo/services renders its configured sections and the voice widget");
    await svc.close();
    // SIGTERM drains: exit 0 (under ASan, also no leak).
    sb.kill("SIGTERM");
    const code = await exited(sb, 12000);
    ok(code === 0, "switchboard drains on SIGTERM and exits 0", "exit " + code);

    await tenantsTest(browser);
  } catch (e) {
    ok(false, "unexpected failure", e.stack);
    await page.screenshot({ path: path.join(ART, "failure.png") }).catch(() => {});
  } finally {
    consoleLog.end();
    await browser.close().catch(() => {});
    stopAll();
  }

  const speechAudio = figures.speechToAudioMs || [];
  console.log(`# page load -> session.ready: ${figures.sessionReadyMs} ms (performance timeline, includes the click)`);
  console.log(`# Connect click -> session.ready: ${figures.connectToReadyMs} ms`);
  console.log(`# end of fake speech -> first assistant audio played: ${speechAudio.join(", ")} ms`);
  console.log(`# spoken supervisor turn: end of speech -> first audio of the answer: ${figures.spokenSupervisorMs} ms`);
  console.log(`# spoken navigate turn: end of speech -> first audio of the answer: ${figures.spokenNavigateMs} ms`);
  console.log(`# assistant audio scheduled: ${figures.framesScheduled} frames, ${figures.msScheduled} ms`);
  fs.writeFileSync(path.join(ART, "browser-metrics.json"), JSON.stringify(figures, null, 2));
  if (MARKDOWN) {
    console.log("| console figure (chromium, switchboard-sim agent mode) | ms |");
    console.log("|---|---|");
    console.log(`| page load -> session.ready (the test clicks Connect at once) | ${figures.sessionReadyMs} |`);
    console.log(`| Connect click -> session.ready | ${figures.connectToReadyMs} |`);
    console.log(`| end of fake speech -> first assistant audio played | ${speechAudio.join(", ")} |`);
    console.log(`| spoken supervisor turn: end of speech -> first audio of the answer | ${figures.spokenSupervisorMs} |`);
    console.log(`| spoken navigate turn: end of speech -> first audio of the answer | ${figures.spokenNavigateMs} |`);
  }
  for (const f of ["switchboard", "switchboard2", "sim"]) {
    const p = path.join(stack.dir, f + ".log");
    if (fs.existsSync(p)) fs.copyFileSync(p, path.join(ART, f + ".log"));
  }
  console.log(`1..${n}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => { console.error(e); stopAll(); process.exit(1); });
