// Unit tests of web/switchboard.js's protocol handling (SPEC 5.1-5.4) in Node, against a small
// fake switchboard (node:http + ws). The audio helpers need a browser and are covered by e2e.mjs.
//
//   node --test tests/browser/lib.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { WebSocket, WebSocketServer } from "ws";
import { until } from "./stack.mjs";

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SB = require(path.join(HERE, "..", "..", "web", "switchboard.js"));
const FAST = { baseMs: 20, maxMs: 80 };

/* A Storage (getItem/setItem/removeItem) in memory, standing in for localStorage in Node. */
function memoryStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
  };
}

/*
 * A fake service: POST /api/sessions answers from `mint` (chat tokens belong to anonymous users
 * "anon_<n>" with userKey "anon_<n>.key"; a userKey in `refusedKeys` gets 401), WebSockets go to
 * `onSocket(path, ws, query)`.
 */
async function fake(opts) {
  const f = { mints: [], sockets: [], received: [], mintStatus: [], refusedKeys: new Set(), users: 0 };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const parsed = body ? JSON.parse(body) : {};
      f.mints.push(parsed);
      const st = f.mintStatus.length ? f.mintStatus.shift() : 200;
      const answer = { sessionId: parsed.sessionId || "x", token: "ek_" + f.mints.length, expiresAt: Date.now() + 60000 };
      if (st === 200 && parsed.purpose === "chat") {
        if (parsed.userKey && f.refusedKeys.has(parsed.userKey)) {
          res.writeHead(401, { "Content-Type": "application/json" });
          return res.end(JSON.stringify({ error: { code: "unauthorized", message: "this userKey is not valid" } }));
        }
        answer.userId = parsed.userKey ? parsed.userKey.split(".")[0] : "anon_" + ++f.users;
        answer.userKey = answer.userId + ".key";
      }
      res.writeHead(st, { "Content-Type": "application/json" });
      if (st !== 200) return res.end(JSON.stringify({ error: { code: st === 503 ? "at_capacity" : "bad", message: "no" } }));
      res.end(JSON.stringify(answer));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, sock, head) => {
    wss.handleUpgrade(req, sock, head, (ws) => {
      const u = new URL(req.url, "http://x");
      const conn = { path: u.pathname, query: Object.fromEntries(u.searchParams), ws, msgs: [] };
      f.sockets.push(conn);
      ws.on("message", (data, isBinary) => {
        const m = isBinary ? { binary: data.length } : JSON.parse(data.toString());
        conn.msgs.push(m);
        f.received.push(m);
        if (!isBinary && m.type === "ping") ws.send('{"type":"pong"}');
      });
      opts.onSocket(conn);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  f.url = "http://127.0.0.1:" + server.address().port;
  f.storage = memoryStorage();
  f.client = SB.connect({ url: f.url, WebSocket, backoff: FAST, storage: f.storage });
  f.close = () => { for (const s of f.sockets) s.ws.terminate(); wss.close(); server.close(); };
  return f;
}

test("backoff grows exponentially, is capped, and jitters within half", () => {
  const lo = (a) => SB.backoffDelay(a, { baseMs: 100, maxMs: 1000, random: () => 0 });
  const hi = (a) => SB.backoffDelay(a, { baseMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.deepEqual([0, 1, 2, 3, 4, 10].map(lo), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map(hi), [100, 200, 400, 800, 1000, 1000]);
  const seen = new Set(Array.from({ length: 50 }, () => SB.backoffDelay(5)));
  assert.ok(seen.size > 10, "jitter spreads reconnects");
});

test("session ids are valid for POST /api/sessions", () => {
  assert.match(SB.newSessionId(), /^session_\d+_[a-z0-9]{9}$/);
});

test("voice: token, session.ready, transcripts, tool calls, commands, audio, text, reconnect", async () => {
  const f = await fake({
    onSocket(c) {
      c.ws.send(JSON.stringify({ type: "session.ready", sessionId: c.query.sessionId, audio: { input_rate: 24000, output_rate: 24000, format: "pcm16" } }));
    },
  });
  const statuses = [], transcripts = [], tools = [], commands = [], audio = [];
  const call = f.client.voice({
    sessionId: "session_test_123", audio: false,
    onStatus: (s) => statuses.push(s),
    onTranscript: (t) => transcripts.push(t),
    onToolCall: (e) => tools.push(e),
    onCommand: (c) => commands.push(c),
    onAudio: (pcm, id) => audio.push([pcm.byteLength, id]),
  });
  const ready = await call.connect();
  assert.equal(ready.sessionId, "session_test_123");
  assert.deepEqual(statuses, ["connecting", "connected"]);
  assert.deepEqual(f.mints[0], { sessionId: "session_test_123" });
  const s = f.sockets[0];
  assert.equal(s.path, "/ws");
  assert.deepEqual(s.query, { sessionId: "session_test_123", token: "ek_1", rate: "24000" });

  s.ws.send(JSON.stringify({ type: "conversation.item.input_audio_transcription.delta", item_id: "u1", delta: "Hel" }));
  s.ws.send(JSON.stringify({ type: "conversation.item.input_audio_transcription.completed", item_id: "u1", transcript: "Hello" }));
  s.ws.send(JSON.stringify({ type: "response.output_item.added", item: { id: "a1", type: "message" } }));
  s.ws.send(Buffer.alloc(960));
  s.ws.send(JSON.stringify({ type: "response.output_audio_transcript.delta", item_id: "a1", delta: "Hi " }));
  s.ws.send(JSON.stringify({ type: "response.output_audio_transcript.delta", item_id: "a1", delta: "there" }));
  s.ws.send(JSON.stringify({ type: "response.output_audio_transcript.done", item_id: "a1", transcript: "Hi there" }));
  s.ws.send(JSON.stringify({ type: "tool.call", call_id: "c1", name: "navigate", status: "started", arguments: { section: "pricing" }, via: "client" }));
  s.ws.send(JSON.stringify({ type: "command", id: "cmd_1", command: "navigate", page: "homepage", section: "pricing" }));
  await until(() => s.msgs.some((m) => m.type === "command.ack"), "command.ack");
  assert.deepEqual(s.msgs.find((m) => m.type === "command.ack"), { type: "command.ack", id: "cmd_1" });
  assert.deepEqual(audio, [[960, "a1"]]);
  assert.deepEqual(transcripts.map((t) => [t.role, t.text, t.final]), [
    ["user", "Hel", false], ["user", "Hello", true],
    ["assistant", "Hi ", false], ["assistant", "Hi there", false], ["assistant", "Hi there", true]]);
  assert.equal(tools[0].name, "navigate");
  assert.equal(commands[0].section, "pricing");

  assert.ok(call.sendText("show me pricing"));
  assert.ok(call.sendAudio(new Int16Array(480).buffer));
  await until(() => s.msgs.some((m) => m.type === "response.create") && s.msgs.some((m) => m.binary === 960), "text turn and audio");
  const item = s.msgs.find((m) => m.type === "conversation.item.create");
  assert.deepEqual(item.item, { type: "message", role: "user", content: [{ type: "input_text", text: "show me pricing" }] });

  // The server goes away: disconnected, then a new token and socket for the same sessionId.
  s.ws.terminate();
  await until(() => f.sockets.length === 2 && call.connected, "reconnect");
  assert.deepEqual(statuses, ["connecting", "connected", "disconnected", "connecting", "connected"]);
  assert.equal(f.sockets[1].query.token, "ek_2");
  assert.equal(f.sockets[1].query.sessionId, "session_test_123");

  call.disconnect();
  assert.equal(call.status, "disconnected");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(f.sockets.length, 2, "no reconnect after disconnect()");
  f.close();
});

test("voice: refused for good (1008) is a final error; busy (503) is retried", async () => {
  const f = await fake({ onSocket(c) { c.ws.close(1008, "unauthorized"); } });
  f.mintStatus.push(503);
  const statuses = [];
  const call = f.client.voice({ sessionId: "session_test_456", audio: false, onStatus: (s, d) => statuses.push([s, d]) });
  await assert.rejects(call.connect(), (e) => e.closeCode === 1008);
  assert.equal(f.mints.length, 2, "503 was retried");
  assert.equal(statuses[1][0], "error");
  assert.equal(statuses[1][1].code, "at_capacity");
  assert.ok(statuses[1][1].retryInMs > 0);
  const last = statuses[statuses.length - 1];
  assert.equal(last[0], "error");
  assert.equal(last[1].final, true);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(f.sockets.length, 1, "no retry after 1008");
  f.close();
});

test("voice: an unreachable server is an error with a retry, and retries go on", async () => {
  const client = SB.connect({ url: "http://127.0.0.1:9", WebSocket, backoff: FAST });
  const statuses = [];
  const call = client.voice({ sessionId: "session_test_789", audio: false, onStatus: (s, d) => statuses.push([s, d]) });
  call.connect();
  await until(() => statuses.filter((s) => s[0] === "error").length >= 2, "two failed attempts");
  assert.equal(statuses[1][1].code, "unreachable");
  assert.ok(statuses.some((s) => s[0] === "connecting" && s[1].attempt >= 1));
  call.disconnect();
});

test("page: commands are handled and acked; a handler returning false leaves them unacked", async () => {
  const f = await fake({ onSocket() {} });
  const seen = [];
  const page = f.client.page({ sessionId: "session_page_1", page: "homepage", onCommand: (c) => { seen.push(c); return c.section !== "nope"; } });
  await page.connect();
  const s = f.sockets[0];
  assert.equal(s.path, "/ws/page");
  assert.deepEqual(s.query, { sessionId: "session_page_1", page: "homepage" });
  s.ws.send(JSON.stringify({ type: "command", id: "k1", command: "navigate", page: "homepage", section: "nope" }));
  s.ws.send(JSON.stringify({ type: "command", id: "k2", command: "navigate", page: "homepage", section: "pricing" }));
  await until(() => s.msgs.length >= 1, "ack");
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.msgs, [{ type: "command.ack", id: "k2" }]);
  assert.equal(seen.length, 2);
  page.disconnect();
  f.close();
});

test("chat: chat token, history, fan-out events, queued sends, reconnect", async () => {
  const f = await fake({
    onSocket(c) {
      c.ws.send(JSON.stringify({ type: "history", threadId: c.query.threadId, messages: [{ role: "user", text: "earlier", messageId: "m0", at: 1 }] }));
      c.ws.on("message", (d) => {
        const m = JSON.parse(d.toString());
        if (m.type !== "message") return;
        c.ws.send(JSON.stringify({ type: "message", role: "user", text: m.text, messageId: "m1", at: 2, clientMessageId: m.clientMessageId }));
        c.ws.send(JSON.stringify({ type: "typing" }));
        c.ws.send(JSON.stringify({ type: "tool.call", call_id: "t1", name: "checkAvailability", status: "started" }));
        c.ws.send(JSON.stringify({ type: "message", role: "assistant", text: "Yes.", messageId: "m2", at: 3 }));
      });
    },
  });
  const got = { history: [], messages: [], typing: 0, tools: 0 };
  const chat = f.client.chat({
    threadId: "t_1",
    onHistory: (h) => got.history.push(h),
    onMessage: (m) => got.messages.push(m),
    onTyping: () => got.typing++,
    onToolCall: () => got.tools++,
  });
  const cid = chat.send("queued before connect");
  await chat.connect();
  assert.deepEqual(f.mints[0], { purpose: "chat" });
  assert.deepEqual(f.sockets[0].query, { threadId: "t_1", userId: "anon_1", token: "ek_1" });
  assert.equal(chat.userId, "anon_1");
  assert.equal(got.history[0][0].text, "earlier");
  await until(() => got.messages.length === 2, "user echo and assistant answer");
  assert.equal(got.messages[0].clientMessageId, cid);
  assert.equal(got.messages[1].text, "Yes.");
  assert.equal(got.typing, 1);
  assert.equal(got.tools, 1);
  f.sockets[0].ws.terminate();
  await until(() => f.sockets.length === 2 && chat.connected, "reconnect");
  assert.equal(f.sockets[1].query.token, "ek_2", "a fresh chat token per connection");
  assert.deepEqual(f.mints[1], { purpose: "chat", userKey: "anon_1.key" }, "the same user again");
  assert.equal(f.sockets[1].query.userId, "anon_1");
  assert.equal(got.history.length, 2);
  chat.disconnect();
  f.close();
});

test("chat: the anonymous user's key is kept in localStorage for the next tab; a refused key starts a new user", async () => {
  const f = await fake({ onSocket(c) { c.ws.send(JSON.stringify({ type: "history", threadId: c.query.threadId, messages: [] })); } });
  const name = "switchboard.userKey:" + f.url;
  assert.equal(f.client.userKeyName, name);
  const first = f.client.chat({ threadId: "t_mine" });
  await first.connect();
  assert.equal(f.storage.getItem(name), "anon_1.key");
  first.disconnect();

  // A new tab (another client on the same storage) presents the key: the same user.
  const tab2 = SB.connect({ url: f.url, WebSocket, backoff: FAST, storage: f.storage });
  const again = tab2.chat({ threadId: "t_mine" });
  await again.connect();
  assert.deepEqual(f.mints[1], { purpose: "chat", userKey: "anon_1.key" });
  assert.equal(f.sockets[1].query.userId, "anon_1");
  again.disconnect();

  // The server no longer knows the key (a new database): dropped, and a new user minted.
  f.refusedKeys.add("anon_1.key");
  const tab3 = SB.connect({ url: f.url, WebSocket, backoff: FAST, storage: f.storage });
  const fresh = tab3.chat({ threadId: "t_new" });
  await fresh.connect();
  assert.deepEqual(f.mints.slice(2), [{ purpose: "chat", userKey: "anon_1.key" }, { purpose: "chat" }]);
  assert.equal(f.sockets[2].query.userId, "anon_2");
  assert.equal(f.storage.getItem(name), "anon_2.key");
  fresh.disconnect();

  // With no storage at all (Node, blocked storage) the key lives in the client's memory.
  const bare = SB.connect({ url: f.url, WebSocket, backoff: FAST });
  const c1 = bare.chat({ threadId: "t_bare" });
  await c1.connect();
  c1.disconnect();
  const c2 = bare.chat({ threadId: "t_bare" });
  await c2.connect();
  assert.deepEqual(f.mints.slice(-1), [{ purpose: "chat", userKey: "anon_3.key" }]);
  c2.disconnect();
  f.close();
});

test("chat: a JWT is used as is", async () => {
  const f = await fake({ onSocket(c) { c.ws.send('{"type":"history","threadId":"t","messages":[]}'); } });
  const chat = f.client.chat({ threadId: "t", userId: "u", token: () => Promise.resolve("jwt.a.b") });
  await chat.connect();
  assert.equal(f.mints.length, 0);
  assert.equal(f.sockets[0].query.token, "jwt.a.b");
  chat.disconnect();
  f.close();
});

test("agent: authenticate, runs with steps, question/answer, completion, cancel, drop", async () => {
  const f = await fake({
    onSocket(c) {
      c.ws.on("message", (d) => {
        const m = JSON.parse(d.toString());
        if (m.type === "authenticate")
          c.ws.send(JSON.stringify(m.token === "good" ? { type: "authentication", status: "success" } : { type: "authentication", status: "failed", error: "invalid token" }));
        if (m.type === "start_agent" && m.task === "ask") {
          c.ws.send(JSON.stringify({ type: "step_update", runId: m.runId, stepNumber: 1, action: { type: "tool_call", name: "ask_user", arguments: {} }, explanation: "asking" }));
          c.ws.send(JSON.stringify({ type: "question", runId: m.runId, question: "Which day?" }));
        }
        if (m.type === "answer") c.ws.send(JSON.stringify({ type: "completion", runId: m.runId, status: "success", result: "Booked " + m.answer, commands: [] }));
        if (m.type === "cancel_agent") c.ws.send(JSON.stringify({ type: "completion", runId: m.runId, status: "failed", error: "cancelled" }));
      });
    },
  });
  const agent = f.client.agent({ token: "good" });
  const run = agent.run("ask", { runId: "r1", onQuestion: (q) => run.answer("Monday") });
  await agent.connect();
  const done = await run.done;
  assert.equal(done.status, "success");
  assert.equal(done.result, "Booked Monday");
  assert.equal(run.steps[0].action.name, "ask_user");
  const msgs = f.sockets[0].msgs.filter((m) => m.type !== "ping");
  assert.deepEqual(msgs.map((m) => m.type), ["authenticate", "start_agent", "answer"]);
  assert.deepEqual(msgs[2], { type: "answer", runId: "r1", answer: "Monday" });

  const r2 = agent.run("slow", { runId: "r2" });
  await until(() => f.sockets[0].msgs.some((m) => m.runId === "r2"), "start r2");
  r2.cancel();
  assert.equal((await r2.done).error, "cancelled");

  const r3 = agent.run("slow", { runId: "r3" });
  await until(() => f.sockets[0].msgs.some((m) => m.runId === "r3"), "start r3");
  f.sockets[0].ws.terminate();
  assert.equal((await r3.done).error, "disconnected");
  agent.disconnect();
  f.close();
});

test("agent: failed authentication is final", async () => {
  const f = await fake({
    onSocket(c) {
      c.ws.on("message", (d) => {
        if (JSON.parse(d.toString()).type !== "authenticate") return;
        c.ws.send('{"type":"authentication","status":"failed","error":"token expired"}');
        c.ws.close(1008, "unauthorized");
      });
    },
  });
  const statuses = [];
  const agent = f.client.agent({ token: "expired", onStatus: (s, d) => statuses.push([s, d]) });
  await assert.rejects(agent.connect(), (e) => e.code === "authentication_failed" && /expired/.test(e.message));
  const last = statuses[statuses.length - 1];
  assert.equal(last[0], "error");
  assert.equal(last[1].final, true);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(f.sockets.length, 1);
  f.close();
});
