"""Frame and event rules common to /ws and /ws/page (SPEC 5, 5.1, 14)."""
import asyncio
import json

import websockets.exceptions

from harness import (SBTestCase, assert_no_message, assert_open, error_event, expect_close,
                     recv_json, recv_until)

CONTROL = 2048
AUDIO = 4096

BAD_FRAMES = [
    ("not json", "invalid_json"),
    ("{", "invalid_json"),
    ("[1,2]", "invalid_event"),
    ('{"type":5}', "invalid_event"),
    ("{}", "invalid_event"),
    ('"just a string"', "invalid_event"),
    ("42", "invalid_event"),
    ('{"type":null}', "invalid_event"),
    ('{"type":"session.update"}', "unsupported_event"),
    ('{"type":"no.such.event"}', "unsupported_event"),
]


async def expect_close_or_diagnose(test, ws, frame, n_sent):
    """Expects 1008 "too many errors" now; when it does not come, sends up to 5 more bad frames
    to say after how many errors the socket does close (if at all)."""
    try:
        await expect_close(ws, 1008, "too many errors", timeout=1.5)
        return
    except AssertionError as e:
        first = str(e)
    closed_after = None
    for extra in range(1, 6):
        try:
            await ws.send(frame)
            await expect_close(ws, 1008, "too many errors", timeout=0.5)
            closed_after = n_sent + extra
            break
        except AssertionError:
            continue
        except websockets.exceptions.ConnectionClosed as e:
            closed_after = "%d (closed %s %r)" % (n_sent + extra, e.code, e.reason)
            break
    raise test.failureException(
        "%d counted errors within 10 s did not close the socket with 1008 'too many errors' "
        "(%s); it closed only after %s errors" % (n_sent, first,
                                                   closed_after or "more than %d" % (n_sent + 5)))


class Kinds:
    """Opens a voice (/ws, live) or page (/ws/page) socket on the class server."""

    async def open(self, kind):
        if kind == "voice":
            ws, _ = await self.server.live_voice()
        else:
            self._n = getattr(self, "_n", 0) + 1
            ws = await self.server.page("page_proto_%s_%d" % (self.id().rsplit(".", 1)[-1][:20],
                                                               self._n))
        return self.track(ws)


class FrameLimitsTest(Kinds, SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_MAX_CONTROL_BYTES": str(CONTROL),
                  "SWITCHBOARD_MAX_AUDIO_BYTES": str(AUDIO)}

    async def test_text_at_limit_is_accepted(self):
        frame = '{"type":"ping","pad":"' + "x" * (CONTROL - 24) + '"}'
        self.assertEqual(len(frame), CONTROL)
        for kind in ("voice", "page"):
            with self.subTest(kind=kind):
                ws = await self.open(kind)
                await ws.send(frame)
                self.assertEqual(await recv_json(ws), {"type": "pong"})

    async def test_oversize_text_1009(self):
        frame = '{"type":"ping","pad":"' + "x" * (CONTROL - 23) + '"}'
        self.assertEqual(len(frame), CONTROL + 1)
        for kind in ("voice", "page"):
            with self.subTest(kind=kind):
                ws = await self.open(kind)
                await ws.send(frame)
                await expect_close(ws, 1009, "message too big")

    async def test_oversize_text_counts_bytes_not_chars(self):
        # 1100 two-byte characters: 2200 bytes > 2048.
        frame = '{"type":"ping","pad":"' + "\u00e9" * 1100 + '"}'
        ws = await self.open("page")
        await ws.send(frame)
        await expect_close(ws, 1009, "message too big")

    async def test_oversize_after_reassembly_1009(self):
        parts = ['{"type":"ping","pad":"', "y" * 1100, "y" * 1100, '"}']
        self.assertGreater(sum(len(p) for p in parts), CONTROL)
        for kind in ("voice", "page"):
            with self.subTest(kind=kind):
                ws = await self.open(kind)
                await ws.send(parts)
                await expect_close(ws, 1009, "message too big")

    async def test_binary_at_limit_is_accepted_on_ws(self):
        ws = await self.open("voice")
        await ws.send(b"\x00" * AUDIO)
        await ws.send([b"\x00" * (AUDIO // 2), b"\x00" * (AUDIO // 2)])
        # Accepted: no error and no close; the echo upstream answers with the same audio.
        echoed = 0
        while echoed < 2:
            msg = await asyncio.wait_for(ws.recv(), 5)
            if isinstance(msg, bytes):
                echoed += 1
            else:
                self.assertNotEqual(json.loads(msg).get("type"), "error", msg)
        await assert_open(ws)

    async def test_oversize_binary_1009_on_ws(self):
        ws = await self.open("voice")
        await ws.send(b"\x00" * (AUDIO + 1))
        await expect_close(ws, 1009, "message too big")
        ws = await self.open("voice")
        await ws.send([b"\x01" * 3000, b"\x01" * 1097])  # 4097 after reassembly
        await expect_close(ws, 1009, "message too big")

    async def test_fragmented_json_is_reassembled(self):
        for kind in ("voice", "page"):
            with self.subTest(kind=kind):
                ws = await self.open(kind)
                await ws.send(['{"ty', 'pe":', '"ping"', "}"])
                self.assertEqual(await recv_json(ws), {"type": "pong"})
                await ws.send(["pi", "ng"])
                self.assertEqual(await asyncio.wait_for(ws.recv(), 3), "pong")


class EventErrorsTest(Kinds, SBTestCase):
    SERVER_ENV = {}

    async def test_bad_frames_answer_errors_and_stay_open(self):
        for kind in ("voice", "page"):
            for frame, code in BAD_FRAMES:
                with self.subTest(kind=kind, frame=frame):
                    ws = await self.open(kind)
                    await ws.send(frame)
                    msg = await recv_json(ws)
                    self.assertEqual(msg.get("type"), "error", msg)
                    self.assertEqual(set(msg), {"type", "error"}, msg)
                    self.assertEqual(msg["error"]["code"], code, msg)
                    self.assertIsInstance(msg["error"]["message"], str)
                    await assert_open(ws)

    async def test_voice_only_events_are_unsupported_on_page(self):
        ws = await self.open("page")
        await ws.send('{"type":"response.create"}')
        self.assertEqual(error_event(await recv_json(ws)), "unsupported_event")
        await assert_open(ws)

    async def test_voice_accepts_its_client_events_silently(self):
        ws = await self.open("voice")
        for ev in ({"type": "input_audio_buffer.commit"}, {"type": "input_audio_buffer.clear"},
                   {"type": "response.cancel"}, {"type": "response.create"},
                   {"type": "audio.played", "item_id": "item_1", "ms": 120},
                   {"type": "command.ack", "id": "cmd_unknown"}):
            await ws.send(json.dumps(ev))
        await ws.send('{"type":"ping"}')
        msg, skipped = await recv_until(ws, lambda m: m == {"type": "pong"})
        self.assertEqual([m for m in skipped if error_event(m)], [])

    async def test_19_errors_keep_open_the_20th_closes(self):
        for kind in ("voice", "page"):
            with self.subTest(kind=kind):
                ws = await self.open(kind)
                for i in range(19):
                    await ws.send(BAD_FRAMES[i % len(BAD_FRAMES)][0])
                codes = []
                for i in range(19):
                    codes.append(error_event(await recv_json(ws)))
                self.assertEqual(codes, [BAD_FRAMES[i % len(BAD_FRAMES)][1] for i in range(19)])
                await assert_open(ws)
                await ws.send('{"type":"session.update"}')
                await expect_close_or_diagnose(self, ws, '{"type":"session.update"}', 20)

    async def test_pings_do_not_count_as_errors(self):
        ws = await self.open("page")
        for i in range(25):
            await ws.send("ping")
            await ws.send('{"type":"ping"}')
        for i in range(25):
            self.assertEqual(await asyncio.wait_for(ws.recv(), 3), "pong")
            self.assertEqual(await recv_json(ws), {"type": "pong"})
        await assert_open(ws)


def user_item(text, role="user", item_type="message", part_type="input_text"):
    return json.dumps({"type": "conversation.item.create",
                       "item": {"type": item_type, "role": role,
                                "content": [{"type": part_type, "text": text}]}},
                      ensure_ascii=False)


class ConversationItemTest(SBTestCase):
    SERVER_ENV = {}  # default SWITCHBOARD_MAX_CONTROL_BYTES (10240)

    async def voice(self):
        ws, _ = await self.server.live_voice()
        return self.track(ws)

    async def test_non_user_items_are_invalid_event(self):
        ws = await self.voice()
        bad = [
            user_item("hi", role="assistant"),
            user_item("hi", role="system"),
            user_item("hi", item_type="function_call_output"),
            user_item("hi", part_type="input_audio"),
            json.dumps({"type": "conversation.item.create"}),
            json.dumps({"type": "conversation.item.create", "item": "text"}),
            json.dumps({"type": "conversation.item.create",
                        "item": {"type": "function_call_output", "call_id": "c1",
                                 "output": "{}"}}),
        ]
        for frame in bad:
            with self.subTest(frame=frame[:80]):
                await ws.send(frame)
                msg = await recv_json(ws)
                self.assertEqual(error_event(msg), "invalid_event", msg)
        await assert_open(ws)

    async def test_valid_user_item_is_silent(self):
        ws = await self.voice()
        await ws.send(user_item("Hello there"))
        await ws.send('{"type":"ping"}')
        msg, skipped = await recv_until(ws, lambda m: m == {"type": "pong"})
        self.assertEqual([m for m in skipped if error_event(m)], [])

    async def test_text_limit_counts_code_points(self):
        ws = await self.voice()
        # 4096 two-byte code points (8192 bytes): accepted without an error.
        await ws.send(user_item("\u00e9" * 4096))
        await ws.send('{"type":"ping"}')
        msg, skipped = await recv_until(ws, lambda m: m == {"type": "pong"})
        self.assertEqual([m for m in skipped if error_event(m)], [])
        # 4097 code points: text_too_long, and the socket stays open.
        await ws.send(user_item("\u00e9" * 4097))
        msg, _ = await recv_until(ws, lambda m: error_event(m) is not None)
        self.assertEqual(error_event(msg), "text_too_long", msg)
        await ws.send(user_item("a" * 4097))
        msg, _ = await recv_until(ws, lambda m: error_event(m) is not None)
        self.assertEqual(error_event(msg), "text_too_long", msg)
        await assert_open(ws)

    async def test_text_too_long_does_not_count_toward_the_error_limit(self):
        ws = await self.voice()
        for i in range(22):
            await ws.send(user_item("a" * 4097))
        for i in range(22):
            msg = await recv_json(ws)
            self.assertEqual(error_event(msg), "text_too_long", (i, msg))
        await assert_open(ws)

    async def test_invalid_items_count_toward_the_error_limit(self):
        # SPEC 14: invalid_event errors count toward "20 within 10 s", whatever produced them.
        ws = await self.voice()
        for i in range(20):
            await ws.send(user_item("hi", role="assistant"))
        await expect_close_or_diagnose(self, ws, user_item("hi", role="assistant"), 20)
