// Node's `ws` server doing the work of the bench's baseline
// (bench/src/bin/baseline.rs) and of Palaver's WebSocket endpoint in the
// fan-out, latency and connections scenarios (bench/src/bin/palaver-bench.rs),
// minus everything Palaver does that this does not: no accounts (the query
// names the room and the user), no storage, nothing kept after a message is
// sent. It speaks the baseline's frames, so one load generator drives all three.
//
// `GET /api/v1/ws?room=ROOM&user=USER` joins ROOM as USER and is sent `ready`.
// A `send` frame ({room, body, client_id}) for the connection's room gets the
// room's next seq, is serialized once and sent to every member (the sender
// included) as a `message` frame, then acknowledged to the sender with `ack`.
//
// Prints `listening HOST:PORT` once it accepts connections (port 0 unless
// PORT is set).
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const httpServer = createServer();
// As Palaver and the baseline: no compression, and small frames go out at
// once (ws sets TCP_NODELAY on every socket it upgrades).
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

/** Room id → {seq, members: Set of sockets}. */
const rooms = new Map();

httpServer.on('upgrade', (request, socket, head) => {
  const url = new URL(request.url, 'http://localhost');
  const room = url.searchParams.get('room');
  const user = Number(url.searchParams.get('user'));
  if (url.pathname !== '/api/v1/ws' || room === null) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => join(ws, room, user));
});

function join(ws, roomId, user) {
  let room = rooms.get(roomId);
  if (room === undefined) {
    room = { seq: 0, members: new Set() };
    rooms.set(roomId, room);
  }
  room.members.add(ws);
  ws.on('close', () => room.members.delete(ws));
  ws.send(
    `{"type":"ready","user":{"id":${user}},"rooms":[{"id":${roomId},"last_seq":${room.seq}}]}`,
  );
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame?.type !== 'send' || String(frame.room) !== roomId) return;
    room.seq += 1;
    const seq = room.seq;
    const clientId = JSON.stringify(frame.client_id ?? null);
    const message =
      `{"type":"message","room":${roomId},"seq":${seq},"sender_id":${user},` +
      `"body":${JSON.stringify(String(frame.body))},"created_at":"","client_id":${clientId}}`;
    for (const member of room.members) {
      member.send(message);
    }
    ws.send(`{"type":"ack","client_id":${clientId},"room":${roomId},"seq":${seq},"created_at":""}`);
  });
}

httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { address, port } = httpServer.address();
  console.log(`listening ${address}:${port}`);
});
