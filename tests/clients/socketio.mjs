// The Socket.IO journey with the stock client (socket.io-client), run by
// crates/server/tests/api/clients.rs against a live node. Environment:
// PALAVER_URL, ALICE_TOKEN, BOB_TOKEN, ALICE_ID, ROOM (shared by both),
// FOREIGN_ROOM (not theirs). Prints one JSON line of what it saw; any broken
// expectation exits non-zero with the reason.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { env, WAIT_MS, next } from './journey.mjs';

const url = env('PALAVER_URL');
const room = Number(env('ROOM'));
const foreignRoom = Number(env('FOREIGN_ROOM'));
const aliceId = Number(env('ALICE_ID'));

function connect(token, resume) {
  return io(url, {
    transports: ['websocket'],
    auth: resume ? { token, resume } : { token },
    reconnection: false,
  });
}

/** Opens a socket and resolves with it and its `ready` once connected. */
function open(token, resume) {
  const socket = connect(token, resume);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ready in time')), WAIT_MS);
    socket.once('ready', (ready) => {
      clearTimeout(timer);
      resolve({ socket, ready });
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      reject(new Error(`connect_error: ${err.message}`));
    });
  });
}

const request = (socket, event, arg) => socket.timeout(WAIT_MS).emitWithAck(event, arg);

// A refused handshake is a connect_error whose message is the machine code.
const refused = connect('not-a-token');
const error = await next(refused, 'connect_error');
assert.equal(error.message, 'unauthorized');
refused.close();

const alice = await open(env('ALICE_TOKEN'));
assert.equal(alice.ready.user.id, aliceId);
assert.ok(alice.ready.rooms.some((r) => r.id === room), 'ready lists the shared room');
const bob = await open(env('BOB_TOKEN'));

// A send is acknowledged through the callback once durable; Bob gets it live.
const bobGets = next(bob.socket, 'message', (m) => m.client_id === 'sio-1');
const ack = await request(alice.socket, 'send', { room, body: 'hello over socket.io', client_id: 'sio-1' });
assert.equal(ack.type, 'ack');
assert.equal(ack.room, room);
const live = await bobGets;
assert.equal(live.seq, ack.seq);
assert.equal(live.body, 'hello over socket.io');
assert.equal(live.sender_id, aliceId);

// The same client_id again is the same message.
const again = await request(alice.socket, 'send', { room, body: 'hello over socket.io', client_id: 'sio-1' });
assert.equal(again.seq, ack.seq);

// A room that is not hers is refused as one that does not exist.
const foreign = await request(alice.socket, 'send', { room: foreignRoom, body: 'psst' });
assert.equal(foreign.error.code, 'not_found');
const unknown = await request(alice.socket, 'shout', { room });
assert.equal(unknown.error.code, 'unknown_type');

// Typing reaches the other member; the request itself is answered empty.
const bobSeesTyping = next(bob.socket, 'typing', (t) => t.room === room);
assert.deepEqual(await request(alice.socket, 'typing', { room }), {});
assert.equal((await bobSeesTyping).user_id, aliceId);
assert.equal((await request(alice.socket, 'ping', {})).type, 'pong');

// Bob goes away; two messages are sent; he comes back with his position and
// gets exactly those, in order, then the next one live, once.
const lastSeen = live.seq;
bob.socket.close();
const missed = [];
for (const n of [1, 2]) {
  missed.push((await request(alice.socket, 'send', { room, body: `missed ${n}` })).seq);
}
const seen = [];
const back = connect(env('BOB_TOKEN'), { [room]: lastSeen });
back.on('message', (m) => {
  if (m.room === room) seen.push(m.seq);
});
// Both listened for at once: the replay can arrive with `ready`, in one read.
const backReady = next(back, 'ready');
const caughtUp = next(back, 'message', (m) => m.seq === missed[1]);
await backReady;
await caughtUp;
const after = await request(alice.socket, 'send', { room, body: 'live again' });
await next(back, 'message', (m) => m.seq === after.seq);
// Everything before this answer has arrived: frames keep their order.
await request(back, 'ping', {});
assert.deepEqual(seen, [...missed, after.seq]);

console.log(JSON.stringify({ first: ack.seq, missed, after: after.seq }));
alice.socket.close();
back.close();
