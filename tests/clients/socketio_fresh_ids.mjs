// Two Socket.IO connections of one user each send a message without a
// client_id through an acknowledgement, one after the other; run by
// crates/server/tests/api/clients.rs. Environment: PALAVER_URL, TOKEN, ROOM.
// Prints one JSON line with the seq each was acknowledged with.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { env, WAIT_MS } from './journey.mjs';

const url = env('PALAVER_URL');
const room = Number(env('ROOM'));

/** Opens a socket and resolves with it once its session is ready. */
function open() {
  const socket = io(url, {
    transports: ['websocket'],
    auth: { token: env('TOKEN') },
    reconnection: false,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ready in time')), WAIT_MS);
    socket.once('ready', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      reject(new Error(`connect_error: ${err.message}`));
    });
  });
}

const seqs = [];
for (const body of ['from the first connection', 'from the second connection']) {
  const socket = await open();
  const ack = await socket.timeout(WAIT_MS).emitWithAck('send', { room, body });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  seqs.push(ack.seq);
  socket.close();
}
console.log(JSON.stringify({ first: seqs[0], second: seqs[1] }));
