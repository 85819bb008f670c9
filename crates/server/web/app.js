// Palaver's web client: plain DOM, no framework, no build step. State lives in
// a few maps; each change re-renders the part of the page it touches. Every
// name a user chose (and every body shown beside one) is rendered isolated
// (`<bdi>`, or `dir="auto"` on an element of its own): a right-to-left name
// cannot reorder the text around it.

import { Api, attachmentUrl } from './api.js';
import { ChatSocket } from './socket.js';
import { hideSettings, setUpPasswordReset, setUpSettings } from './settings.js';
import { mentionAtCaret, mentionCandidates, mentionRuns } from './mentions.js';
import { dayKey, dayLabel, fullTime, timeOfDay } from './times.js';

const api = new Api();
const socket = new ChatSocket(api);
const $ = (id) => document.getElementById(id);

const state = {
  /** room id → summary from GET /rooms, kept live by frames */
  rooms: new Map(),
  /** room id → invitation waiting for an answer (GET /invitations, `invited` frames) */
  invitations: new Map(),
  current: null,
  /** room id → Map(seq → message) */
  messages: new Map(),
  /** room id → whether older history exists */
  hasMore: new Map(),
  /** client_id → { room, body, reply_to } sent but not acked */
  pending: new Map(),
  /** room id → members (with online flags) */
  members: new Map(),
  /** room id → Map(user id → last read seq) */
  markers: new Map(),
  /** room id → Map(user id → expiry time) */
  typing: new Map(),
  /** user id → display name, from members */
  names: new Map(),
  online: new Set(),
  replyTo: null,
  editing: null,
  /** the seq whose reaction picker is open in the current room */
  picking: null,
  /** room id → Set of seqs that mention me and are not read yet (`mentioned` frames) */
  mentions: new Map(),
  /** the mention being typed: { start, candidates, selected } */
  suggesting: null,
  /** files chosen for the next message, not uploaded yet: [{ key, file }] */
  chosen: [],
  /** whether the chosen files are being uploaded (sending waits) */
  uploading: false,
};

/** The most files one message carries (the server refuses more). */
const MAX_FILES = 10;
/** The types a browser shows as an image without running anything; the
 * server serves only these inline. */
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
/** attachment id → its preview `<img>`, kept across re-renders so each
 * image is fetched once, not once per render; the oldest forgotten past
 * PREVIEWS_KEPT. */
const previews = new Map();
const PREVIEWS_KEPT = 300;

/** What the reaction picker offers; any other emoji shown can be toggled too. */
const PICKER = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

// ---------- sign up / log in ----------

$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  authenticate('login');
});
$('signup-button').addEventListener('click', () => authenticate('signup'));

async function authenticate(mode) {
  const username = $('auth-username').value.trim();
  const password = $('auth-password').value;
  const error = $('auth-error');
  error.textContent = '';
  $('auth-status').textContent = '';
  if (!username || !password) {
    error.textContent = 'Enter a username and a password.';
    return;
  }
  try {
    if (mode === 'signup') await api.register(username, password, $('auth-display').value.trim());
    else await api.login(username, password);
  } catch (err) {
    error.textContent = err.message;
  }
}

$('logout-button').addEventListener('click', () => api.logout());
setUpSettings(api, (name) => { $('me').textContent = name; });
setUpPasswordReset(api);
api.addEventListener('login', () => showChat());
api.addEventListener('logout', () => showAuth());

function showAuth() {
  socket.stop();
  hideSettings();
  state.rooms.clear();
  state.messages.clear();
  state.current = null;
  $('chat').hidden = true;
  $('auth').hidden = false;
  $('banner').hidden = true;
  $('auth-password').value = '';
  $('auth-username').focus();
}

async function showChat() {
  $('auth').hidden = true;
  $('chat').hidden = false;
  $('me').textContent = api.user.display_name;
  api.scheduleRefresh();
  socket.stop();
  socket.start();
  await Promise.all([loadRooms(), loadInvitations()]);
}

// ---------- rooms ----------

async function loadRooms() {
  try {
    const rooms = await api.rooms();
    state.rooms = new Map(rooms.map((room) => [room.id, room]));
    renderRooms();
  } catch (err) {
    $('sidebar-error').textContent = err.message;
  }
}

async function loadInvitations() {
  try {
    state.invitations = new Map();
    let after;
    do {
      const page = await api.invitations(after);
      for (const invitation of page.invitations) state.invitations.set(invitation.room, invitation);
      after = page.next;
    } while (after);
    renderInvitations();
  } catch (err) {
    $('sidebar-error').textContent = err.message;
  }
}

function renderInvitations() {
  for (const { by } of state.invitations.values()) {
    if (!state.names.has(by)) {
      state.names.set(by, `user ${by}`);
      api.profile(by).then((user) => { state.names.set(by, user.display_name); renderInvitations(); }).catch(() => {});
    }
  }
  $('invitation-list').replaceChildren(...[...state.invitations.values()].map((invitation) => {
    const item = document.createElement('li');
    item.className = 'invitation';
    item.dataset.room = invitation.room;
    const text = span('name', bdi(nameOf(invitation.by)), ' invited you to ', bdi(invitation.room_name));
    const accept = document.createElement('button');
    accept.type = 'button';
    accept.textContent = 'Accept';
    accept.setAttribute('aria-label', `Accept the invitation to ${invitation.room_name}`);
    accept.addEventListener('click', () => answerInvitation(invitation.room, true));
    const decline = document.createElement('button');
    decline.type = 'button';
    decline.className = 'secondary';
    decline.textContent = 'Decline';
    decline.setAttribute('aria-label', `Decline the invitation to ${invitation.room_name}`);
    decline.addEventListener('click', () => answerInvitation(invitation.room, false));
    item.append(text, accept, decline);
    return item;
  }));
}

async function answerInvitation(room, accept) {
  $('sidebar-error').textContent = '';
  try {
    if (accept) {
      const joined = await api.acceptInvitation(room);
      addRoom(joined);
      openRoom(joined.id);
    } else {
      await api.declineInvitation(room);
    }
  } catch (err) {
    $('sidebar-error').textContent = err.message;
  }
  state.invitations.delete(room);
  renderInvitations();
}

function sortedRooms() {
  const activity = (room) => room.last_message?.created_at ?? room.created_at;
  return [...state.rooms.values()].sort((a, b) => activity(b).localeCompare(activity(a)) || b.id - a.id);
}

function renderRooms() {
  const list = $('room-list');
  list.replaceChildren(...sortedRooms().map((room) => {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'room';
    button.dataset.room = room.id;
    if (room.id === state.current) button.setAttribute('aria-current', 'true');
    const name = span('name', ...roomTitle(room));
    const parts = [name];
    const badges = span('badges');
    if (room.unread_mentions > 0 && room.id !== state.current) {
      const badge = span('mention-badge', `@${room.unread_mentions}`);
      badge.setAttribute('aria-label', `${room.unread_mentions} unread ${room.unread_mentions === 1 ? 'mention' : 'mentions'}`);
      badges.append(badge);
    }
    if (room.unread_count > 0 && room.id !== state.current) {
      const badge = span('badge', String(room.unread_count));
      badge.setAttribute('aria-label', `${room.unread_count} unread`);
      badges.append(badge);
    }
    if (badges.childElementCount) parts.push(badges);
    const last = room.last_message;
    parts.push(last && !last.deleted
      ? span('last', bdi(nameOf(last.sender_id)), ': ', bdi(last.body))
      : span('last', last ? 'message deleted' : 'no messages yet'));
    button.append(...parts);
    button.addEventListener('click', () => openRoom(room.id));
    item.append(button);
    return item;
  }));
}

/** The room's title as nodes to append: its name, or `@` and the other's. */
function roomTitle(room) {
  if (room.kind !== 'direct') return [bdi(room.name)];
  const mine = api.user.username;
  const other = room.name.split(' & ').find((n) => n !== mine);
  return ['@', bdi(other ?? room.name)];
}

$('create-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('create-name').value.trim();
  $('sidebar-error').textContent = '';
  try {
    const room = await api.createRoom(name, $('create-password').value);
    $('create-name').value = '';
    $('create-password').value = '';
    addRoom(room);
    openRoom(room.id);
  } catch (err) {
    $('sidebar-error').textContent = err.message;
  }
});

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('sidebar-error').textContent = '';
  try {
    const room = await api.joinRoom($('join-code').value.trim().toUpperCase(), $('join-password').value);
    $('join-code').value = '';
    $('join-password').value = '';
    addRoom(room);
    openRoom(room.id);
  } catch (err) {
    $('sidebar-error').textContent = err.status === 404 ? 'No room has this code.' : err.message;
  }
});

function addRoom(room) {
  if (!state.rooms.has(room.id)) {
    state.rooms.set(room.id, { ...room, role: 'member', last_seq: 0, last_message: null, last_read_seq: 0, unread_count: 0, unread_mentions: 0 });
  }
  renderRooms();
}

async function openRoom(id) {
  // Where the user was when the room was opened: the composer takes the
  // focus once the room has loaded only if they have not moved on meanwhile
  // (typing a search while the history loads keeps the search box).
  const focused = document.activeElement;
  state.current = id;
  state.replyTo = null;
  state.editing = null;
  document.body.classList.add('in-room');
  const room = state.rooms.get(id);
  $('conversation').hidden = false;
  $('room-title').replaceChildren(...(room ? roomTitle(room) : []));
  $('room-code').textContent = room && room.kind === 'group' ? `code ${room.code}` : '';
  $('conversation-error').textContent = '';
  renderReply();
  clearChosen();
  renderRooms();
  if (!state.messages.has(id)) {
    state.messages.set(id, new Map());
    await loadOlder(id);
  }
  await loadMembers(id);
  if (state.current !== id) return; // another room was opened meanwhile
  renderMessages({ toBottom: true });
  markRead();
  if (document.activeElement === focused || document.activeElement === document.body) {
    $('composer-input').focus();
  }
}

$('back-button').addEventListener('click', () => {
  document.body.classList.remove('in-room');
  state.current = null;
  renderRooms();
});

// ---------- history and messages ----------

async function loadOlder(room) {
  const known = state.messages.get(room);
  const oldest = known.size ? Math.min(...known.keys()) : undefined;
  try {
    const page = await api.history(room, oldest);
    for (const message of page.messages) {
      known.set(message.seq, message);
      socket.saw(room, message.seq);
    }
    state.hasMore.set(room, page.has_more);
  } catch (err) {
    $('conversation-error').textContent = err.message;
  }
}

// Older history as the reader scrolls up.
$('messages').addEventListener('scroll', async () => {
  const list = $('messages');
  const room = state.current;
  if (list.scrollTop > 40 || !room || !state.hasMore.get(room) || state.loadingOlder) return;
  state.loadingOlder = true;
  const fromBottom = list.scrollHeight - list.scrollTop;
  await loadOlder(room);
  renderMessages();
  list.scrollTop = list.scrollHeight - fromBottom;
  state.loadingOlder = false;
});

function renderMessages({ toBottom = false } = {}) {
  const room = state.current;
  if (!room) return;
  const list = $('messages');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const messages = [...(state.messages.get(room)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
  const items = [];
  let day = '';
  for (const message of messages) {
    // A separator wherever the local day changes (the first message's too).
    const key = dayKey(message.created_at);
    if (key && key !== day) {
      day = key;
      items.push(daySeparator(message.created_at));
    }
    items.push(messageItem(room, message));
  }
  for (const [clientId, pending] of state.pending) {
    if (pending.room !== room) continue;
    items.push(messageItem(room, { ...pending, sender_id: api.user.id, seq: null, client_id: clientId }));
  }
  list.replaceChildren(...items);
  if (toBottom || nearBottom) list.scrollTop = list.scrollHeight;
  renderTyping();
}

/** The heading of one day's messages. */
function daySeparator(iso) {
  const item = document.createElement('li');
  item.className = 'day';
  item.setAttribute('role', 'separator');
  const time = document.createElement('time');
  time.dateTime = iso.slice(0, 10);
  time.textContent = dayLabel(iso);
  item.append(time);
  return item;
}

/** A message's body: its text, with the mentions of members marked (as
 * text in spans of their own, never markup), a mention of me most of all. */
function messageBody(room, text) {
  const usernames = new Set((state.members.get(room) ?? []).map((member) => member.user.username));
  return mentionRuns(text).map((run) => {
    if (!run.username || !usernames.has(run.username)) return run.text;
    return span(run.username === api.user.username ? 'mention me' : 'mention', run.text);
  });
}

function messageItem(room, message) {
  const item = document.createElement('li');
  const mine = message.sender_id === api.user.id;
  item.className = mine ? 'mine' : '';
  if (message.seq === null) {
    item.classList.add('pending');
    item.dataset.pending = message.client_id;
  } else {
    item.dataset.seq = message.seq;
  }
  if (message.deleted) item.classList.add('deleted');

  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.append(span('author', bdi(nameOf(message.sender_id))));
  if (message.seq === null) {
    meta.append(span('status', 'sending…'));
  } else if (message.created_at) {
    const time = document.createElement('time');
    time.className = 'time';
    time.dateTime = message.created_at;
    time.title = fullTime(message.created_at);
    time.textContent = timeOfDay(message.created_at);
    meta.append(time);
  }
  if (message.edited_at && !message.deleted) meta.append(span('edited', 'edited'));
  item.append(meta);

  if (message.reply_to) {
    const quoted = state.messages.get(room)?.get(message.reply_to);
    const quote = document.createElement('div');
    quote.className = 'quote';
    if (!quoted) quote.textContent = '↪ an earlier message';
    else if (quoted.deleted) quote.append('↪ ', bdi(nameOf(quoted.sender_id)), ': message deleted');
    else quote.append('↪ ', bdi(nameOf(quoted.sender_id)), ': ', bdi(quoted.body));
    item.append(quote);
  }

  if (state.editing === message.seq && message.seq !== null) {
    const input = document.createElement('textarea');
    input.className = 'edit-input';
    input.value = message.body;
    input.setAttribute('aria-label', 'Edit message');
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        const body = input.value.trim();
        if (body) socket.send({ type: 'edit', room, seq: message.seq, body });
        state.editing = null;
        renderMessages();
        $('composer-input').focus();
      } else if (event.key === 'Escape') {
        state.editing = null;
        renderMessages();
        $('composer-input').focus();
      }
    });
    item.append(input);
    queueMicrotask(() => input.focus());
  } else {
    const body = document.createElement('div');
    body.className = 'body';
    body.dir = 'auto';
    if (message.deleted) body.textContent = 'message deleted';
    else body.append(...messageBody(room, message.body));
    item.append(body);
  }
  if (!message.deleted && message.attachments?.length) item.append(attachmentList(message.attachments));

  if (message.seq !== null && !message.deleted) {
    const actions = document.createElement('div');
    actions.className = 'meta actions';
    actions.append(linkButton('Reply', () => { state.replyTo = message.seq; renderReply(); $('composer-input').focus(); }));
    if (mine) {
      actions.append(linkButton('Edit', () => { state.editing = message.seq; renderMessages(); }));
      actions.append(linkButton('Delete', () => socket.send({ type: 'delete', room, seq: message.seq })));
    }
    if (mine) {
      const readers = [...(state.markers.get(room) ?? new Map())]
        .filter(([user, seq]) => user !== api.user.id && seq >= message.seq)
        .map(([user]) => nameOf(user));
      if (readers.length) actions.append(span('read-by', 'read by ', ...listed(readers)));
    }
    item.append(actions);
    item.append(reactionRow(room, message));
  }
  return item;
}

/** The message's reactions with their counts (mine pressed: a click takes
 * it back, another's adds mine), and the picker to add one. */
function reactionRow(room, message) {
  const row = document.createElement('div');
  row.className = 'reactions';
  for (const reaction of message.reactions ?? []) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = reaction.me ? 'reaction mine' : 'reaction';
    button.setAttribute('aria-pressed', String(reaction.me));
    button.setAttribute('aria-label', `${reaction.emoji} ${reaction.count}${reaction.me ? ', yours' : ''}`);
    button.append(span('emoji', reaction.emoji), span('count', String(reaction.count)));
    button.addEventListener('click', () => toggleReaction(room, message.seq, reaction.emoji, reaction.me));
    row.append(button);
  }
  const add = document.createElement('button');
  add.type = 'button';
  add.className = 'reaction add';
  add.textContent = '+';
  add.setAttribute('aria-label', 'Add a reaction');
  add.setAttribute('aria-expanded', String(state.picking === message.seq));
  add.addEventListener('click', () => {
    state.picking = state.picking === message.seq ? null : message.seq;
    renderMessages();
  });
  row.append(add);
  if (state.picking === message.seq) {
    const picker = document.createElement('div');
    picker.className = 'picker';
    picker.setAttribute('role', 'group');
    picker.setAttribute('aria-label', 'Reactions');
    for (const emoji of PICKER) {
      const mine = (message.reactions ?? []).some((r) => r.emoji === emoji && r.me);
      const choice = document.createElement('button');
      choice.type = 'button';
      choice.className = 'pick';
      choice.textContent = emoji;
      choice.setAttribute('aria-label', `React ${emoji}`);
      choice.addEventListener('click', () => {
        state.picking = null;
        toggleReaction(room, message.seq, emoji, mine);
      });
      picker.append(choice);
    }
    row.append(picker);
  }
  return row;
}

/** Adds or takes back my reaction; the room's `reaction_*` frames redraw it. */
function toggleReaction(room, seq, emoji, mine) {
  socket.send({ type: mine ? 'unreact' : 'react', room, seq, emoji });
  renderMessages();
}

/** Counts a `reaction_added` (delta 1) or `reaction_removed` (-1) frame in
 * the message's reactions: the server sends one per change, never a repeat. */
function countReaction(frame, delta) {
  const message = state.messages.get(frame.room)?.get(frame.seq);
  if (!message) return;
  const reactions = message.reactions ?? [];
  let reaction = reactions.find((r) => r.emoji === frame.emoji);
  if (!reaction) {
    if (delta < 0) return;
    reaction = { emoji: frame.emoji, count: 0, me: false };
    reactions.push(reaction);
  }
  reaction.count = Math.max(0, reaction.count + delta);
  if (frame.user_id === api.user.id) reaction.me = delta > 0;
  message.reactions = reactions.filter((r) => r.count > 0);
  if (frame.room === state.current) renderMessages();
}

/** Reads the newest page again for its reactions: an erased account's went
 * with it, and a frame names no counts to take them from. */
async function refreshReactions(room) {
  const known = state.messages.get(room);
  if (!known) return;
  try {
    const page = await api.history(room);
    for (const message of page.messages) {
      const mine = known.get(message.seq);
      if (mine) mine.reactions = message.reactions ?? [];
    }
    if (room === state.current) renderMessages();
  } catch {
    // The next opening of the room reads them anyway.
  }
}

function renderReply() {
  const preview = $('reply-preview');
  const target = state.replyTo && state.messages.get(state.current)?.get(state.replyTo);
  preview.hidden = !target;
  $('reply-text').replaceChildren(...(target ? ['Replying to ', bdi(nameOf(target.sender_id)), ': ', bdi(target.body)] : []));
}
$('reply-cancel').addEventListener('click', () => { state.replyTo = null; renderReply(); });

// ---------- composing ----------

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});

$('composer-input').addEventListener('keydown', (event) => {
  const suggesting = state.suggesting;
  if (suggesting && ['ArrowDown', 'ArrowUp'].includes(event.key)) {
    event.preventDefault();
    const step = event.key === 'ArrowDown' ? 1 : -1;
    suggesting.selected = (suggesting.selected + step + suggesting.candidates.length) % suggesting.candidates.length;
    suggestMentions();
    return;
  }
  if (suggesting && (event.key === 'Tab' || (event.key === 'Enter' && !event.shiftKey))) {
    event.preventDefault();
    chooseMention(suggesting.selected);
    return;
  }
  if (suggesting && event.key === 'Escape') {
    event.preventDefault();
    state.suggesting = null;
    $('mention-suggestions').hidden = true;
    return;
  }
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    send();
  }
});

// ---------- mention suggestions ----------

/** Shows the members the `@` being typed may name, or hides the list. */
function suggestMentions() {
  const input = $('composer-input');
  const typing = state.current && mentionAtCaret(input.value, input.selectionStart);
  const members = typing ? state.members.get(state.current) ?? [] : [];
  const candidates = typing ? mentionCandidates(members, typing.prefix, api.user.id) : [];
  const list = $('mention-suggestions');
  if (!candidates.length) {
    state.suggesting = null;
    list.hidden = true;
    list.replaceChildren();
    return;
  }
  const selected = Math.min(state.suggesting?.selected ?? 0, candidates.length - 1);
  state.suggesting = { start: typing.start, candidates, selected };
  list.replaceChildren(...candidates.map((member, index) => {
    const item = document.createElement('li');
    item.setAttribute('role', 'option');
    item.setAttribute('aria-selected', String(index === selected));
    item.dataset.username = member.user.username;
    item.append(bdi(member.user.display_name), span('username', `@${member.user.username}`));
    // Before the textarea loses focus to the click.
    item.addEventListener('mousedown', (event) => {
      event.preventDefault();
      chooseMention(index);
    });
    return item;
  }));
  list.hidden = false;
}

/** Replaces the `@` being typed with the chosen member's `@username `. */
function chooseMention(index) {
  const input = $('composer-input');
  const { start, candidates } = state.suggesting;
  const text = `@${candidates[index].user.username} `;
  const caret = input.selectionStart;
  input.value = input.value.slice(0, start) + text + input.value.slice(caret);
  input.selectionStart = input.selectionEnd = start + text.length;
  state.suggesting = null;
  suggestMentions();
  input.focus();
}

$('composer-input').addEventListener('input', suggestMentions);
$('composer-input').addEventListener('click', suggestMentions);
$('composer-input').addEventListener('blur', () => { $('mention-suggestions').hidden = true; state.suggesting = null; });

let lastTypingSent = 0;
$('composer-input').addEventListener('input', () => {
  const now = Date.now();
  if (state.current && now - lastTypingSent > 2000 && $('composer-input').value) {
    lastTypingSent = now;
    socket.send({ type: 'typing', room: state.current });
  }
});

/** Sends what the composer holds: its chosen files uploaded first, then the
 * message carrying them (a message of files alone is titled by their names).
 * A refused upload (too large, over quota, too many) keeps the text and the
 * files, and says why. */
async function send() {
  const input = $('composer-input');
  const room = state.current;
  const files = state.chosen.map((chosen) => chosen.file);
  const body = input.value.trim() || files.map((file) => file.name).join(', ');
  if (!body || !room || state.uploading) return;
  const replyTo = state.replyTo;
  const attachments = [];
  if (files.length) {
    state.uploading = true;
    renderChosen();
    $('conversation-error').textContent = '';
    let uploading = null;
    try {
      for (uploading of files) attachments.push(await api.uploadAttachment(room, uploading));
    } catch (err) {
      $('conversation-error').textContent = uploadRefusal(uploading, err);
      return;
    } finally {
      state.uploading = false;
      renderChosen();
    }
  }
  // Sent to the room it was written in, even if another was opened meanwhile.
  const here = state.current === room;
  const ids = attachments.map((attachment) => attachment.id);
  const clientId = socket.sendMessage(room, body, replyTo, ids);
  state.pending.set(clientId, { room, body, reply_to: replyTo, attachments });
  if (!here) return;
  input.value = '';
  state.replyTo = null;
  clearChosen();
  renderReply();
  renderMessages({ toBottom: true });
}

// ---------- attachments ----------

/** What to tell the sender when the upload of `file` is refused (too large
 * or past the quota: 413; too many uploads: 429; a bad name: 422). */
function uploadRefusal(file, err) {
  const reason = err.status === 429 ? `too many uploads for now (${err.message})` : err.message;
  return `${file.name} was not sent: ${reason}`;
}

/** Adds files to those chosen for the next message (at most MAX_FILES). */
function choose(files) {
  if (!state.current) return;
  for (const file of files) {
    if (state.chosen.length >= MAX_FILES) {
      $('conversation-error').textContent = `At most ${MAX_FILES} files per message.`;
      break;
    }
    state.chosen.push({ key: crypto.randomUUID(), file });
  }
  renderChosen();
  $('composer-input').focus();
}

function clearChosen() {
  state.chosen = [];
  renderChosen();
}

/** The chosen files as chips, each removable until the message is sent. */
function renderChosen() {
  const list = $('chosen-files');
  list.hidden = !state.chosen.length;
  list.setAttribute('aria-busy', String(state.uploading));
  list.replaceChildren(...state.chosen.map(({ key, file }) => {
    const chip = document.createElement('li');
    chip.className = 'chip';
    chip.append(bdi(file.name), span('size', formatSize(file.size)));
    const remove = linkButton('✕', () => {
      state.chosen = state.chosen.filter((chosen) => chosen.key !== key);
      renderChosen();
    }, `Remove ${file.name}`);
    remove.disabled = state.uploading;
    chip.append(remove);
    return chip;
  }));
  if (state.uploading) list.append(span('hint', 'uploading…'));
  $('composer').querySelector('button[type="submit"]').disabled = state.uploading;
}

$('attach-button').addEventListener('click', () => $('attach-input').click());
$('attach-input').addEventListener('change', (event) => {
  choose([...event.target.files]);
  event.target.value = '';
});

// Files dropped anywhere on the conversation join the chosen ones.
const dropZone = $('conversation');
const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
dropZone.addEventListener('dragover', (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = 'copy';
  dropZone.classList.add('dropping');
});
dropZone.addEventListener('dragleave', (event) => {
  if (!dropZone.contains(event.relatedTarget)) dropZone.classList.remove('dropping');
});
dropZone.addEventListener('drop', (event) => {
  dropZone.classList.remove('dropping');
  if (!carriesFiles(event)) return;
  event.preventDefault();
  choose([...event.dataTransfer.files]);
});

/** A message's files: an image as its preview (a link to it at full size),
 * anything else as a download link with its name and size. Names are
 * text, never markup. */
function attachmentList(attachments) {
  const list = document.createElement('ul');
  list.className = 'attachments';
  list.setAttribute('aria-label', 'Files');
  for (const attachment of attachments) {
    const item = document.createElement('li');
    const url = attachmentUrl(attachment.id);
    if (IMAGE_TYPES.has(attachment.content_type)) {
      const view = document.createElement('a');
      view.href = url;
      view.target = '_blank';
      view.rel = 'noopener';
      view.className = 'preview';
      view.append(preview(attachment));
      item.append(view);
    }
    const link = document.createElement('a');
    link.href = url;
    link.download = attachment.name;
    link.className = 'download';
    link.append(bdi(attachment.name), span('size', formatSize(attachment.size)));
    item.append(link);
    list.append(item);
  }
  return list;
}

/** The `<img>` of an image attachment, made once per attachment. */
function preview(attachment) {
  let image = previews.get(attachment.id);
  if (!image) {
    image = document.createElement('img');
    // The thumbnail (at most 320×320): the page shows no more than that,
    // and the server decodes the image once, within its bounds.
    image.src = `${attachmentUrl(attachment.id)}/thumbnail`;
    image.alt = attachment.name;
    image.decoding = 'async';
    if (attachment.width && attachment.height) {
      image.width = attachment.width;
      image.height = attachment.height;
    }
    previews.set(attachment.id, image);
    if (previews.size > PREVIEWS_KEPT) previews.delete(previews.keys().next().value);
  }
  return image;
}

/** `bytes` for a reader: 812 B, 4.2 KB, 3.1 MB. */
function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// ---------- members, read state, typing, presence ----------

async function loadMembers(room) {
  try {
    const [members, markers] = await Promise.all([api.members(room), api.readMarkers(room)]);
    state.members.set(room, members);
    for (const member of members) {
      state.names.set(member.user.id, member.user.display_name);
      if (member.online) state.online.add(member.user.id);
      else state.online.delete(member.user.id);
    }
    state.markers.set(room, new Map(markers.map((m) => [m.user_id, m.last_read_seq])));
    renderMembers();
  } catch (err) {
    $('conversation-error').textContent = err.message;
  }
}

$('members-button').addEventListener('click', () => {
  const panel = $('members');
  panel.hidden = !panel.hidden;
  $('members-button').setAttribute('aria-expanded', String(!panel.hidden));
});

function renderMembers() {
  const members = state.members.get(state.current) ?? [];
  $('member-list').replaceChildren(...members.map((member) => {
    const item = document.createElement('li');
    const dot = span(`dot${state.online.has(member.user.id) ? ' online' : ''}`, '');
    dot.setAttribute('role', 'img');
    dot.setAttribute('aria-label', state.online.has(member.user.id) ? 'online' : 'offline');
    item.append(dot, span('member-name', bdi(member.user.display_name), member.role === 'member' ? '' : ` (${member.role})`));
    if (member.user.id !== api.user.id) {
      item.append(linkButton('Message', () => openDirect(member.user.id), `Message ${member.user.display_name}`));
    }
    return item;
  }));
}

async function openDirect(userId) {
  try {
    const room = await api.directRoom(userId);
    addRoom(room);
    openRoom(room.id);
  } catch (err) {
    $('conversation-error').textContent = err.message;
  }
}

/** Tells the server the newest message of the open room has been seen. */
function markRead() {
  const room = state.rooms.get(state.current);
  if (!room || document.hidden || !socket.online) return;
  const newest = Math.max(0, ...(state.messages.get(room.id)?.keys() ?? []));
  if (newest > room.last_read_seq) socket.send({ type: 'read', room: room.id, seq: newest });
}
document.addEventListener('visibilitychange', markRead);

function renderTyping() {
  const now = Date.now();
  const typing = state.typing.get(state.current) ?? new Map();
  const names = [...typing].filter(([, until]) => until > now).map(([user]) => nameOf(user));
  $('typing').replaceChildren(...(names.length ? [...listed(names), ` ${names.length > 1 ? 'are' : 'is'} typing…`] : []));
}
setInterval(renderTyping, 500);

// ---------- live frames ----------

socket.addEventListener('status', (event) => {
  $('banner').hidden = event.detail;
  if (event.detail) {
    // Back online: the room list may have moved on while we were away.
    loadRooms();
    if (state.current) loadMembers(state.current);
  }
});

socket.addEventListener('frame', (event) => {
  const frame = event.detail;
  switch (frame.type) {
    case 'message': onMessage(frame); break;
    case 'ack': {
      // Stored: show it in its place at once (its `message` frame may follow).
      const pending = state.pending.get(frame.client_id);
      state.pending.delete(frame.client_id);
      if (pending && state.messages.has(frame.room)) {
        state.messages.get(frame.room).set(frame.seq, {
          room_id: frame.room, seq: frame.seq, sender_id: api.user.id, body: pending.body,
          created_at: frame.created_at, client_id: frame.client_id, reply_to: pending.reply_to,
          attachments: pending.attachments,
        });
      }
      renderMessages();
      break;
    }
    case 'message_edited': {
      const message = state.messages.get(frame.room)?.get(frame.seq);
      if (message) Object.assign(message, { body: frame.body, edited_at: frame.edited_at });
      const room = state.rooms.get(frame.room);
      if (room?.last_message?.seq === frame.seq) {
        room.last_message = { ...room.last_message, body: frame.body };
        renderRooms();
      }
      if (frame.room === state.current) renderMessages();
      break;
    }
    case 'message_deleted': {
      const message = state.messages.get(frame.room)?.get(frame.seq);
      if (message) Object.assign(message, { body: '', deleted: true, reactions: [] });
      const room = state.rooms.get(frame.room);
      if (room?.last_message?.seq === frame.seq) {
        room.last_message = { ...room.last_message, body: '', deleted: true };
        renderRooms();
      }
      if (frame.room === state.current) renderMessages();
      break;
    }
    case 'read': {
      if (!state.markers.has(frame.room)) state.markers.set(frame.room, new Map());
      state.markers.get(frame.room).set(frame.user_id, frame.seq);
      const room = state.rooms.get(frame.room);
      if (room && frame.user_id === api.user.id) {
        // Another tab (or this one) read up to here: clear the badge everywhere.
        room.last_read_seq = Math.max(room.last_read_seq, frame.seq);
        room.unread_count = unreadAfter(frame.room, room.last_read_seq, room.unread_count);
        room.unread_mentions = mentionsAfter(frame.room, room.last_read_seq, room.unread_mentions);
        renderRooms();
      }
      if (frame.room === state.current) renderMessages();
      break;
    }
    case 'typing': {
      if (!state.typing.has(frame.room)) state.typing.set(frame.room, new Map());
      state.typing.get(frame.room).set(frame.user_id, Date.now() + frame.expires_in_ms);
      if (frame.room === state.current) renderTyping();
      break;
    }
    case 'presence': {
      if (frame.status === 'online') state.online.add(frame.user_id);
      else state.online.delete(frame.user_id);
      renderMembers();
      break;
    }
    case 'member_joined': {
      if (frame.user_id === api.user.id && !state.rooms.has(frame.room)) {
        api.room(frame.room).then(addRoom).catch(() => {});
      } else if (frame.room === state.current) loadMembers(frame.room);
      break;
    }
    case 'member_left':
    case 'member_removed': {
      if (frame.user_id === api.user.id) dropRoom(frame.room);
      else if (frame.room === state.current) loadMembers(frame.room);
      break;
    }
    case 'user_deleted': {
      state.names.set(frame.user_id, 'Deleted user');
      if (frame.erased) {
        for (const message of state.messages.get(frame.room)?.values() ?? []) {
          if (message.sender_id === frame.user_id) Object.assign(message, { body: '', deleted: true });
        }
        const room = state.rooms.get(frame.room);
        if (room?.last_message?.sender_id === frame.user_id) room.last_message = { ...room.last_message, body: '', deleted: true };
      }
      renderRooms();
      if (frame.room === state.current) renderMessages();
      refreshReactions(frame.room);
      break;
    }
    case 'reaction_added': countReaction(frame, 1); break;
    case 'reaction_removed': countReaction(frame, -1); break;
    case 'role_changed': if (frame.room === state.current) loadMembers(frame.room); break;
    case 'room_updated': {
      const room = state.rooms.get(frame.room.id);
      if (room) Object.assign(room, frame.room);
      renderRooms();
      if (frame.room.id === state.current) $('room-title').replaceChildren(...roomTitle(room));
      break;
    }
    case 'room_deleted': dropRoom(frame.room); break;
    case 'invited': {
      state.invitations.set(frame.room, { room: frame.room, room_name: frame.name, by: frame.by });
      renderInvitations();
      break;
    }
    case 'mentioned': {
      // On every connection of mine, whichever room is open: a badge until read.
      const room = state.rooms.get(frame.room);
      if (!room || frame.seq <= room.last_read_seq) break;
      if (!state.mentions.has(frame.room)) state.mentions.set(frame.room, new Set());
      const seqs = state.mentions.get(frame.room);
      if (!seqs.has(frame.seq)) {
        seqs.add(frame.seq);
        room.unread_mentions = (room.unread_mentions ?? 0) + 1;
      }
      renderRooms();
      break;
    }
    case 'error': $('conversation-error').textContent = frame.message; break;
    default: break;
  }
});

function onMessage(frame) {
  const message = {
    room_id: frame.room, seq: frame.seq, sender_id: frame.sender_id, body: frame.body,
    created_at: frame.created_at, client_id: frame.client_id, reply_to: frame.reply_to,
    reactions: frame.reactions ?? [], attachments: frame.attachments ?? [],
  };
  if (state.messages.has(frame.room)) state.messages.get(frame.room).set(frame.seq, message);
  state.typing.get(frame.room)?.delete(frame.sender_id);
  const room = state.rooms.get(frame.room);
  if (room) {
    room.last_seq = Math.max(room.last_seq, frame.seq);
    room.last_message = message;
    const mine = frame.sender_id === api.user.id;
    if (!mine && frame.room !== state.current) room.unread_count += 1;
  }
  renderRooms();
  if (frame.room === state.current) {
    renderMessages();
    markRead();
  }
}

function unreadAfter(room, seq, fallback) {
  const known = state.messages.get(room);
  if (!known) return seq >= (state.rooms.get(room)?.last_seq ?? 0) ? 0 : fallback;
  return [...known.values()].filter((m) => m.seq > seq && m.sender_id !== api.user.id && !m.deleted).length;
}

/** Unread mentions once the marker is at `seq`: those this page heard of
 * drop as they are read; the count from the room list drops to 0 once
 * everything is read. */
function mentionsAfter(room, seq, count) {
  const seqs = state.mentions.get(room) ?? new Set();
  let left = count ?? 0;
  for (const mentioned of [...seqs]) {
    if (mentioned <= seq) {
      seqs.delete(mentioned);
      left -= 1;
    }
  }
  if (seq >= (state.rooms.get(room)?.last_seq ?? 0)) return 0;
  return Math.max(left, seqs.size);
}

function dropRoom(id) {
  state.rooms.delete(id);
  state.messages.delete(id);
  if (state.current === id) {
    state.current = null;
    $('conversation').hidden = true;
    document.body.classList.remove('in-room');
  }
  renderRooms();
}

// ---------- search ----------

$('search-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const q = $('search-input').value.trim();
  const list = $('search-results');
  $('sidebar-error').textContent = '';
  if (!q) {
    list.hidden = true;
    return;
  }
  try {
    const page = await api.search(q);
    list.replaceChildren(...(page.results.length ? page.results.map(searchResult) : [emptyResult()]));
    list.hidden = false;
  } catch (err) {
    $('sidebar-error').textContent = err.message;
  }
});

$('search-input').addEventListener('search', () => {
  if (!$('search-input').value) $('search-results').hidden = true;
});

/** A found message: its room, sender and body, the matched words marked;
 * every run is set as text, never as markup. */
function searchResult({ message, parts }) {
  const item = document.createElement('li');
  const room = state.rooms.get(message.room_id);
  const body = span('body');
  body.dir = 'auto';
  for (const part of parts) {
    if (part.matched) {
      const mark = document.createElement('mark');
      mark.textContent = part.text;
      body.append(mark);
    } else {
      body.append(part.text);
    }
  }
  const open = linkButton('', () => openRoom(message.room_id));
  open.append(span('meta', bdi(room ? room.name : `room ${message.room_id}`), ' · ',
    bdi(nameOf(message.sender_id))), body);
  item.append(open);
  return item;
}

function emptyResult() {
  const item = document.createElement('li');
  item.className = 'hint';
  item.textContent = 'No message holds every word.';
  return item;
}

// ---------- helpers ----------

/** A span of `className` holding `parts` (text, or nodes such as `bdi`s). */
function span(className, ...parts) {
  const element = document.createElement('span');
  element.className = className;
  element.append(...parts);
  return element;
}

/** `text` isolated from what surrounds it, whatever its direction. */
function bdi(text) {
  const element = document.createElement('bdi');
  element.textContent = text;
  return element;
}

/** `names`, each isolated, separated by commas. */
function listed(names) {
  return names.flatMap((name, at) => (at ? [', ', bdi(name)] : [bdi(name)]));
}

function linkButton(label, onClick, ariaLabel) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link';
  button.textContent = label;
  if (ariaLabel) button.setAttribute('aria-label', ariaLabel);
  button.addEventListener('click', onClick);
  return button;
}

function nameOf(userId) {
  if (userId === api.user?.id) return 'you';
  return state.names.get(userId) ?? `user ${userId}`;
}

// ---------- start ----------

if (api.session) showChat();
else showAuth();
