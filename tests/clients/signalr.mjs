// The SignalR journey with the stock client (@microsoft/signalr), run by
// crates/server/tests/api/clients.rs against a live node. Environment:
// PALAVER_URL, ALICE_TOKEN, BOB_TOKEN, ALICE_ID, ROOM (shared by both),
// FOREIGN_ROOM (not theirs). Prints one JSON line of what it saw; any broken
// expectation exits non-zero with the reason.
import assert from 'node:assert/strict';
import { HubConnectionBuilder, HttpTransportType, LogLevel } from '@microsoft/signalr';
import { env, WAIT_MS, next } from './journey.mjs';

const url = env('PALAVER_URL');
const room = Number(env('ROOM'));
const foreignRoom = Number(env('FOREIGN_ROOM'));
const aliceId = Number(env('ALICE_ID'));

function connect(token) {
  return new HubConnectionBuilder()
    .withUrl(`${url}/hubs/chat`, {
      accessTokenFactory: () => token,
      transport: HttpTransportType.WebSockets,
    })
    .configureLogging(LogLevel.None)
    .build();
}

/** Starts a connection and resolves with it and its `ready`. */
async function open(token, connection = connect(token)) {
  const ready = next(connection, 'ready');
  await connection.start();
  return { connection, ready: await ready };
}

// A bad token is refused at negotiate, with Palaver's error body (which the
// client quotes in its error).
await assert.rejects(
  connect('not-a-token').start(),
  (err) => err.message.includes("Status code '401'") && err.message.includes('"code":"unauthorized"'),
);
const refused = await fetch(`${url}/hubs/chat/negotiate?negotiateVersion=1`, {
  method: 'POST',
  headers: { Authorization: 'Bearer not-a-token' },
});
assert.equal(refused.status, 401);
assert.equal((await refused.json()).error.code, 'unauthorized');

const alice = await open(env('ALICE_TOKEN'));
assert.equal(alice.ready.user.id, aliceId);
assert.ok(alice.ready.rooms.some((r) => r.id === room), 'ready lists the shared room');
const bob = await open(env('BOB_TOKEN'));

// A send completes with the ack's fields once durable; Bob gets it live.
const bobGets = next(bob.connection, 'message', (m) => m.client_id === 'sr-1');
const ack = await alice.connection.invoke('send', { room, body: 'hello over signalr', client_id: 'sr-1' });
assert.equal(ack.type, 'ack');
assert.equal(ack.room, room);
const live = await bobGets;
assert.equal(live.seq, ack.seq);
assert.equal(live.body, 'hello over signalr');
assert.equal(live.sender_id, aliceId);

// The same client_id again is the same message.
const again = await alice.connection.invoke('send', { room, body: 'hello over signalr', client_id: 'sr-1' });
assert.equal(again.seq, ack.seq);

// A room that is not hers is refused as one that does not exist; the error
// starts with the machine code.
await assert.rejects(
  alice.connection.invoke('send', { room: foreignRoom, body: 'psst' }),
  (err) => err.message.startsWith('not_found: '),
);
await assert.rejects(
  alice.connection.invoke('shout', { room }),
  (err) => err.message.startsWith('unknown_type: '),
);

// Typing reaches the other member; the invocation completes with no result.
const bobSeesTyping = next(bob.connection, 'typing', (t) => t.room === room);
assert.equal(await alice.connection.invoke('typing', { room }), undefined);
assert.equal((await bobSeesTyping).user_id, aliceId);
assert.equal((await alice.connection.invoke('ping', {})).type, 'pong');

// Bob goes away; two messages are sent; he comes back, resumes from his
// position and gets exactly those, in order, then the next one live, once.
const lastSeen = live.seq;
await bob.connection.stop();
const missed = [];
for (const n of [1, 2]) {
  missed.push((await alice.connection.invoke('send', { room, body: `missed ${n}` })).seq);
}
const seen = [];
const backConnection = connect(env('BOB_TOKEN'));
backConnection.on('message', (m) => {
  if (m.room === room) seen.push(m.seq);
});
const back = await open(env('BOB_TOKEN'), backConnection);
// Completes once the missed messages are sent: they arrived before it.
assert.equal(await back.connection.invoke('resume', { rooms: { [room]: lastSeen } }), undefined);
assert.deepEqual(seen, missed);
const backGets = next(back.connection, 'message', (m) => m.body === 'live again');
const after = await alice.connection.invoke('send', { room, body: 'live again' });
assert.equal((await backGets).seq, after.seq);
// Everything before this answer has arrived: records keep their order.
await back.connection.invoke('ping', {});
assert.deepEqual(seen, [...missed, after.seq]);

console.log(JSON.stringify({ first: ack.seq, missed, after: after.seq }));
await alice.connection.stop();
await back.connection.stop();
