// The real switchboard and switchboard-sim for the browser tests (e2e.mjs, live.test.mjs):
// child processes on free ports in a temporary directory, their logs, an HS256 JWT maker, and
// a polling wait (also used by lib.test.mjs).
//
// Environment: SWITCHBOARD_BIN, SWITCHBOARD_SIM_BIN (default build/bin/...).
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "..", "..");
export const abs = (p) => (path.isAbsolute(p) ? p : path.join(REPO, p));
export const BIN = abs(process.env.SWITCHBOARD_BIN || "build/bin/switchboard");
export const SIM = abs(process.env.SWITCHBOARD_SIM_BIN || path.join(path.dirname(BIN), "switchboard-sim"));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const children = new Set();

export function stopAll() {
  for (const p of children) { try { p.kill("SIGKILL"); } catch (e) { /* gone */ } }
}
process.on("exit", stopAll);

/* A temporary directory for the processes' working directories, logs and database. */
export function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function startProc(dir, bin, args, env, name) {
  const log = path.join(dir, name + ".log");
  const fd = fs.openSync(log, "a");
  const p = spawn(bin, args, { env, cwd: dir, stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  children.add(p);
  p.on("exit", () => children.delete(p));
  p.logPath = log;
  return p;
}

/* The port a process printed in its "listening on http://host:port/" line. */
export async function waitListening(p, what) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const m = /listening on http:\/\/[^:]+:(\d+)\//.exec(fs.readFileSync(p.logPath, "utf8"));
    if (m) return Number(m[1]);
    if (p.exitCode !== null) break;
    await sleep(20);
  }
  throw new Error(what + " did not start:\n" + fs.readFileSync(p.logPath, "utf8").slice(-2000));
}

/* Resolves with the exit code (or signal) of p, or "timeout". */
export function exited(p, ms) {
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r(p.exitCode ?? p.signalCode);
    const t = setTimeout(() => r("timeout"), ms);
    p.on("exit", (c, sig) => { clearTimeout(t); r(c === null ? sig : c); });
  });
}

/*
 * Starts switchboard-sim (agent mode, simArgs added) and switchboard behind it. Returns
 * { dir, sim, simBase, sb, port, base, env, restart(name) }: env pins the port switchboard got,
 * so restart() (after the caller stopped sb) brings it back on the same port and database.
 */
export async function startStack({ prefix = "sb-browser-", simArgs = [], env: extra = {} } = {}) {
  const dir = tmpDir(prefix);
  const sim = startProc(dir, SIM, ["--port", "0", "--quiet", "--mode", "agent", ...simArgs], process.env, "sim");
  const simPort = await waitListening(sim, "switchboard-sim");
  const env = Object.assign({}, process.env, {
    SWITCHBOARD_PORT: "0",
    SWITCHBOARD_DB: path.join(dir, "var", "switchboard.db"),
    OPENAI_API_KEY: "sk-sim-browser",
    SWITCHBOARD_REALTIME_URL: `ws://127.0.0.1:${simPort}/v1/realtime`,
    SWITCHBOARD_OPENAI_BASE_URL: `http://127.0.0.1:${simPort}/v1`,
    SWITCHBOARD_LOG_LEVEL: "info",
  }, extra);
  const stack = { dir, sim, env, simBase: `http://127.0.0.1:${simPort}` };
  stack.sb = startProc(dir, BIN, [], env, "switchboard");
  stack.port = await waitListening(stack.sb, "switchboard");
  env.SWITCHBOARD_PORT = String(stack.port);
  stack.base = `http://127.0.0.1:${stack.port}`;
  stack.restart = async (name) => {
    stack.sb = startProc(dir, BIN, [], env, name);
    await waitListening(stack.sb, "switchboard (" + name + ")");
    return stack.sb;
  };
  return stack;
}

/* Polls cond every 5 ms; resolves with its first truthy value, rejects after ms. */
export function until(cond, what, ms = 3000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      let v;
      try { v = cond(); } catch (e) { v = false; }
      if (v) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error("timed out waiting for " + what));
      setTimeout(tick, 5);
    };
    tick();
  });
}

/* An HS256 JWT (SPEC 5.3, 5.4) signed with node:crypto; claims default to sub and exp in 5 min. */
export function makeJwt(secret, claims) {
  const b64url = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = b64url({ alg: "HS256", typ: "JWT" }) + "." +
    b64url(Object.assign({ exp: Math.floor(Date.now() / 1000) + 300 }, claims));
  return body + "." + crypto.createHmac("sha256", secret).update(body).digest("base64url");
}
