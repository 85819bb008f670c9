// Node's own socket.io server doing the work of Palaver's Socket.IO endpoint
// in the bench's fan-out (bench/src/bin/palaver-bench.rs, `--only socketio`),
// minus everything Palaver does that this does not: no accounts (any token is
// accepted), no storage, nothing kept after a message is sent.
//
// A socket joins the room its handshake names (`auth: {token, room}`) and is
// sent `ready`. A `send` event ({room, body, client_id}) from a member of the
// room gets the room's next seq, is broadcast to the whole room (the sender
// included) as a `message` event with the fields of Palaver's message frame,
// and is acknowledged to the sender with the fields of Palaver's ack.
//
// Prints `listening HOST:PORT` once it accepts connections (port 0 unless
// PORT is set).
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const httpServer = createServer();
const io = new Server(httpServer, {
  // Palaver serves the WebSocket transport only; so does this.
  transports: ['websocket'],
  serveClient: false,
});

/** Room name → the seq of its last message. */
const seqs = new Map();
let nextUser = 1;

io.on('connection', (socket) => {
  const room = String(socket.handshake.auth?.room ?? '');
  const user = nextUser++;
  socket.join(room);
  socket.emit('ready', { type: 'ready', user: { id: user }, rooms: [{ id: Number(room) }] });
  socket.on('send', (data, ack) => {
    const target = String(data?.room);
    if (!socket.rooms.has(target)) {
      if (typeof ack === 'function') {
        ack({ error: { code: 'not_found', message: 'room not found' } });
      }
      return;
    }
    const seq = (seqs.get(target) ?? 0) + 1;
    seqs.set(target, seq);
    const createdAt = new Date().toISOString();
    io.to(target).emit('message', {
      type: 'message',
      room: data.room,
      seq,
      sender_id: user,
      body: data.body,
      client_id: data.client_id,
      created_at: createdAt,
    });
    if (typeof ack === 'function') {
      ack({ type: 'ack', client_id: data.client_id, room: data.room, seq, created_at: createdAt });
    }
  });
});

httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { address, port } = httpServer.address();
  console.log(`listening ${address}:${port}`);
});
