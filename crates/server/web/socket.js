// The WebSocket: signed in by the login's cookie, which the browser sends
// with the upgrade; the first frame is `auth` without a token, carrying the
// positions to resume from, so the replay comes before anything live. It resumes every room from the last seq this tab saw, reconnects by
// itself with backoff, and re-sends unacknowledged messages under their
// client_id (the server stores each client_id once, so a re-send never
// duplicates).

const CLOSE_AUTH_FAILED = 4001;
const CLOSE_SESSION_ENDED = 4002;

export class ChatSocket extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    /** room id → last seq delivered to this tab */
    this.positions = new Map();
    /** client_id → the send frame, until acked */
    this.unacked = new Map();
    this.online = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(1000);
    this.ws = null;
    this.positions.clear();
    this.unacked.clear();
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0; // the server answers: the next failure starts a new backoff
      const resume = {};
      for (const [room, seq] of this.positions) resume[room] = seq;
      ws.send(JSON.stringify({ type: 'auth', resume }));
    };
    ws.onmessage = (event) => this.onFrame(JSON.parse(event.data));
    ws.onclose = (event) => this.onClose(ws, event);
  }

  /** Rooms this tab has no position for start at the position the server gave. */
  startRoomsAt(rooms) {
    for (const room of rooms) {
      if (!this.positions.has(room.id)) this.positions.set(room.id, room.last_seq);
    }
  }

  onFrame(frame) {
    if (frame.type === 'ready') {
      this.attempt = 0;
      this.refreshedSinceReady = false;
      this.setOnline(true);
      this.startRoomsAt(frame.rooms);
      // Anything not acked before the connection dropped goes again.
      for (const send of this.unacked.values()) this.ws.send(JSON.stringify(send));
    } else if (frame.type === 'rooms') {
      this.startRoomsAt(frame.rooms); // the next page of ready's positions
    } else if (frame.type === 'message') {
      const seen = this.positions.get(frame.room) ?? 0;
      if (frame.seq <= seen) return; // already shown: never twice
      this.positions.set(frame.room, frame.seq);
    } else if (frame.type === 'ack') {
      this.unacked.delete(frame.client_id);
    } else if (frame.type === 'member_joined' && frame.user_id === this.api.user?.id) {
      if (!this.positions.has(frame.room)) this.positions.set(frame.room, 0);
    } else if ((frame.type === 'member_left' || frame.type === 'member_removed')
        && frame.user_id === this.api.user?.id) {
      this.positions.delete(frame.room);
    } else if (frame.type === 'room_deleted') {
      this.positions.delete(frame.room);
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
  }

  async onClose(ws, event) {
    if (ws !== this.ws) return;
    this.setOnline(false);
    if (this.stopped) return;
    if (event.code === CLOSE_SESSION_ENDED) {
      this.api.forget(); // its refresh token is revoked too: no way back but signing in
      return;
    }
    if (event.code === CLOSE_AUTH_FAILED && !this.refreshedSinceReady) {
      this.refreshedSinceReady = true; // a second refusal in a row backs off below
      try {
        await this.api.refresh();
      } catch (err) {
        if (err.status === 401) return; // logged out
      }
      if (!this.stopped) this.open(); // a fresh cookie: straight back
      return;
    }
    // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so a restarted server is not
    // hit by every client at once.
    const delay = Math.min(10_000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => { if (!this.stopped) this.open(); }, delay);
  }

  setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    this.dispatchEvent(new CustomEvent('status', { detail: online }));
  }

  /** Sends a message carrying the uploads `attachments` (their ids);
   * returns its client_id. Queued while offline. */
  sendMessage(room, body, replyTo, attachments = []) {
    const clientId = `web-${crypto.randomUUID()}`;
    const frame = { type: 'send', room, body, client_id: clientId };
    if (replyTo) frame.reply_to = replyTo;
    if (attachments.length) frame.attachments = attachments;
    this.unacked.set(clientId, frame);
    if (this.online) this.ws.send(JSON.stringify(frame));
    return clientId;
  }

  /** Fire-and-forget frames (edit, delete, read, typing); dropped while offline. */
  send(frame) {
    if (this.online) this.ws.send(JSON.stringify(frame));
  }

  /** Records a seq this tab has shown (from history), so resume starts after it. */
  saw(room, seq) {
    if (seq > (this.positions.get(room) ?? 0)) this.positions.set(room, seq);
  }
}
