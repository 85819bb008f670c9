"""The STOMP journey with Python's stock client (stomp.py over its WebSocket
transport, which offers no subprotocol), run by
crates/server/tests/api/clients.rs against a live node. Environment:
PALAVER_URL, ALICE_TOKEN, BOB_TOKEN, ALICE_ID, ROOM (shared by both),
FOREIGN_ROOM (not theirs). Prints one JSON line of what it saw; any broken
expectation exits non-zero with the reason."""

import json
import os
import threading
import urllib.parse

import stomp

WAIT_S = 10
url = urllib.parse.urlparse(os.environ["PALAVER_URL"])
room = int(os.environ["ROOM"])
foreign_room = int(os.environ["FOREIGN_ROOM"])
alice_id = int(os.environ["ALICE_ID"])


class Recorder(stomp.ConnectionListener):
    """Every frame the connection got, and a way to wait for one."""

    def __init__(self):
        self.frames = []
        self.changed = threading.Condition()

    def _add(self, kind, frame):
        with self.changed:
            self.frames.append((kind, frame))
            self.changed.notify_all()

    def on_message(self, frame):
        self._add("MESSAGE", frame)

    def on_receipt(self, frame):
        self._add("RECEIPT", frame)

    def on_error(self, frame):
        self._add("ERROR", frame)

    def wait(self, kind, test=lambda frame: True):
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((f for k, f in self.frames if k == kind and test(f)), None),
                timeout=WAIT_S,
            )
        assert found is not None, f"no {kind} in time"
        return found

    def receipt(self, receipt):
        return self.wait("RECEIPT", lambda f: f.headers.get("receipt-id") == receipt)


def connect(token, path="/stomp"):
    conn = stomp.WSStompConnection(
        [(url.hostname, url.port)], ws_path=path, reconnect_attempts_max=1
    )
    recorder = Recorder()
    conn.set_listener("recorder", recorder)
    conn.connect(passcode=token, wait=True)
    return conn, recorder


receipts = 0


def send(conn, recorder, destination, body):
    global receipts
    receipts += 1
    receipt = f"py-{receipts}"
    conn.send(destination, json.dumps(body), content_type="application/json", receipt=receipt)
    return recorder.receipt(receipt)


def subscribe(conn, recorder, destination, sub_id, **headers):
    global receipts
    receipts += 1
    receipt = f"py-{receipts}"
    conn.subscribe(destination, id=sub_id, receipt=receipt, headers=headers)
    recorder.receipt(receipt)


def body(frame):
    return json.loads(frame.body)


alice, alice_frames = connect(os.environ["ALICE_TOKEN"])
bob, bob_frames = connect(os.environ["BOB_TOKEN"], "/ws/chat")
messages = f"/topic/message/roomId/{room}"
subscribe(bob, bob_frames, messages, "m")

destination = f"/app/message/roomId/{room}"
first = send(alice, alice_frames, destination, {"body": "hello over stomp.py", "client_id": "py-1"})
seq = int(first.headers["seq"])
live = bob_frames.wait("MESSAGE", lambda f: body(f).get("client_id") == "py-1")
assert int(live.headers["seq"]) == seq, (live.headers, seq)
assert body(live)["sender_id"] == alice_id
again = send(alice, alice_frames, destination, {"body": "hello over stomp.py", "client_id": "py-1"})
assert int(again.headers["seq"]) == seq

subscribe(bob, bob_frames, f"/topic/typing/roomId/{room}", "t")
send(alice, alice_frames, "/app/typing", {"roomId": room})
typing = bob_frames.wait("MESSAGE", lambda f: body(f).get("type") == "typing")
assert body(typing)["user_id"] == alice_id

prying, prying_frames = connect(os.environ["ALICE_TOKEN"])
prying.subscribe(f"/topic/message/roomId/{foreign_room}", id="x", receipt="pry")
refused = prying_frames.wait("ERROR")
assert refused.headers["message"] == "not_found", refused.headers
assert refused.headers.get("receipt-id") == "pry"

bob.disconnect()
missed = [
    int(send(alice, alice_frames, destination, {"body": f"missed {n}"}).headers["seq"])
    for n in (1, 2)
]
back, back_frames = connect(os.environ["BOB_TOKEN"])
subscribe(back, back_frames, messages, "m", **{"x-after-seq": str(seq)})
after = int(send(alice, alice_frames, destination, {"body": "live again"}).headers["seq"])
back_frames.wait("MESSAGE", lambda f: int(f.headers["seq"]) == after)
# Everything before this receipt has arrived: frames keep their order.
send(back, back_frames, "/app/extendOnline", {})
seen = [int(f.headers["seq"]) for k, f in back_frames.frames if k == "MESSAGE"]
assert seen == missed + [after], (seen, missed, after)

print(json.dumps({"first": seq, "missed": missed, "after": after}))
alice.disconnect()
back.disconnect()
