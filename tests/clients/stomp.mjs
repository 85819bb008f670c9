// The STOMP journey with the stock client (@stomp/stompjs over `ws`), run by
// crates/server/tests/api/clients.rs against a live node. Environment:
// PALAVER_URL, ALICE_TOKEN, BOB_TOKEN, ALICE_ID, ROOM (shared by both),
// FOREIGN_ROOM (not theirs). Prints one JSON line of what it saw; any broken
// expectation exits non-zero with the reason.
import assert from 'node:assert/strict';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { env, WAIT_MS } from './journey.mjs';

const url = env('PALAVER_URL').replace(/^http/, 'ws') + '/stomp';
const room = Number(env('ROOM'));
const foreignRoom = Number(env('FOREIGN_ROOM'));
const aliceId = Number(env('ALICE_ID'));

/** Rejects after WAIT_MS unless `promise` settles first. */
function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} in time`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A client that has not connected yet; `connected` resolves with the
 * CONNECTED frame, `error` with the first ERROR frame.
 */
function client(connectHeaders, path = '/stomp') {
  let onConnect, onError;
  const connected = new Promise((resolve) => (onConnect = resolve));
  const error = new Promise((resolve) => (onError = resolve));
  const stomp = new Client({
    webSocketFactory: () =>
      new WebSocket(url.replace(/\/stomp$/, path), ['v12.stomp', 'v11.stomp', 'v10.stomp']),
    connectHeaders,
    reconnectDelay: 0,
    heartbeatIncoming: 10_000,
    heartbeatOutgoing: 10_000,
    onConnect,
    onStompError: onError,
    debug: () => {},
  });
  stomp.activate();
  return { stomp, connected, error };
}

async function open(connectHeaders, path) {
  const c = client(connectHeaders, path);
  await within(c.connected, 'CONNECTED');
  return c;
}

let receipts = 0;
/** Sends `frame` with a receipt header; resolves with the RECEIPT. */
function withReceipt(stomp, send) {
  const receipt = `r-${++receipts}`;
  const got = new Promise((resolve) => stomp.watchForReceipt(receipt, resolve));
  send({ receipt });
  return within(got, `receipt ${receipt}`);
}

const publish = (stomp, destination, body) =>
  withReceipt(stomp, (headers) =>
    stomp.publish({ destination, body: JSON.stringify(body), headers }),
  );

/** Subscribes; resolves once the subscription is in place (its receipt). */
async function subscribe(stomp, destination, onMessage, extra = {}) {
  await withReceipt(stomp, (headers) =>
    stomp.subscribe(destination, onMessage, { ...headers, ...extra }),
  );
}

/** The next MESSAGE passed to `collect` whose parsed body passes `test`. */
function waiter() {
  const waiting = [];
  const collect = (message) => {
    const body = JSON.parse(message.body);
    for (const w of [...waiting]) {
      if (w.test(body, message)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve({ body, message });
      }
    }
  };
  const next = (test, what) =>
    within(new Promise((resolve) => waiting.push({ test, resolve })), what);
  return { collect, next };
}

// A bad token is an ERROR whose message is the machine code.
const refused = client({ Authorization: 'Bearer not-a-token' });
const refusal = await within(refused.error, 'ERROR for a bad token');
assert.equal(refusal.headers.message, 'unauthorized');
await refused.stomp.deactivate();

// Alice by the Authorization header, Bob by passcode at the Spring path.
const alice = await open({ Authorization: `Bearer ${env('ALICE_TOKEN')}` });
const connected = await alice.connected; // resolved by open()
assert.equal(connected.headers.version, '1.2');
assert.ok(connected.headers.server.startsWith('palaver/'));
const bob = await open({ login: 'bob', passcode: env('BOB_TOKEN') }, '/ws/chat');

// A send is answered by its receipt once durable; Bob gets it with that seq.
const bobMessages = waiter();
await subscribe(bob.stomp, `/topic/message/roomId/${room}`, bobMessages.collect);
const bobGets = bobMessages.next((m) => m.client_id === 'stomp-1', 'the message at Bob');
const destination = `/app/message/roomId/${room}`;
const receipt = await publish(alice.stomp, destination, {
  body: 'hello over stomp',
  client_id: 'stomp-1',
});
const seq = Number(receipt.headers.seq);
assert.equal(Number(receipt.headers.room), room);
const live = await bobGets;
assert.equal(live.body.type, 'message');
assert.equal(live.body.seq, seq);
assert.equal(Number(live.message.headers.seq), seq);
assert.equal(live.message.headers['content-type'], 'application/json');
assert.equal(live.body.body, 'hello over stomp');
assert.equal(live.body.sender_id, aliceId);

// The same client_id again is the same message.
const again = await publish(alice.stomp, destination, {
  body: 'hello over stomp',
  client_id: 'stomp-1',
});
assert.equal(Number(again.headers.seq), seq);

// Typing reaches the other member.
const bobTyping = waiter();
await subscribe(bob.stomp, `/topic/typing/roomId/${room}`, bobTyping.collect);
const bobSeesTyping = bobTyping.next((t) => t.room === room, 'typing at Bob');
await publish(alice.stomp, '/app/typing', { roomId: room });
assert.equal((await bobSeesTyping).body.user_id, aliceId);

// A room that is not hers is refused as one that does not exist, and the
// connection ends, as STOMP says.
const prying = await open({ passcode: env('ALICE_TOKEN') });
prying.stomp.subscribe(`/topic/message/roomId/${foreignRoom}`, () => {}, { receipt: 'pry' });
const notFound = await within(prying.error, 'ERROR for a foreign room');
assert.equal(notFound.headers.message, 'not_found');
assert.equal(notFound.headers['receipt-id'], 'pry');
await prying.stomp.deactivate();

// Bob goes away (DISCONNECT, answered by its receipt); two messages are
// sent; he comes back asking for what followed his last seq and gets
// exactly those, in order, then the next one live, once.
let disconnected;
const goodbye = new Promise((resolve) => (disconnected = resolve));
bob.stomp.onDisconnect = disconnected;
await bob.stomp.deactivate();
assert.ok((await within(goodbye, 'the DISCONNECT receipt')).headers['receipt-id']);
const missed = [];
for (const n of [1, 2]) {
  const r = await publish(alice.stomp, destination, { body: `missed ${n}` });
  missed.push(Number(r.headers.seq));
}
const back = await open({ Authorization: `Bearer ${env('BOB_TOKEN')}` });
const seen = [];
const backMessages = waiter();
await subscribe(
  back.stomp,
  `/topic/message/roomId/${room}`,
  (message) => {
    seen.push(Number(message.headers.seq));
    backMessages.collect(message);
  },
  { 'x-after-seq': String(seq) },
);
const afterArrives = backMessages.next((m) => m.body === 'live again', 'the live message');
const after = Number((await publish(alice.stomp, destination, { body: 'live again' })).headers.seq);
await afterArrives;
// Everything before this receipt has arrived: frames keep their order.
await publish(back.stomp, '/app/extendOnline', {});
assert.deepEqual(seen, [...missed, after]);

console.log(JSON.stringify({ first: seq, missed, after }));
await alice.stomp.deactivate();
await back.stomp.deactivate();
