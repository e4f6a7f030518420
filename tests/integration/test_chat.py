"""Text chat threads on /ws/chat (SPEC 5.3, 14 "Chat"; seed 001; issue 6) against
switchboard-sim's chat model: authentication (chat tokens bound to their user: anonymous users
with a userKey, or a userId named with the API secret; HS256 JWTs whose sub is the userId), the
per-IP limit on messages (supervisor runs), ownership, history from SQLite (also after a restart), fan-out of the
user message, typing, tool.call events and the assistant message to every connection of a
thread, one run at a time in order, and the text limit.

The simulator's chat model answers "Prime Auto Lab can help with that. You asked: "<text>"" and
calls checkAvailability when the text says "available".
"""
import asyncio
import json
import os
import re
import tempfile
import time

import websockets

from harness import (ANON_USER_RE, USER_KEY_RE, SBTestCase, Server, assert_open, close_quietly,
                     error_event, expect_close, good_jwt, make_jwt, recv_json, recv_until)

SECRET = "chat-test-secret"
API_SECRET = "chat-api-secret-77"
MESSAGE_ID_RE = re.compile(r"^msg_[0-9a-f]{24}$")


def is_type(t):
    return lambda m: isinstance(m, dict) and m.get("type") == t


def assistant(m):
    return isinstance(m, dict) and m.get("type") == "message" and m.get("role") == "assistant"


class ChatCase(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_JWT_SECRET": SECRET}

    async def chat(self, server, thread, user, token=None, expect_history=True):
        """Opens /ws/chat (a fresh JWT for user unless a token is given); returns (ws, history)."""
        ws = self.track(await server.ws("/ws/chat", threadId=thread, userId=user,
                                        token=token if token is not None
                                        else good_jwt(SECRET, sub=user)))
        if not expect_history:
            return ws, None
        h = await recv_json(ws, timeout=5)
        self.assertEqual(h["type"], "history", h)
        self.assertEqual(h["threadId"], thread)
        return ws, h["messages"]

    async def turn(self, ws, text, client_id=None, timeout=8.0):
        """Sends a message; returns every event up to and including the assistant message."""
        msg = {"type": "message", "text": text}
        if client_id is not None:
            msg["clientMessageId"] = client_id
        await ws.send(json.dumps(msg))
        got, skipped = await recv_until(ws, assistant, timeout=timeout)
        return skipped + [got]


class ChatThreadTest(ChatCase):

    async def test_two_connections_both_see_the_conversation(self):
        a, hist = await self.chat(self.server, "t_two", "alice")
        self.assertEqual(hist, [])
        b, hist_b = await self.chat(self.server, "t_two", "alice")
        self.assertEqual(hist_b, [])
        evs_a = await self.turn(a, "What are your hours?", client_id="c1")
        evs_b, _ = [], None
        got, skipped = await recv_until(b, assistant, timeout=8)
        evs_b = skipped + [got]
        for evs in (evs_a, evs_b):
            types = [(e["type"], e.get("role")) for e in evs]
            self.assertEqual(types, [("message", "user"), ("typing", None),
                                     ("message", "assistant")], evs)
            user, asst = evs[0], evs[-1]
            self.assertEqual(user["text"], "What are your hours?")
            self.assertEqual(user["clientMessageId"], "c1")
            self.assertRegex(user["messageId"], MESSAGE_ID_RE)
            self.assertIsInstance(user["at"], int)
            self.assertLess(abs(user["at"] - time.time() * 1000), 60000)
            self.assertIn("You asked: \"What are your hours?\"", asst["text"])
            self.assertRegex(asst["messageId"], MESSAGE_ID_RE)
            self.assertNotIn("clientMessageId", asst)
            self.assertGreaterEqual(asst["at"], user["at"])
        self.assertEqual(evs_a, evs_b)
        # A third connection gets both as history, oldest first, in the history item shape.
        c, hist_c = await self.chat(self.server, "t_two", "alice")
        self.assertEqual(hist_c, [{k: v for k, v in e.items() if k != "type"}
                                  for e in (evs_a[0], evs_a[-1])])
        await close_quietly(a, b, c)

    async def test_tool_calls_reach_every_connection(self):
        a, _ = await self.chat(self.server, "t_tools", "bob")
        b, _ = await self.chat(self.server, "t_tools", "bob")
        evs = await self.turn(a, "Is next Monday available for an oil change?")
        got, skipped = await recv_until(b, assistant, timeout=8)
        self.assertEqual(evs, skipped + [got])
        calls = [e for e in evs if e["type"] == "tool.call"]
        self.assertEqual([(c["name"], c["status"]) for c in calls],
                         [("checkAvailability", "started"), ("checkAvailability", "completed")])
        self.assertEqual(calls[0]["via"], "builtin")
        self.assertIn("serviceType", calls[0]["arguments"])
        self.assertNotIn("parent_call_id", calls[0])
        i_typing = [e["type"] for e in evs].index("typing")
        self.assertLess(i_typing, evs.index(calls[0]))
        self.assertIn("Here is what I found", evs[-1]["text"])

    async def test_messages_answered_one_at_a_time_in_order(self):
        a, _ = await self.chat(self.server, "t_order", "carol")
        for i in range(3):
            await a.send(json.dumps({"type": "message", "text": "question %d" % i}))
        evs = []
        while sum(1 for e in evs if assistant(e)) < 3:
            evs.append(await recv_json(a, timeout=8))
        answers = [e["text"] for e in evs if assistant(e)]
        self.assertEqual([("question %d" % i) in answers[i] for i in range(3)], [True] * 3)
        # Every answer follows its own typing; at most one run is in flight at a time.
        in_flight = 0
        for e in evs:
            if e["type"] == "typing":
                in_flight += 1
                self.assertEqual(in_flight, 1, evs)
            elif assistant(e):
                in_flight -= 1
        users = [e["text"] for e in evs if e.get("role") == "user"]
        self.assertEqual(users, ["question 0", "question 1", "question 2"])

    async def test_text_too_long_keeps_the_socket(self):
        a, _ = await self.chat(self.server, "t_long", "dave")
        await a.send(json.dumps({"type": "message", "text": "\u00e9" * 8001}))
        m = await recv_json(a)
        self.assertEqual(error_event(m), "text_too_long", m)
        await assert_open(a)
        # 8000 code points (16000 bytes) are fine.
        evs = await self.turn(a, "\u00e9" * 8000)
        self.assertEqual(evs[0]["text"], "\u00e9" * 8000)

    async def test_bad_events(self):
        a, _ = await self.chat(self.server, "t_bad", "erin")
        await a.send(json.dumps({"type": "message"}))
        self.assertEqual(error_event(await recv_json(a)), "invalid_event")
        await a.send(json.dumps({"type": "message", "text": "hi", "clientMessageId": 7}))
        self.assertEqual(error_event(await recv_json(a)), "invalid_event")
        await a.send(json.dumps({"type": "response.create"}))
        self.assertEqual(error_event(await recv_json(a)), "unsupported_event")
        await a.send("not json")
        self.assertEqual(error_event(await recv_json(a)), "invalid_json")
        await assert_open(a)

    async def test_another_users_thread_is_forbidden(self):
        a, _ = await self.chat(self.server, "t_owned", "frank")
        await self.turn(a, "mine")
        other, _ = await self.chat(self.server, "t_owned", "mallory", expect_history=False)
        got = await expect_close(other, 1008, "forbidden")
        self.assertEqual(got, [])
        # The owner still can, also after the thread actor went idle and came back.
        await close_quietly(a)
        await asyncio.sleep(0.2)
        b, hist = await self.chat(self.server, "t_owned", "frank")
        self.assertEqual([m["role"] for m in hist], ["user", "assistant"])
        other, _ = await self.chat(self.server, "t_owned", "mallory", expect_history=False)
        await expect_close(other, 1008, "forbidden")

    async def test_chat_token_of_an_anonymous_user(self):
        b = self.server.mint(purpose="chat")
        self.assertRegex(b["userId"], ANON_USER_RE)
        self.assertRegex(b["userKey"], USER_KEY_RE)
        ws, hist = await self.chat(self.server, "t_ek_chat", b["userId"], token=b["token"])
        self.assertEqual(hist, [])
        await close_quietly(ws)
        # Single use: the same token again is refused.
        again, _ = await self.chat(self.server, "t_ek_chat", b["userId"], token=b["token"],
                                   expect_history=False)
        await expect_close(again, 1008, "unauthorized")

    async def test_voice_token_is_refused_and_spent(self):
        tok = self.server.mint("sess_voice_on_chat", purpose="voice")["token"]
        ws, _ = await self.chat(self.server, "t_ek_voice", "gina", token=tok,
                                expect_history=False)
        self.assertEqual(await expect_close(ws, 1008, "unauthorized"), [])
        # Shown once, gone: not even its own /ws takes it now.
        ws = self.track(await self.server.voice("sess_voice_on_chat", tok))
        await expect_close(ws, 1008, "unauthorized")

    async def test_anonymous_token_cannot_claim_another_user(self):
        """The probe's finding: an openly minted chat token carries no user, so it could open
        anyone's thread by naming their userId, read the history and post into it."""
        alice, _ = await self.chat(self.server, "t_alice_private", "alice")
        await self.turn(alice, "my private question")
        anon = self.server.mint(purpose="chat")
        ws, _ = await self.chat(self.server, "t_alice_private", "alice", token=anon["token"],
                                expect_history=False)
        self.assertEqual(await expect_close(ws, 1008, "unauthorized"), [])
        # The token is spent by the failed try: not even its own user can use it now.
        ws, _ = await self.chat(self.server, "t_anon_own", anon["userId"], token=anon["token"],
                                expect_history=False)
        await expect_close(ws, 1008, "unauthorized")
        # Nothing reached Alice's thread.
        await close_quietly(alice)
        _, hist = await self.chat(self.server, "t_alice_private", "alice")
        self.assertEqual([m["text"] for m in hist if m["role"] == "user"],
                         ["my private question"])

    async def test_user_key_mints_for_the_same_user(self):
        first = self.server.mint(purpose="chat")
        ws, _ = await self.chat(self.server, "t_anon_back", first["userId"], token=first["token"])
        await self.turn(ws, "remember me")
        await close_quietly(ws)
        # A later tab presents the userKey: a token for the same user, who finds the thread.
        again = self.server.mint(purpose="chat", userKey=first["userKey"])
        self.assertEqual(again["userId"], first["userId"])
        self.assertEqual(again["userKey"], first["userKey"])
        self.assertNotEqual(again["token"], first["token"])
        ws, hist = await self.chat(self.server, "t_anon_back", again["userId"],
                                   token=again["token"])
        self.assertEqual(hist[0]["text"], "remember me")
        # Another anonymous user is a stranger to that thread.
        other = self.server.mint(purpose="chat")
        self.assertNotEqual(other["userId"], first["userId"])
        ws2, _ = await self.chat(self.server, "t_anon_back", other["userId"],
                                 token=other["token"], expect_history=False)
        await expect_close(ws2, 1008, "forbidden")

    async def test_bad_user_key_401(self):
        key = self.server.mint(purpose="chat")["userKey"]
        uid, mac = key.split(".")
        flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
        other_id = uid[:-1] + ("0" if uid[-1] != "0" else "1")
        for bad in (uid + "." + flipped, other_id + "." + mac, uid, "", "alice." + mac, 7,
                    None, key.upper()):
            with self.subTest(bad=bad):
                r = self.server.mint_raw({"purpose": "chat", "userKey": bad})
                self.assertEqual(r.status, 401, r)
                self.assertEqual(r.json()["error"]["code"], "unauthorized")

    async def test_refused_with_1008_unauthorized(self):
        now = int(time.time())
        cases = {
            "bad threadId": dict(threadId="bad id!", userId="u1",
                                 token=good_jwt(SECRET, sub="u1")),
            "long threadId": dict(threadId="t" * 65, userId="u1",
                                  token=good_jwt(SECRET, sub="u1")),
            "bad userId": dict(threadId="t_ok", userId="", token=good_jwt(SECRET, sub="")),
            "missing userId": dict(threadId="t_ok", token=good_jwt(SECRET, sub="u1")),
            "no token": dict(threadId="t_ok", userId="u1"),
            "unknown ek token": dict(threadId="t_ok", userId="u1", token="ek_" + "0" * 64),
            "garbage token": dict(threadId="t_ok", userId="u1", token="nope"),
            "sub is another user": dict(threadId="t_ok", userId="u1",
                                        token=good_jwt(SECRET, sub="u2")),
            "expired": dict(threadId="t_ok", userId="u1",
                            token=make_jwt(SECRET, {"sub": "u1", "exp": now - 1})),
            "no exp": dict(threadId="t_ok", userId="u1", token=make_jwt(SECRET, {"sub": "u1"})),
            "wrong secret": dict(threadId="t_ok", userId="u1",
                                 token=good_jwt("not-the-secret", sub="u1")),
            "alg none": dict(threadId="t_ok", userId="u1",
                             token=make_jwt("", {"sub": "u1", "exp": now + 60},
                                            header={"alg": "none"}).rsplit(".", 1)[0] + "."),
        }
        for name, q in cases.items():
            with self.subTest(name):
                ws = self.track(await self.server.ws("/ws/chat", **q))
                got = await expect_close(ws, 1008, "unauthorized")
                self.assertEqual(got, [])


class ChatNoSecretTest(ChatCase):
    SERVER_ENV = {"SWITCHBOARD_JWT_SECRET": None}

    async def test_jwt_fails_without_a_secret_ephemeral_still_works(self):
        ws, _ = await self.chat(self.server, "t_nosecret", "hank", expect_history=False)
        await expect_close(ws, 1008, "unauthorized")
        b = self.server.mint(purpose="chat")
        ws, hist = await self.chat(self.server, "t_nosecret", b["userId"], token=b["token"])
        self.assertEqual(hist, [])


class ChatNamedUserTest(ChatCase):
    """A chat token for a chosen userId needs the API secret (SPEC 14 "Voice sessions")."""
    SERVER_ENV = {"SWITCHBOARD_JWT_SECRET": SECRET, "SWITCHBOARD_API_SECRET": API_SECRET}

    def auth(self, secret=API_SECRET):
        return {"Authorization": "Bearer " + secret}

    async def test_user_id_needs_the_api_secret(self):
        for h in (None, self.auth("wrong")):
            r = self.server.mint_raw({"purpose": "chat", "userId": "alice"}, headers=h)
            self.assertEqual(r.status, 401, (h, r))
            self.assertEqual(r.json()["error"]["code"], "unauthorized")
        b = self.server.mint(purpose="chat", userId="alice", headers=self.auth())
        self.assertEqual(b["userId"], "alice")
        self.assertNotIn("userKey", b)
        ws, hist = await self.chat(self.server, "t_named", "alice", token=b["token"])
        self.assertEqual(hist, [])
        # A token for alice does not open bob's connection, and is spent by trying.
        b = self.server.mint(purpose="chat", userId="alice", headers=self.auth())
        ws, _ = await self.chat(self.server, "t_named_bob", "bob", token=b["token"],
                                expect_history=False)
        await expect_close(ws, 1008, "unauthorized")
        ws, _ = await self.chat(self.server, "t_named", "alice", token=b["token"],
                                expect_history=False)
        await expect_close(ws, 1008, "unauthorized")

    async def test_malformed_bodies(self):
        cases = [({"purpose": "chat", "userId": "bad id"}, 400, "invalid_user_id"),
                 ({"purpose": "chat", "userId": "u" * 65}, 400, "invalid_user_id"),
                 ({"purpose": "chat", "userId": 5}, 400, "invalid_user_id"),
                 ({"purpose": "chat", "userId": "alice", "userKey": "x"}, 400,
                  "invalid_request"),
                 ({"userId": "alice"}, 400, "invalid_request"),
                 ({"purpose": "voice", "userKey": "x"}, 400, "invalid_request")]
        for body, status, code in cases:
            with self.subTest(body=body):
                r = self.server.mint_raw(body, headers=self.auth())
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.json()["error"]["code"], code, r)


class ChatRunLimitTest(ChatCase):
    """Every chat message starts a paid supervisor run: SWITCHBOARD_CHAT_RUNS_PER_MIN per client
    IP per minute, then rate_limited error events (the socket stays open)."""
    SERVER_ENV = {"SWITCHBOARD_JWT_SECRET": SECRET, "SWITCHBOARD_CHAT_RUNS_PER_MIN": "3"}

    async def test_messages_past_the_limit_are_refused(self):
        a, _ = await self.chat(self.server, "t_limit_a", "lim")
        for i in range(2):
            await self.turn(a, "question %d" % i)
        # The limit is per IP, not per thread or connection.
        b, _ = await self.chat(self.server, "t_limit_b", "lim")
        await self.turn(b, "question 2")
        await b.send(json.dumps({"type": "message", "text": "one too many"}))
        m = await recv_json(b)
        self.assertEqual(error_event(m), "rate_limited", m)
        await a.send(json.dumps({"type": "message", "text": "another one"}))
        m = await recv_json(a)
        self.assertEqual(error_event(m), "rate_limited", m)
        await assert_open(a)
        await assert_open(b)
        # Another client address has its own budget.
        ws = self.track(await self.server.ws("/ws/chat", local_ip="127.0.0.2", threadId="t_limit_c",
                                             userId="lim2", token=good_jwt(SECRET, sub="lim2")))
        self.assertEqual((await recv_json(ws))["type"], "history")
        evs = await self.turn(ws, "from elsewhere")
        self.assertIn("from elsewhere", evs[-1]["text"])


class ChatRestartTest(ChatCase):
    SERVER_ENV = None

    async def test_history_survives_a_restart(self):
        db = os.path.join(tempfile.mkdtemp(prefix="sbchat-"), "chat.db")
        env = {"SWITCHBOARD_JWT_SECRET": SECRET, "SWITCHBOARD_DB": db}
        s1 = self.own_server(env)
        anon = s1.mint(purpose="chat")
        ws, _ = await self.chat(s1, "t_restart", "ivy")
        first = await self.turn(ws, "before the restart", client_id="cm-1")
        await close_quietly(ws)
        s1.stop()
        s2 = self.own_server(env)
        ws, hist = await self.chat(s2, "t_restart", "ivy")
        self.assertEqual(hist, [{k: v for k, v in e.items() if k != "type"}
                                for e in (first[0], first[-1])])
        self.assertEqual(hist[0]["clientMessageId"], "cm-1")
        # The conversation goes on with the earlier turn as context; ownership survived too.
        second = await self.turn(ws, "after the restart")
        self.assertIn("after the restart", second[-1]["text"])
        other, _ = await self.chat(s2, "t_restart", "jack", expect_history=False)
        await expect_close(other, 1008, "forbidden")
        await close_quietly(ws)
        ws, hist = await self.chat(s2, "t_restart", "ivy")
        self.assertEqual([m["text"] for m in hist][0::2], ["before the restart",
                                                           "after the restart"])
        # The server key that signs userKeys is kept in the database: an anonymous user's key
        # from before the restart still mints for that user.
        again = s2.mint(purpose="chat", userKey=anon["userKey"])
        self.assertEqual(again["userId"], anon["userId"])
        # A new database has a new key.
        s3 = self.own_server({"SWITCHBOARD_JWT_SECRET": SECRET,
                              "SWITCHBOARD_DB": db.replace("chat.db", "other.db")})
        r = s3.mint_raw({"purpose": "chat", "userKey": anon["userKey"]})
        self.assertEqual(r.status, 401, r)
