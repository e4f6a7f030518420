// web/switchboard.js against the real service (SPEC 5.3, 5.4): chat threads on /ws/chat and
// agent runs on /ws/agent of a real switchboard, with switchboard-sim as its chat model (it
// calls checkAvailability when the text says "available" and ask_user for "ask me <question>").
// JWTs are made here (HS256 via node:crypto) with the secret the service is started with.
//
//   node --test tests/browser/live.test.mjs      (needs build/bin/switchboard and switchboard-sim)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { WebSocket } from "ws";
import { REPO, exited, makeJwt, startStack, stopAll, until } from "./stack.mjs";

const require = createRequire(import.meta.url);
const SB = require(path.join(REPO, "web", "switchboard.js"));
const SECRET = "live-test-secret";
const FAST = { baseMs: 100, maxMs: 400 };
const MONDAY = "Is Monday available for an oil change?";

let stack, client;

before(async () => {
  stack = await startStack({ prefix: "sb-live-", env: { SWITCHBOARD_JWT_SECRET: SECRET } });
  client = SB.connect({ url: stack.base, WebSocket, backoff: FAST });
});
after(() => {
  stopAll();
  if (stack) fs.rmSync(stack.dir, { recursive: true, force: true });
});

const wait = (cond, what, ms = 10000) => until(cond, what, ms);

/* A chat connection that records what it gets. */
function chat(threadId, userId, token) {
  const got = { history: [], messages: [], typing: 0, tools: [], statuses: [] };
  const c = client.chat({
    threadId, userId, token: token || (() => makeJwt(SECRET, { sub: userId })),
    onHistory: (h) => got.history.push(h.map((m) => [m.role, m.text])),
    onMessage: (m) => got.messages.push(m),
    onTyping: () => got.typing++,
    onToolCall: (e) => got.tools.push(e),
    onStatus: (s) => got.statuses.push(s),
  });
  c.got = got;
  return c;
}

const said = (c) => c.got.messages.map((m) => [m.role, m.text]);
const answers = (c) => c.got.messages.filter((m) => m.role === "assistant");

test("chat: two connections on one thread see each other's messages; history on reconnect and after a restart", async () => {
  const thread = "t_live_" + Date.now(), user = "u_live";
  const a = chat(thread, user), b = chat(thread, user);
  await a.connect();
  await b.connect();
  assert.deepEqual(a.got.history, [[]], "a new thread has no history");
  assert.deepEqual(b.got.history, [[]]);

  const cid = a.send(MONDAY);
  await wait(() => answers(a).length === 1 && answers(b).length === 1, "the assistant's answer on both connections");
  for (const c of [a, b]) {
    assert.deepEqual(said(c)[0], ["user", MONDAY], "the user message reaches every connection of the thread");
    assert.ok(c.got.typing >= 1, "typing");
    assert.ok(c.got.tools.some((e) => e.name === "checkAvailability"), "the supervisor's tool call is shown");
  }
  assert.equal(a.got.messages[0].clientMessageId, cid, "the sender's clientMessageId comes back");
  assert.match(answers(a)[0].text, /^Here is what I found: on \d{4}-\d{2}-\d{2}, .* is open at \d\d:\d\d/, "the answer uses the tool's output");

  b.send("Thanks, that is all.");
  await wait(() => answers(a).length === 2 && answers(b).length === 2, "the second answer on both");
  assert.deepEqual(said(a)[2], ["user", "Thanks, that is all."], "a sees b's message");
  const transcript = said(a);
  assert.deepEqual(said(b), transcript, "both connections saw the same thread");

  // A new connection of the thread starts with the whole history, in order.
  a.disconnect();
  const c = chat(thread, user);
  await c.connect();
  assert.deepEqual(c.got.history, [transcript]);
  c.disconnect();

  // The service restarts (SIGTERM drains the store): b reconnects by itself and gets the
  // history again, from the database.
  const mark = b.got.statuses.length;
  stack.sb.kill("SIGTERM");
  assert.equal(await exited(stack.sb, 12000), 0);
  await wait(() => b.got.statuses.slice(mark).includes("disconnected"), "b notices the service is gone");
  await stack.restart("switchboard-restarted");
  await wait(() => b.got.history.length === 2 && b.connected, "b reconnects and gets history", 20000);
  const after = b.got.statuses.slice(mark), want = ["disconnected", "connecting", "connected"];
  assert.ok(want.every((st, i) => after.indexOf(st, i ? after.indexOf(want[i - 1]) : 0) >= 0),
    "went disconnected -> connecting -> connected: " + after.join(","));
  assert.deepEqual(b.got.history[1], transcript, "history after the restart");
  b.send(MONDAY);
  await wait(() => answers(b).length === 3, "the thread goes on after the restart");
  b.disconnect();
});

test("chat: a JWT for another user or with a wrong secret is refused for good", async () => {
  for (const token of [makeJwt(SECRET, { sub: "someone_else" }), makeJwt("not-the-secret", { sub: "u_bad" })]) {
    const c = chat("t_live_bad", "u_bad", token);
    await assert.rejects(c.connect(), (e) => e instanceof SB.SwitchboardError, "refused");
    await wait(() => c.status === "error", "error status");
    c.disconnect();
  }
});

/* A Storage in memory: what localStorage is to a browser tab. */
function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
}

test("chat: without a token a browser is an anonymous user, kept in localStorage across tabs; another browser cannot enter", async () => {
  const thread = "t_anon_" + Date.now();
  const storage = memoryStorage();
  const tab1 = SB.connect({ url: stack.base, WebSocket, backoff: FAST, storage });
  const answered = [];
  const a = tab1.chat({ threadId: thread, onMessage: (m) => m.role === "assistant" && answered.push(m) });
  await a.connect();
  assert.match(a.userId, /^anon_[0-9a-f]{16}$/);
  const key = storage.getItem(tab1.userKeyName);
  assert.ok(key && key.startsWith(a.userId + "."), "the userKey is stored: " + key);
  a.send("Remember this tab");
  await wait(() => answered.length === 1, "the answer");
  a.disconnect();

  // A second tab of the same browser: the same user, the thread's history.
  const tab2 = SB.connect({ url: stack.base, WebSocket, backoff: FAST, storage });
  let history = null;
  const b = tab2.chat({ threadId: thread, onHistory: (h) => (history = h) });
  await b.connect();
  assert.equal(b.userId, a.userId);
  assert.deepEqual(history.map((m) => m.text)[0], "Remember this tab");
  b.disconnect();

  // Another browser is another anonymous user: the thread is not theirs.
  const other = SB.connect({ url: stack.base, WebSocket, backoff: FAST, storage: memoryStorage() });
  const c = other.chat({ threadId: thread });
  await assert.rejects(c.connect(), (e) => e instanceof SB.SwitchboardError, "forbidden");
  assert.notEqual(c.userId, a.userId);
  c.disconnect();
});

test("agent: JWT authentication, start_agent -> step_update -> completion, ask_user question -> answer", async () => {
  const statuses = [];
  const agent = client.agent({ token: () => makeJwt(SECRET, { sub: "agent_live" }), onStatus: (s) => statuses.push(s) });
  const run = agent.run(MONDAY, { runId: "run_live_1" });
  await agent.connect();
  assert.ok(statuses.includes("connected"), statuses.join(","));
  const done = await run.done;
  assert.equal(done.status, "success", JSON.stringify(done));
  assert.equal(done.runId, "run_live_1");
  assert.ok(typeof done.result === "string" && done.result.length > 0, JSON.stringify(done));
  assert.ok(Array.isArray(done.commands), "completion lists commands");
  assert.equal(run.steps.length, 1, JSON.stringify(run.steps));
  assert.equal(run.steps[0].stepNumber, 1);
  assert.equal(run.steps[0].action.type, "tool_call");
  assert.equal(run.steps[0].action.name, "checkAvailability");

  const asked = [];
  const q = agent.run("Please ask me which day suits you", {
    onQuestion: (m) => { asked.push(m.question); q.answer("Monday morning"); },
  });
  const qd = await q.done;
  assert.equal(asked.length, 1);
  assert.match(asked[0], /which day suits you/i, asked[0]);
  assert.ok(q.steps.some((s) => s.action.name === "ask_user"), "ask_user is reported as a step");
  assert.equal(qd.status, "success", JSON.stringify(qd));
  assert.match(qd.result, /Monday morning/, qd.result);
  agent.disconnect();
});

test("agent: an expired JWT or a wrong secret fails authentication for good", async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = [[makeJwt(SECRET, { sub: "a", exp: now - 5 }), /expired/], [makeJwt("wrong", { sub: "a" }), /invalid/]];
  for (const [token, why] of cases) {
    const agent = client.agent({ token });
    await assert.rejects(agent.connect(), (e) => e.code === "authentication_failed" && why.test(e.message), String(why));
    assert.equal(agent.status, "error");
    agent.disconnect();
  }
});
