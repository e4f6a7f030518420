/*
 * switchboard.js: the browser client of a switchboard voice-agent gateway (SPEC 4, 5, 12).
 * No dependencies, no build step: load it with <script src="https://your-switchboard/switchboard.js">
 * and use window.Switchboard (or require() it in Node, passing url and WebSocket).
 *
 *   const sb = Switchboard.connect();                 // the server this file came from
 *                                                     // ({ key: "pk_…" }: a business's key on a
 *                                                     // gateway that serves several, SPEC 16)
 *   const call = sb.voice({ onTranscript, onToolCall, onStatus });
 *   await call.connect();                             // token, socket, microphone, playback
 *   sb.page({ page: "homepage" }).connect();          // scroll to sections on agent commands
 *   sb.chat({ threadId }).connect();                  // text chat threads (as this browser's
 *                                                     // anonymous user; or { threadId, userId,
 *                                                     // token } for a user of your own)
 *   sb.agent({ token: jwt }).connect();               // authenticated agent runs
 *
 * Every channel has the same life cycle: status "connecting" -> "connected" -> ("disconnected"
 * or "error") and, unless it was closed on purpose or refused for good, a reconnect after a
 * capped exponential backoff with jitter. Status callbacks receive (status, detail).
 */
(function (root, factory) {
    const api = factory(root);
    if (typeof module === "object" && module.exports) module.exports = api;
    else root.Switchboard = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (root) {
    "use strict";

    const VERSION = "1.0.0";
    const STATUS = Object.freeze({
        CONNECTING: "connecting",
        CONNECTED: "connected",
        DISCONNECTED: "disconnected",
        ERROR: "error",
    });
    const DEFAULT_RATE = 24000;
    const FRAME_MS = 20;
    const PING_INTERVAL_MS = 25000;
    const SILENCE_LIMIT_MS = 70000; // the server pings every 30 s: silence this long is a dead link
    const PLAYED_REPORT_MS = 250;
    const PLAYBACK_LEAD_S = 0.06; // first frame of a burst starts this far ahead: absorbs jitter
    const SESSION_KEY = "switchboard.sessionId";
    const USER_KEY_PREFIX = "switchboard.userKey:"; // + the server's origin, in localStorage

    // Close codes after which reconnecting cannot help (SPEC 14): the server refused this client.
    const FATAL_CLOSE = new Set([1003, 1008, 1009, 4000, 4408, 4409]);

    // The origin this script was loaded from: where its server is, unless told otherwise.
    const scriptOrigin = (function () {
        try {
            const s = root.document && root.document.currentScript;
            if (s && s.src) return new URL(s.src).origin;
            if (root.location && /^https?:$/.test(root.location.protocol)) return root.location.origin;
        } catch (e) { /* not in a browser */ }
        return null;
    })();

    class SwitchboardError extends Error {
        constructor(code, message, extra) {
            super(message || code);
            this.name = "SwitchboardError";
            this.code = code;
            Object.assign(this, extra || {});
        }
    }

    /* ---- Small helpers ---------------------------------------------------------------------- */

    /*
     * Reconnect delay for the given attempt (0-based): base * 2^attempt capped at max, then
     * "equal jitter" (half fixed, half random) so that many clients dropped at once by a restart
     * do not all come back in the same millisecond.
     */
    function backoffDelay(attempt, opts) {
        const o = Object.assign({ baseMs: 500, maxMs: 15000, jitter: 0.5, random: Math.random }, opts);
        const exp = Math.min(o.maxMs, o.baseMs * Math.pow(2, Math.max(0, attempt)));
        return Math.round(exp * (1 - o.jitter) + o.random() * exp * o.jitter);
    }

    function randomId(prefix, n) {
        const chars = "abcdefghijklmnopqrstuvwxyz0123456789";
        let s = "";
        const bytes = new Uint8Array(n);
        if (root.crypto && root.crypto.getRandomValues) root.crypto.getRandomValues(bytes);
        else for (let i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256);
        for (let i = 0; i < n; i++) s += chars[bytes[i] % chars.length];
        return prefix + s;
    }

    /* A sessionId in the seeds' format, session_<ms>_<9 chars>, valid for POST /api/sessions. */
    function newSessionId() {
        return randomId("session_" + Date.now() + "_", 9);
    }

    /* This tab's sessionId: kept in sessionStorage, so reloads keep it and new tabs get their own. */
    function tabSessionId() {
        try {
            const st = root.sessionStorage;
            let id = st.getItem(SESSION_KEY);
            if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
                id = newSessionId();
                st.setItem(SESSION_KEY, id);
            }
            return id;
        } catch (e) {
            return newSessionId();
        }
    }

    function mark(name, detail) {
        try {
            if (root.performance && root.performance.mark) root.performance.mark(name, { detail });
        } catch (e) { /* marks are best effort */ }
    }

    class Emitter {
        constructor() { this._handlers = new Map(); }
        on(type, fn) {
            if (!this._handlers.has(type)) this._handlers.set(type, new Set());
            this._handlers.get(type).add(fn);
            return () => this.off(type, fn);
        }
        off(type, fn) {
            const s = this._handlers.get(type);
            if (s) s.delete(fn);
        }
        emit(type, ...args) {
            const s = this._handlers.get(type);
            if (!s) return;
            for (const fn of Array.from(s)) {
                try { fn(...args); } catch (e) { setTimeout(() => { throw e; }); }
            }
        }
    }

    /* ---- The client ------------------------------------------------------------------------- */

    class Client {
        /*
         * opts.url: the switchboard origin (default: where this script came from);
         * opts.WebSocket / opts.fetch: implementations for non-browser hosts (Node);
         * opts.storage: where this browser's anonymous chat user is kept (getItem, setItem,
         * removeItem; default localStorage, or memory when there is none);
         * opts.key: the business's publicKey on a gateway that serves several (SPEC 16): every
         * mint sends it as X-Switchboard-Key and page channels name it, so calls, chats and
         * commands are that business's.
         */
        constructor(opts) {
            const o = opts || {};
            const base = o.url || scriptOrigin;
            if (!base) throw new SwitchboardError("no_url", "Switchboard.connect needs { url }");
            this.httpBase = String(base).replace(/\/+$/, "");
            this.wsBase = this.httpBase.replace(/^http/, "ws");
            this.WebSocket = o.WebSocket || root.WebSocket;
            this.fetch = o.fetch || (root.fetch && root.fetch.bind(root));
            this.backoff = o.backoff || {};
            this.storage = o.storage || null;
            this.key = o.key || null;
            this._memoryUserKey = null;
        }

        /* The key under which this server's anonymous chat user is stored. */
        get userKeyName() { return USER_KEY_PREFIX + this.httpBase; }

        _store() {
            if (this.storage) return this.storage;
            try { return root.localStorage || null; } catch (e) { return null; } // sandboxed frames throw
        }

        _loadUserKey() {
            const st = this._store();
            try { if (st) return st.getItem(this.userKeyName) || null; } catch (e) { /* blocked */ }
            return this._memoryUserKey;
        }

        _saveUserKey(key) {
            this._memoryUserKey = key || null;
            const st = this._store();
            try {
                if (st && key) st.setItem(this.userKeyName, key);
                else if (st) st.removeItem(this.userKeyName);
            } catch (e) { /* blocked or full: memory keeps it for this page */ }
        }

        /*
         * A chat token for this browser's anonymous user (SPEC 14): the first mint creates the
         * user and its userKey, kept in storage; later mints present the key and get tokens for
         * the same user, so a new tab or a reload finds its threads. A key the server refuses
         * (a new database) is dropped and a new anonymous user begins. Resolves the mint's
         * answer {sessionId, token, expiresAt, userId, userKey}.
         */
        async mintChatToken(headers) {
            const key = this._loadUserKey();
            if (key) {
                try {
                    const again = await this.mintToken({ purpose: "chat", userKey: key }, headers);
                    if (again.userKey) this._saveUserKey(again.userKey);
                    return again;
                } catch (e) {
                    if (e.code !== "unauthorized") throw e;
                    this._saveUserKey(null);
                }
            }
            const fresh = await this.mintToken({ purpose: "chat" }, headers);
            if (fresh.userKey) this._saveUserKey(fresh.userKey);
            return fresh;
        }

        /*
         * POST /api/sessions: a single-use token. body: {sessionId} for voice, {purpose:"chat"}
         * for chat. Resolves {sessionId, token, expiresAt}; rejects with a SwitchboardError whose
         * code is the server's (rate_limited, session_exists, at_capacity, ...) or "unreachable",
         * with `retryable` and, for 429, `retryAfterMs`.
         */
        async mintToken(body, headers) {
            let res;
            try {
                res = await this.fetch(this.httpBase + "/api/sessions", {
                    method: "POST",
                    headers: Object.assign({ "Content-Type": "application/json" },
                        this.key ? { "X-Switchboard-Key": this.key } : {}, headers || {}),
                    body: JSON.stringify(body || {}),
                });
            } catch (e) {
                throw new SwitchboardError("unreachable", "cannot reach switchboard at " + this.httpBase,
                    { retryable: true });
            }
            let json = null;
            try { json = await res.json(); } catch (e) { /* not JSON */ }
            if (res.ok && json && json.token) return json;
            const err = (json && json.error) || {};
            const retryAfter = Number(res.headers.get("Retry-After"));
            throw new SwitchboardError(err.code || "http_" + res.status, err.message || "HTTP " + res.status, {
                status: res.status,
                retryable: res.status === 409 || res.status === 429 || res.status >= 500,
                retryAfterMs: retryAfter > 0 ? retryAfter * 1000 : undefined,
            });
        }

        voice(opts) { return new VoiceSession(this, opts); }
        page(opts) { return new PageChannel(this, opts); }
        chat(opts) { return new ChatThread(this, opts); }
        agent(opts) { return new AgentConnection(this, opts); }
    }

    /*
     * One WebSocket with a life cycle: connect() opens it (subclasses build the URL, which may
     * mint a token), the subclass calls _ready() when its protocol says so, and an unexpected
     * close or failed attempt schedules a reconnect. disconnect() ends it for good.
     * Events: "status" (status, detail), "event" (every JSON message), "open", "close".
     */
    class Channel extends Emitter {
        constructor(client, opts) {
            super();
            this.client = client;
            this.opts = opts || {};
            this.status = STATUS.DISCONNECTED;
            this.attempt = 0;
            this.ws = null;
            this._wanted = false;
            this._retryTimer = null;
            this._pingTimer = null;
            this._lastRx = 0;
            this._wasReady = false;
            if (this.opts.onStatus) this.on("status", this.opts.onStatus);
            if (this.opts.onEvent) this.on("event", this.opts.onEvent);
        }

        get connected() { return this.status === STATUS.CONNECTED; }

        connect() {
            if (this._wanted) return this._readyPromise;
            this._wanted = true;
            this.attempt = 0;
            this._readyPromise = new Promise((resolve, reject) => {
                this._resolveReady = resolve;
                this._rejectReady = reject;
            });
            this._readyPromise.catch(() => {}); // callers that ignore it must not see a rejection
            this._open();
            return this._readyPromise;
        }

        disconnect() {
            this._wanted = false;
            clearTimeout(this._retryTimer);
            this._retryTimer = null;
            this._stopPing();
            if (this.ws) {
                const ws = this.ws;
                this.ws = null;
                try { ws.close(1000, "bye"); } catch (e) { /* already closing */ }
            }
            this._onDown();
            this._setStatus(STATUS.DISCONNECTED, { reason: "closed by the client" });
        }

        /* Sends an object as JSON; false when the socket is not open. */
        send(obj) {
            const ws = this.ws;
            if (!ws || ws.readyState !== 1) return false;
            ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
            return true;
        }

        _setStatus(status, detail) {
            const changed = status !== this.status;
            this.status = status;
            if (changed || status === STATUS.ERROR) this.emit("status", status, detail || {});
        }

        async _open() {
            this._setStatus(STATUS.CONNECTING, { attempt: this.attempt });
            let url;
            try {
                url = await this._url();
            } catch (e) {
                if (!this._wanted) return;
                return this._failed(e.retryable === false, e.code || "error", e.message, e.retryAfterMs);
            }
            if (!this._wanted) return;
            let ws;
            try {
                ws = new this.client.WebSocket(url);
            } catch (e) {
                return this._failed(true, "bad_url", String(e && e.message));
            }
            ws.binaryType = "arraybuffer";
            this.ws = ws;
            this._wasReady = false;
            ws.onopen = () => {
                if (this.ws !== ws) return;
                this._lastRx = Date.now();
                this._startPing();
                this.emit("open");
                this._onOpen();
            };
            ws.onmessage = (ev) => {
                if (this.ws !== ws) return;
                this._lastRx = Date.now();
                if (typeof ev.data === "string") {
                    let msg;
                    try { msg = JSON.parse(ev.data); } catch (e) { return; }
                    if (!msg || typeof msg !== "object") return;
                    if (msg.type === "pong") return;
                    this.emit("event", msg);
                    this._onMessage(msg);
                } else {
                    this._onBinary(ev.data);
                }
            };
            ws.onclose = (ev) => {
                if (this.ws !== ws) return;
                this.ws = null;
                this._stopPing();
                this.emit("close", ev.code, ev.reason);
                this._onDown();
                if (!this._wanted) return;
                const fatal = FATAL_CLOSE.has(ev.code) || this._fatal;
                const reason = ev.reason || (ev.code === 1006 ? "connection lost" : "closed");
                if (this._wasReady && !fatal) {
                    this._setStatus(STATUS.DISCONNECTED, { code: ev.code, reason });
                    this._schedule();
                } else {
                    this._failed(fatal, this._fatalCode || "closed", this._fatalMessage || reason, undefined, ev.code);
                }
            };
            ws.onerror = () => { /* onclose follows with the code */ };
        }

        /* The protocol says the channel is usable. */
        _ready(detail) {
            this._wasReady = true;
            this.attempt = 0;
            this._setStatus(STATUS.CONNECTED, detail);
            if (this._resolveReady) this._resolveReady(detail);
        }

        /* An attempt failed: error status, then a retry unless it is final. */
        _failed(fatal, code, message, retryAfterMs, closeCode) {
            const detail = { code, message, closeCode };
            if (fatal) {
                this._wanted = false;
                this._onFinal();
                this._setStatus(STATUS.ERROR, Object.assign(detail, { final: true }));
                if (this._rejectReady) this._rejectReady(new SwitchboardError(code, message, detail));
                return;
            }
            detail.retryInMs = this._schedule(retryAfterMs);
            this._setStatus(STATUS.ERROR, detail);
        }

        _schedule(minMs) {
            clearTimeout(this._retryTimer);
            const delay = Math.max(minMs || 0, backoffDelay(this.attempt++, Object.assign({}, this.client.backoff, this.opts.backoff)));
            this._retryTimer = setTimeout(() => {
                this._retryTimer = null;
                if (this._wanted) this._open();
            }, delay);
            return delay;
        }

        _startPing() {
            this._stopPing();
            this._pingTimer = setInterval(() => {
                if (Date.now() - this._lastRx > SILENCE_LIMIT_MS && this.ws) {
                    try { this.ws.close(4001, "silent"); } catch (e) { /* closing */ }
                    return;
                }
                this.send({ type: "ping" });
            }, this.opts.pingIntervalMs || PING_INTERVAL_MS);
        }

        _stopPing() {
            clearInterval(this._pingTimer);
            this._pingTimer = null;
        }

        // Subclasses override these.
        async _url() { throw new Error("abstract"); }
        _onOpen() { this._ready(); }
        _onMessage() {}
        _onBinary() {}
        _onDown() {}
        _onFinal() {} // refused for good: no reconnect will follow

        _query(params) {
            const q = new URLSearchParams();
            for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
            return q.toString();
        }
    }

    /* ---- Audio helpers ---------------------------------------------------------------------- */

    // The capture worklet: mono float input -> PCM16 frames of frameMs at the target rate, plus the
    // frame's RMS level. Resamples linearly when the context cannot run at the target rate.
    const CAPTURE_WORKLET = `
class SwitchboardCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.rate = o.rate || 24000;
    this.step = sampleRate / this.rate;
    this.frame = new Int16Array(Math.round(this.rate * (o.frameMs || 20) / 1000));
    this.n = 0; this.pos = 0; this.prev = 0; this.sumsq = 0;
    this.port.onmessage = (e) => { if (e.data === "flush") this.n = 0; };
  }
  push(x) {
    const v = x < -1 ? -1 : x > 1 ? 1 : x;
    this.sumsq += v * v;
    this.frame[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
    if (this.n === this.frame.length) {
      const out = this.frame.slice(0);
      this.port.postMessage({ pcm: out.buffer, rms: Math.sqrt(this.sumsq / out.length), t: currentTime }, [out.buffer]);
      this.n = 0; this.sumsq = 0;
    }
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    if (this.step === 1) { for (let i = 0; i < ch.length; i++) this.push(ch[i]); return true; }
    for (let i = 0; i < ch.length; i++) {
      const cur = ch[i];
      while (this.pos <= 1) { this.push(this.prev + (cur - this.prev) * this.pos); this.pos += this.step; }
      this.pos -= 1; this.prev = cur;
    }
    return true;
  }
}
registerProcessor("switchboard-capture", SwitchboardCapture);
`;

    function audioContextAt(rate) {
        const AC = root.AudioContext || root.webkitAudioContext;
        if (!AC) throw new SwitchboardError("no_audio", "this browser has no Web Audio");
        try { return new AC({ sampleRate: rate, latencyHint: "interactive" }); } catch (e) { return new AC(); }
    }

    /* The microphones the browser knows (labels appear once the user has granted access). */
    async function listMicrophones() {
        const md = root.navigator && root.navigator.mediaDevices;
        if (!md || !md.enumerateDevices) return [];
        const all = await md.enumerateDevices();
        return all.filter((d) => d.kind === "audioinput");
    }

    /*
     * Microphone capture through an AudioWorklet: PCM16 mono frames of frameMs (20) at rate
     * (24000), with echo cancellation, noise suppression and automatic gain control requested
     * so that the agent's own voice from the speakers does not barge in (SPEC 14 "Console").
     * Events: "frame" (ArrayBuffer pcm, {rms, t}), "level" (rms 0..1), "ended".
     */
    class Microphone extends Emitter {
        constructor(opts) {
            super();
            this.opts = Object.assign({ rate: DEFAULT_RATE, frameMs: FRAME_MS }, opts);
            this.context = null;
            this.stream = null;
            this.node = null;
            this.muted = false;
            this.frames = 0;
        }

        async start(deviceId) {
            await this.stop();
            const md = root.navigator && root.navigator.mediaDevices;
            if (!md || !md.getUserMedia)
                throw new SwitchboardError("mic_unavailable", "microphone access needs a secure page (https or localhost)");
            const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };
            const dev = deviceId !== undefined ? deviceId : this.opts.deviceId;
            if (dev) audio.deviceId = { exact: dev };
            try {
                this.stream = await md.getUserMedia({ audio });
            } catch (e) {
                const name = e && e.name;
                if (name === "NotAllowedError" || name === "SecurityError")
                    throw new SwitchboardError("mic_denied", "microphone access was denied");
                if (name === "NotFoundError" || name === "OverconstrainedError")
                    throw new SwitchboardError("mic_not_found", "no microphone was found");
                throw new SwitchboardError("mic_error", "the microphone could not be opened: " + (e && e.message));
            }
            this.context = this.opts.context || audioContextAt(this.opts.rate);
            this._ownContext = !this.opts.context;
            if (this.context.state === "suspended") await this.context.resume().catch(() => {});
            const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "text/javascript" }));
            try { await this.context.audioWorklet.addModule(url); } finally { URL.revokeObjectURL(url); }
            this.node = new AudioWorkletNode(this.context, "switchboard-capture", {
                numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: "explicit",
                processorOptions: { rate: this.opts.rate, frameMs: this.opts.frameMs },
            });
            this.node.port.onmessage = (e) => {
                this.frames++;
                this.emit("level", e.data.rms);
                if (!this.muted) this.emit("frame", e.data.pcm, e.data);
            };
            this.source = this.context.createMediaStreamSource(this.stream);
            this.source.connect(this.node);
            const track = this.stream.getAudioTracks()[0];
            this.label = track ? track.label : "";
            this.deviceId = track && track.getSettings ? track.getSettings().deviceId : dev;
            if (track) track.onended = () => this.emit("ended");
        }

        async stop() {
            if (this.source) this.source.disconnect();
            if (this.node) { this.node.port.onmessage = null; this.node.disconnect(); }
            if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
            if (this.context && this._ownContext) await this.context.close().catch(() => {});
            this.source = this.node = this.stream = null;
            if (this._ownContext) this.context = null;
        }
    }

    /*
     * Gapless playback of PCM16 mono chunks: each chunk is an AudioBuffer scheduled to start
     * exactly where the previous one ends. Chunks belong to an item (the assistant message they
     * speak); played(itemId) is how many ms of it have reached the speakers, the barge-in clock
     * the server is told with audio.played. clear() drops everything queued at once.
     * Events: "start" (itemId) when an item's first chunk begins to sound, "idle" when the queue
     * runs dry, "scheduled" (itemId, ms).
     */
    class Player extends Emitter {
        constructor(opts) {
            super();
            this.opts = Object.assign({ rate: DEFAULT_RATE }, opts);
            this.context = this.opts.context || null;
            this.next = 0;
            this.sources = new Set();
            this.items = new Map(); // itemId -> {chunks:[{start, dur}], startedAt}
            this.framesScheduled = 0;
            this.framesPlayed = 0;
            this.msScheduled = 0;
        }

        async start() {
            if (!this.context) {
                this.context = audioContextAt(this.opts.rate);
                this._ownContext = true;
            }
            if (this.context.state === "suspended") await this.context.resume().catch(() => {});
            this.gain = this.context.createGain();
            this.gain.connect(this.context.destination);
        }

        /* Queues one chunk of PCM16 little-endian mono (ArrayBuffer) for itemId. */
        enqueue(pcm, itemId) {
            if (!this.context) return;
            const ctx = this.context;
            const n = pcm.byteLength >> 1;
            if (n === 0) return;
            const samples = ArrayBuffer.isView(pcm)
                ? new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + n * 2))
                : new Int16Array(pcm, 0, n);
            const buf = ctx.createBuffer(1, samples.length, this.opts.rate);
            const ch = buf.getChannelData(0);
            for (let i = 0; i < samples.length; i++) ch[i] = samples[i] / 0x8000;
            const src = ctx.createBufferSource();
            src.buffer = buf;
            src.connect(this.gain);
            const now = ctx.currentTime;
            const start = this.next > now ? this.next : now + PLAYBACK_LEAD_S;
            src.start(start);
            this.next = start + buf.duration;
            this.framesScheduled++;
            this.msScheduled += buf.duration * 1000;
            let item = this.items.get(itemId);
            if (!item) {
                item = { chunks: [], started: false };
                this.items.set(itemId, item);
                const delayMs = Math.max(0, (start - now) * 1000);
                item.startTimer = setTimeout(() => {
                    item.started = true;
                    this.emit("start", itemId);
                }, delayMs);
            }
            item.chunks.push({ start, dur: buf.duration });
            this.sources.add(src);
            src.onended = () => {
                this.sources.delete(src);
                this.framesPlayed++;
                if (this.sources.size === 0) this.emit("idle");
            };
            this.emit("scheduled", itemId, buf.duration * 1000);
        }

        /* Milliseconds of itemId that have played so far. */
        played(itemId) {
            const item = this.items.get(itemId);
            if (!item || !this.context) return 0;
            const now = this.context.currentTime;
            let s = 0;
            for (const c of item.chunks) {
                if (now <= c.start) break;
                s += Math.min(c.dur, now - c.start);
            }
            return Math.round(s * 1000);
        }

        /* True while anything is queued or sounding. */
        get playing() { return this.sources.size > 0; }

        /* Drops all queued and sounding audio now. */
        clear() {
            for (const src of this.sources) {
                src.onended = null;
                try { src.stop(); } catch (e) { /* not started */ }
                this.framesPlayed++;
            }
            this.sources.clear();
            for (const item of this.items.values()) clearTimeout(item.startTimer);
            if (this.context) this.next = this.context.currentTime;
            this.emit("idle");
        }

        forget(itemId) { this.items.delete(itemId); }

        setVolume(v) { if (this.gain) this.gain.gain.value = v; }

        async stop() {
            this.clear();
            this.items.clear();
            if (this.context && this._ownContext) await this.context.close().catch(() => {});
            if (this._ownContext) this.context = null;
        }
    }

    /* ---- Voice sessions (/ws, SPEC 5.1) ------------------------------------------------------- */

    /*
     * A voice call. opts: sessionId (default: this tab's), rate (24000), microphone (deviceId),
     * audio (default true: capture and play here; false to feed sendAudio()/handle "audio"
     * yourself), autoAck (true), and callbacks onStatus, onEvent, onTranscript({role, itemId,
     * text, final}), onToolCall(event), onCommand(command), onAudio(pcm, itemId), onError.
     * Events of the same names without "on", plus "ready" (session.ready) and "level" (mic rms).
     */
    class VoiceSession extends Channel {
        constructor(client, opts) {
            super(client, Object.assign({ rate: DEFAULT_RATE, audio: true, autoAck: true }, opts));
            const o = this.opts;
            this.sessionId = o.sessionId || tabSessionId();
            this.itemId = null;      // the assistant message item audio belongs to
            this.transcripts = new Map();
            this.muted = false;
            for (const k of ["Transcript", "ToolCall", "Command", "Audio", "Error", "Ready"])
                if (o["on" + k]) this.on(k[0].toLowerCase() + k.slice(1), o["on" + k]);
            if (o.audio) {
                this.mic = new Microphone({ rate: o.rate, deviceId: o.microphone });
                this.player = new Player({ rate: o.rate });
                this.mic.on("frame", (pcm) => this.sendAudio(pcm));
                this.mic.on("level", (rms) => this.emit("level", rms));
                this.player.on("start", (id) => { mark("switchboard:audio-start", { itemId: id }); this.emit("playback", id); });
            }
        }

        /* Opens the microphone and playback first (so a denied mic is reported at once), then the socket. */
        async connect() {
            if (this._wanted) return this._readyPromise;
            if (this.mic) {
                try {
                    await this.player.start();
                    await this.mic.start();
                } catch (e) {
                    await this._stopAudio();
                    this._setStatus(STATUS.ERROR, { code: e.code || "mic_error", message: e.message, final: true });
                    this.emit("error", e);
                    throw e;
                }
            }
            if (this.player) this._playedTimer = setInterval(() => this._reportPlayed(false), PLAYED_REPORT_MS);
            return super.connect();
        }

        disconnect() {
            super.disconnect();
            this._onFinal();
        }

        _onFinal() {
            clearInterval(this._playedTimer);
            this._playedTimer = null;
            this._stopAudio();
        }

        async _stopAudio() {
            if (this.mic) await this.mic.stop().catch(() => {});
            if (this.player) await this.player.stop().catch(() => {});
        }

        async setMicrophone(deviceId) {
            this.opts.microphone = deviceId;
            if (this.mic && this._wanted) await this.mic.start(deviceId);
        }

        setMuted(m) {
            this.muted = !!m;
            if (this.mic) this.mic.muted = this.muted;
        }

        /* PCM16 at the session's rate (ArrayBuffer or typed array). */
        sendAudio(pcm) {
            const ws = this.ws;
            if (!ws || ws.readyState !== 1) return false;
            ws.send(pcm);
            return true;
        }

        /* A typed user turn: the item, then a response. */
        sendText(text) {
            const ok = this.send({ type: "conversation.item.create",
                item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
            if (ok) this.send({ type: "response.create" });
            return ok;
        }

        /* Stops the assistant: cancels the response and drops queued audio. */
        interrupt() {
            this.send({ type: "response.cancel" });
            if (this.player) this.player.clear();
        }

        async _url() {
            const t = await this.client.mintToken({ sessionId: this.sessionId }, this.opts.mintHeaders);
            return this.client.wsBase + "/ws?" + this._query({ sessionId: this.sessionId, token: t.token, rate: this.opts.rate });
        }

        _onOpen() { /* connected once session.ready arrives */ }

        _onDown() {
            if (this.player) this.player.clear();
            this.itemId = null;
        }

        _onMessage(m) {
            switch (m.type) {
            case "session.ready":
                mark("switchboard:session-ready", { sessionId: m.sessionId });
                this.audioFormat = m.audio;
                this._ready({ sessionId: m.sessionId, audio: m.audio });
                this.emit("ready", m);
                break;
            case "response.output_item.added":
                if (m.item && m.item.type === "message") this.itemId = m.item.id;
                break;
            case "audio.clear":
                if (this.player) this.player.clear();
                break;
            case "tool.call":
                this.emit("toolCall", m);
                break;
            case "command": {
                let ack = this.opts.autoAck;
                this.emit("command", m, () => this.send({ type: "command.ack", id: m.id }));
                if (ack) this.send({ type: "command.ack", id: m.id });
                break;
            }
            case "conversation.item.input_audio_transcription.delta":
                this._transcript("user", m.item_id, m.delta, false);
                break;
            case "conversation.item.input_audio_transcription.completed":
                this._transcript("user", m.item_id, m.transcript, true);
                break;
            case "response.output_audio_transcript.delta":
            case "response.output_text.delta":
                this._transcript("assistant", m.item_id, m.delta, false);
                break;
            case "response.output_audio_transcript.done":
            case "response.output_text.done":
                this._transcript("assistant", m.item_id, m.transcript !== undefined ? m.transcript : m.text, true);
                break;
            case "response.output_item.done":
                this._reportPlayed(true);
                break;
            case "error":
                this.emit("error", new SwitchboardError((m.error && m.error.code) || "error", m.error && m.error.message));
                break;
            }
        }

        _transcript(role, itemId, piece, final) {
            const key = role + ":" + (itemId || "");
            let t = this.transcripts.get(key);
            if (!t) { t = { role, itemId, text: "", final: false }; this.transcripts.set(key, t); }
            if (t.final) return; // a late delta after done
            if (final) { t.text = piece !== undefined && piece !== null ? piece : t.text; t.final = true; }
            else t.text += piece || "";
            this.emit("transcript", Object.assign({}, t));
        }

        _onBinary(data) {
            this.emit("audio", data, this.itemId);
            if (this.player) this.player.enqueue(data, this.itemId);
        }

        /* audio.played {item_id, ms} for the current item while it sounds (and once when it ends). */
        _reportPlayed(force) {
            if (!this.player || !this.itemId || !this.connected) return;
            const ms = this.player.played(this.itemId);
            if (ms === this._lastPlayed && !force) return;
            if (ms === 0 && !force) return;
            this._lastPlayed = ms;
            this.send({ type: "audio.played", item_id: this.itemId, ms });
        }
    }

    /* ---- Page command channel (/ws/page, SPEC 5.2) -------------------------------------------- */

    /* Smooth-scrolls to the element with id section; false when there is none. */
    function scrollToSection(section, doc) {
        const d = doc || root.document;
        const el = d && d.getElementById(section);
        if (!el) return false;
        el.scrollIntoView({ behavior: "smooth", block: "start" });
        return true;
    }

    /*
     * A tab's command channel. opts: sessionId (default: this tab's), page, onCommand(command)
     * (default: scroll to command.section; return false to leave it unacked), onStatus.
     */
    class PageChannel extends Channel {
        constructor(client, opts) {
            super(client, opts);
            this.sessionId = this.opts.sessionId || tabSessionId();
            this.page = this.opts.page;
            this.on("command", this.opts.onCommand || ((c) => scrollToSection(c.section)));
        }

        async _url() {
            return this.client.wsBase + "/ws/page?" + this._query({ sessionId: this.sessionId, page: this.page, key: this.client.key });
        }

        _onMessage(m) {
            if (m.type !== "command") return;
            let ok = true;
            const s = this._handlers.get("command");
            if (s) for (const fn of s) { try { if (fn(m) === false) ok = false; } catch (e) { ok = false; } }
            if (ok) this.send({ type: "command.ack", id: m.id });
        }
    }

    /* ---- Chat threads (/ws/chat, SPEC 5.3) ---------------------------------------------------- */

    /*
     * A chat thread. opts: threadId; token (a JWT, or a token your backend minted with the API
     * secret, or an async function returning one) with the userId it is for; without a token,
     * every connection mints a chat token for this browser's anonymous user (Client
     * mintChatToken) and `userId` becomes that user's. Callbacks: onHistory(messages),
     * onMessage(message), onTyping(), onToolCall(event), onError(error), onStatus.
     * send(text) returns the clientMessageId; messages sent while disconnected wait for the next
     * connection.
     */
    class ChatThread extends Channel {
        constructor(client, opts) {
            super(client, opts);
            this.threadId = this.opts.threadId;
            this.userId = this.opts.userId;
            this.messages = [];
            this._outbox = [];
            for (const k of ["History", "Message", "Typing", "ToolCall", "Error"])
                if (this.opts["on" + k]) this.on(k[0].toLowerCase() + k.slice(1), this.opts["on" + k]);
        }

        async _url() {
            const t = this.opts.token;
            let token;
            if (typeof t === "function") token = await t();
            else if (t) token = t;
            else {
                const minted = await this.client.mintChatToken(this.opts.mintHeaders);
                token = minted.token;
                if (minted.userId) this.userId = minted.userId;
            }
            return this.client.wsBase + "/ws/chat?" + this._query({ threadId: this.threadId, userId: this.userId, token });
        }

        _onOpen() { /* connected once history arrives */ }

        send(text) {
            if (typeof text !== "string") return super.send(text);
            const msg = { type: "message", text, clientMessageId: randomId("c_", 12) };
            if (!this.connected || !super.send(msg)) this._outbox.push(msg);
            return msg.clientMessageId;
        }

        _onMessage(m) {
            switch (m.type) {
            case "history":
                this.messages = Array.isArray(m.messages) ? m.messages.slice() : [];
                this._ready({ threadId: m.threadId, messages: this.messages.length });
                this.emit("history", this.messages);
                while (this._outbox.length && super.send(this._outbox[0])) this._outbox.shift();
                break;
            case "message":
                this.messages.push(m);
                this.emit("message", m);
                break;
            case "typing":
                this.emit("typing", m);
                break;
            case "tool.call":
                this.emit("toolCall", m);
                break;
            case "error":
                this.emit("error", new SwitchboardError((m.error && m.error.code) || "error", m.error && m.error.message));
                break;
            }
        }
    }

    /* ---- Agent runs (/ws/agent, SPEC 5.4) ----------------------------------------------------- */

    /* One run: events "step", "question", "complete"; `done` resolves with the completion. */
    class AgentRun extends Emitter {
        constructor(conn, runId, task, opts) {
            super();
            this.conn = conn;
            this.runId = runId;
            this.task = task;
            this.steps = [];
            this.questions = [];
            this.finished = false;
            const o = opts || {};
            if (o.onStep) this.on("step", o.onStep);
            if (o.onQuestion) this.on("question", o.onQuestion);
            if (o.onComplete) this.on("complete", o.onComplete);
            this.done = new Promise((resolve) => { this._resolve = resolve; });
        }
        answer(text) { return this.conn.send({ type: "answer", runId: this.runId, answer: text }); }
        cancel() { return this.conn.send({ type: "cancel_agent", runId: this.runId }); }
        _complete(m) {
            if (this.finished) return;
            this.finished = true;
            this.result = m;
            this.emit("complete", m);
            this._resolve(m);
        }
    }

    /*
     * An authenticated agent connection. opts: token (a JWT with exp, or an async function
     * returning one), onStatus. run(task, {runId, onStep, onQuestion, onComplete}) starts a run
     * (queued until authenticated). A failed authentication is final (status "error").
     * Runs in flight when the socket drops complete with {status:"failed", error:"disconnected"}.
     */
    class AgentConnection extends Channel {
        constructor(client, opts) {
            super(client, opts);
            this.runs = new Map();
            this._pending = [];
        }

        async _url() {
            const t = this.opts.token;
            this._token = typeof t === "function" ? await t() : t;
            if (!this._token) throw new SwitchboardError("no_token", "an agent connection needs a JWT", { retryable: false });
            return this.client.wsBase + "/ws/agent";
        }

        _onOpen() { this.send({ type: "authenticate", token: this._token }); }

        run(task, opts) {
            const o = opts || {};
            const runId = o.runId || randomId("run_", 12);
            const run = new AgentRun(this, runId, task, o);
            this.runs.set(runId, run);
            const msg = { type: "start_agent", runId, task };
            if (!this.connected || !this.send(msg)) this._pending.push(msg);
            return run;
        }

        _onMessage(m) {
            const run = m.runId !== undefined ? this.runs.get(m.runId) : undefined;
            switch (m.type) {
            case "authentication":
                if (m.status === "success") {
                    this._ready();
                    while (this._pending.length && this.send(this._pending[0])) this._pending.shift();
                } else {
                    this._fatal = true;
                    this._fatalCode = "authentication_failed";
                    this._fatalMessage = m.error || "authentication failed";
                }
                break;
            case "step_update":
                if (run) { run.steps.push(m); run.emit("step", m); }
                break;
            case "question":
                if (run) { run.questions.push(m); run.emit("question", m); }
                break;
            case "completion":
                if (run) { this.runs.delete(m.runId); run._complete(m); }
                break;
            case "error":
                if (run && m.error && m.error.code === "duplicate_run_id") {
                    this.runs.delete(m.runId);
                    run._complete({ type: "completion", runId: m.runId, status: "failed", error: "duplicate_run_id" });
                }
                this.emit("error", new SwitchboardError((m.error && m.error.code) || "error", m.error && m.error.message));
                break;
            }
        }

        _onDown() {
            for (const run of this.runs.values())
                run._complete({ type: "completion", runId: run.runId, status: "failed", error: "disconnected" });
            this.runs.clear();
        }
    }

    function connect(opts) { return new Client(opts); }

    return {
        VERSION, STATUS, connect, Client, SwitchboardError, Microphone, Player, listMicrophones,
        VoiceSession, PageChannel, ChatThread, AgentConnection, AgentRun,
        backoffDelay, newSessionId, tabSessionId, scrollToSection,
    };
});
