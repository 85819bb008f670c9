"""A stock gRPC client in another language (Python grpcio), with stubs generated
from the repository's proto files at run time: register, create a room, join
it, stream, send and receive, and resume exactly after a reconnect.

    python grpc_chat.py http://127.0.0.1:PORT PROTO_DIR
"""

import queue
import subprocess
import sys
import tempfile
import threading

base, proto_dir = sys.argv[1:]
target = base.removeprefix("http://")

stubs = tempfile.mkdtemp()
protos = subprocess.run(
    ["find", f"{proto_dir}/palaver/v1", "-name", "*.proto"],
    check=True, capture_output=True, text=True,
).stdout.split()
subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
     f"--python_out={stubs}", f"--grpc_python_out={stubs}", *protos],
    check=True,
)
sys.path.insert(0, stubs)

import grpc  # noqa: E402
from palaver.v1 import accounts_pb2, accounts_pb2_grpc  # noqa: E402
from palaver.v1 import messages_pb2, messages_pb2_grpc  # noqa: E402
from palaver.v1 import realtime_pb2, realtime_pb2_grpc  # noqa: E402
from palaver.v1 import rooms_pb2, rooms_pb2_grpc  # noqa: E402

# The keepalive settings docs/grpc.md recommends.
channel = grpc.insecure_channel(target, options=[
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 20000),
    ("grpc.keepalive_permit_without_calls", 1),
])
accounts = accounts_pb2_grpc.AccountsStub(channel)
rooms = rooms_pb2_grpc.RoomsStub(channel)
messages = messages_pb2_grpc.MessagesStub(channel)
realtime = realtime_pb2_grpc.RealtimeStub(channel)
WAIT = 10


def sign_up(name):
    accounts.Register(accounts_pb2.RegisterRequest(username=name, password="correct horse battery"))
    tokens = accounts.Login(accounts_pb2.LoginRequest(username=name, password="correct horse battery"))
    return [("authorization", "Bearer " + tokens.access_token)], tokens.user.id


alice, alice_id = sign_up("py_alice")
bob, bob_id = sign_up("py_bob")
room = rooms.CreateRoom(rooms_pb2.CreateRoomRequest(name="snakes", password="hiss"), metadata=alice)
joined = rooms.JoinRoom(rooms_pb2.JoinRoomRequest(code=room.code, password="hiss"), metadata=bob)
assert joined.id == room.id, joined

try:
    rooms.GetRoom(rooms_pb2.RoomRequest(room_id=room.id + 1000), metadata=bob)
    raise AssertionError("a room that does not exist was found")
except grpc.RpcError as err:
    assert err.code() == grpc.StatusCode.NOT_FOUND, err
    codes = dict(err.trailing_metadata())
    assert codes.get("palaver-error-code") == "not_found", codes


class Stream:
    """One `Realtime.Connect` call: frames to send through a queue, frames
    received read by a thread into another."""

    def __init__(self, metadata, resume=None):
        self.outgoing = queue.Queue()
        self.incoming = queue.Queue()
        self.outgoing.put(realtime_pb2.ClientFrame(hello=realtime_pb2.Hello(resume=resume or {})))
        self.call = realtime.Connect(iter(self.outgoing.get, None), metadata=metadata)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for frame in self.call:
                self.incoming.put(frame)
        except grpc.RpcError as err:
            self.incoming.put(err)

    def send(self, **frame):
        self.outgoing.put(realtime_pb2.ClientFrame(**frame))

    def next(self, kind):
        while True:
            frame = self.incoming.get(timeout=WAIT)
            if isinstance(frame, grpc.RpcError):
                raise frame
            if frame.WhichOneof("frame") == kind:
                return getattr(frame, kind)

    def close(self):
        self.call.cancel()
        self.outgoing.put(None)


at_bob = Stream(bob)
ready = at_bob.next("ready")
assert [(r.id, r.last_seq) for r in ready.rooms] == [(room.id, 0)], ready

sent = messages.Send(messages_pb2.SendRequest(room_id=room.id, body="hello bob", client_id="py-1"), metadata=alice)
assert sent.seq == 1, sent
got = at_bob.next("message")
assert (got.seq, got.sender_id, got.body) == (1, alice_id, "hello bob"), got

at_bob.send(send=realtime_pb2.Send(room=room.id, body="hi alice", client_id="py-2"))
ack = at_bob.next("ack")
assert (ack.client_id, ack.seq) == ("py-2", 2), ack
assert at_bob.next("message").seq == 2
at_bob.close()

# Missed while away, then resumed from the last seq seen: exactly 3 and 4, then live 5.
for body in ["three", "four"]:
    messages.Send(messages_pb2.SendRequest(room_id=room.id, body=body), metadata=alice)
at_bob = Stream(bob, resume={room.id: 2})
at_bob.next("ready")
missed = [at_bob.next("message") for _ in range(2)]
assert [(m.seq, m.body) for m in missed] == [(3, "three"), (4, "four")], missed
messages.Send(messages_pb2.SendRequest(room_id=room.id, body="five"), metadata=alice)
live = at_bob.next("message")
assert (live.seq, live.body) == (5, "five"), live
at_bob.close()
print("grpcio client: register, create, join, stream, send, receive and resume all passed")
