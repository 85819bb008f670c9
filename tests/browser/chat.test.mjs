// Two people chat through Palaver's web client in a real headless Chromium:
// sign up, create and join a room, messages both ways with their times under a
// day separator (no raw seq shown), typing, unread badges, @mentions (suggested
// from the members while typing, highlighted, told and counted in a badge),
// edits, deletes, replies, presence, a direct message, a server restart with
// a message sent while offline, token refresh, and logging out; signed in by
// cookies no script can read; files attached by the picker and by dropping
// (chips before sending, an image previewed, a download link that fetches the
// bytes, a refusal for one too large, names shown as text); the settings (e-mail verified with the mailed
// code, display name, the session list, log out everywhere, deleting an
// account) and "Forgot password?" through to a new password, with the codes
// taken from the mails the server wrote. Then, over https (a node serving
// TLS with a certificate made here by openssl, trusted by its key's hash): the
// plain-HTTP listener's redirect, the cookie sign-in with its `__Host-`
// cookies, a message over the WebSocket (wss), and HSTS taken by the browser.
// Screenshots of the main screens go to docs/ (referenced from README.md).
//
//   PALAVER_BIN=target/debug/palaver node tests/browser/chat.test.mjs
//
// scripts/browser-test installs Chromium and playwright-core, then runs this.

import { execFileSync, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { deflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.PALAVER_BIN ?? join(ROOT, 'target/debug/palaver');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const SHOTS = process.env.PALAVER_SCREENSHOTS ?? join(ROOT, 'docs');
const WAIT = 15_000;
const TOKEN_TTL_SECS = 8;
// The TLS node's name: not localhost, so the browser keeps `Secure` cookies
// only over https. Chromium resolves it to 127.0.0.1 (--host-resolver-rules).
const TLS_HOST = 'palaver.test';
// The largest attachment the test's server takes (a bigger one shows the refusal).
const MAX_ATTACHMENT_BYTES = 100_000;

let step = 'starting';
const log = (message) => console.log(`  ${message}`);

// What a failure report shows: the newest WebSocket frames of each page and
// the newest server log lines. Kept in memory, printed only when a step fails.
const TRAIL_LINES = 200;
const trail = [];
function remember(line) {
  trail.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  if (trail.length > TRAIL_LINES) trail.shift();
}
// The pages followed, by name: a failure report shows what each displayed.
const followed = new Map();
let shown = [];
function followSockets(page, name) {
  followed.set(name, page);
  page.on('websocket', (ws) => {
    remember(`${name} ws open ${ws.url()}`);
    ws.on('framesent', ({ payload }) => remember(`${name} -> ${String(payload).slice(0, 300)}`));
    ws.on('framereceived', ({ payload }) => remember(`${name} <- ${String(payload).slice(0, 300)}`));
    ws.on('close', () => remember(`${name} ws closed`));
  });
}
function check(condition, message) {
  if (!condition) throw new Error(`${step}: ${message}`);
}

async function freePort() {
  return new Promise((done) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Starts palaver on `port` with `dataDir` (and `extra` flags); resolves once it listens. */
function startServer(port, dataDir, extra = []) {
  const child = spawn(BIN, [
    '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir,
    '--argon2-memory-kib', '256', '--argon2-iterations', '1',
    '--access-token-ttl-secs', String(TOKEN_TTL_SECS), '--log-format', 'json', '--metrics-listen', 'off',
    ...extra,
  ], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn,palaver_server=info,palaver_domain=info' } });
  return new Promise((done, fail) => {
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      for (const line of String(chunk).split('\n')) if (line) remember(`server ${line.slice(0, 400)}`);
      if (buffered.includes('palaver listening')) done(child);
    });
    child.on('exit', (code) => fail(new Error(`palaver exited with ${code}`)));
  });
}

async function stopServer(child) {
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  await exited;
}

/** The code of the newest mail to `to` whose subject names `kind` and that
 * was not read before: the server writes its mails to <data-dir>/mail/. */
const readMails = new Set();
async function mailedCode(dataDir, to, kind) {
  const dir = join(dataDir, 'mail');
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    const names = existsSync(dir) ? readdirSync(dir).sort().reverse() : [];
    for (const name of names.filter((n) => !readMails.has(n))) {
      const text = readFileSync(join(dir, name), 'utf8');
      const code = text.match(new RegExp(`${kind} code: (\\d{6})`))?.[1];
      if (code && text.includes(`To: ${to}`)) {
        readMails.add(name);
        return code;
      }
    }
    await new Promise((done) => { setTimeout(done, 100); });
  }
  throw new Error(`no ${kind} mail to ${to}`);
}

async function openSettings(page) {
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.locator('#settings').waitFor({ state: 'visible' });
}

async function signUp(page, base, username) {
  await page.goto(base);
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(`${username} password 1`);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT });
}

async function logIn(page, base, username) {
  await page.goto(base);
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(`${username} password 1`);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT });
}

const message = (page, text) => page.locator('#messages li', { hasText: text });
// By the room's name alone: a last message may hold another room's name.
const roomButton = (page, name) => page.locator('#room-list button.room')
  .filter({ has: page.locator('.name', { hasText: name }) });

async function send(page, text) {
  const input = page.getByLabel('Message', { exact: true });
  await input.fill(text);
  await input.press('Enter');
}

/** A PNG of `width` × `height` pixels, a colour gradient (RGB, 8 bits). */
function makePng(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (bytes) => {
    let c = 0xffffffff;
    for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < height; y += 1) {
    rows.push(0); // no filter
    for (let x = 0; x < width; x += 1) rows.push(40 + (x * 200) / width, 90 + (y * 120) / height, 200 - (x * 120) / width);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Files: picked with the attach button (a chip each, one removed before
 * sending), an image previewed for both users, a file dropped on the
 * conversation and sent alone, its download link fetching its bytes, one
 * too large refused with the server's reason; names shown as text. */
async function attachments(alice, bob) {
  step = 'attachments: picked with the attach button, shown as removable chips';
  const png = makePng(160, 96);
  const imageName = '<i>sunset.png';
  const chooser = alice.waitForEvent('filechooser');
  await alice.getByRole('button', { name: 'Attach files' }).click();
  await (await chooser).setFiles([
    { name: imageName, mimeType: 'image/png', buffer: png },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not this one') },
  ]);
  const chips = alice.locator('#chosen-files .chip');
  await chips.filter({ hasText: 'notes.txt' }).waitFor();
  check(await chips.count() === 2, `${await chips.count()} chips for two files`);
  await alice.getByRole('button', { name: 'Remove notes.txt' }).click();
  await chips.filter({ hasText: 'notes.txt' }).waitFor({ state: 'detached' });
  await send(alice, 'the view from here');
  await alice.locator('#chosen-files').waitFor({ state: 'hidden' }).catch(async (err) => {
    throw new Error(`${err.message}\nshown: ${await alice.locator('#conversation-error').textContent()}`);
  });
  log('two files picked, one removed before sending');

  step = 'attachments: an image is previewed, for the sender and another member';
  for (const page of [alice, bob]) {
    const item = message(page, 'the view from here');
    const image = item.locator('.attachments img');
    await image.waitFor();
    await page.waitForFunction((element) => element.complete && element.naturalWidth > 0,
      await image.elementHandle(), { timeout: WAIT });
    const size = await image.evaluate((element) => [element.naturalWidth, element.naturalHeight]);
    check(size[0] === 160 && size[1] === 96, `the preview is ${size.join('×')}`);
    check(await item.locator('.attachments').count() === 1 && await item.locator('.attachments li').count() === 1,
      'the removed file was sent too');
    check(await item.locator('.attachments i').count() === 0, 'markup in a file name was rendered');
    const named = await item.locator('.attachments .download bdi').textContent();
    check(named === imageName, `the file is named ${named}`);
  }
  log('the PNG shows as an image (160×96) to alice and bob; its name as text');

  step = 'attachments: a file dropped on the conversation, sent alone; its link downloads it';
  const report = 'quarterly figures\n'.repeat(200);
  const transfer = await alice.evaluateHandle((text) => {
    const data = new DataTransfer();
    data.items.add(new File([text], 'report.txt', { type: 'text/plain' }));
    return data;
  }, report);
  await alice.locator('#messages').dispatchEvent('dragover', { dataTransfer: transfer });
  await alice.locator('#conversation.dropping').waitFor();
  await alice.locator('#messages').dispatchEvent('drop', { dataTransfer: transfer });
  await chips.filter({ hasText: 'report.txt' }).waitFor();
  check(!(await alice.locator('#conversation').getAttribute('class') ?? '').includes('dropping'), 'the drop outline stays');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  const link = message(bob, 'report.txt').locator('.attachments a.download');
  await link.waitFor();
  const shown = await link.textContent();
  check(shown.includes('report.txt') && shown.includes('3.5 KB'), `the link reads ${shown}`);
  check(await message(bob, 'report.txt').locator('.attachments img').count() === 0, 'a text file is previewed');
  const [download] = await Promise.all([bob.waitForEvent('download'), link.click()]);
  check(download.suggestedFilename() === 'report.txt', `downloaded as ${download.suggestedFilename()}`);
  const fetched = readFileSync(await download.path(), 'utf8');
  check(fetched === report, `the download holds ${fetched.length} bytes, not ${report.length}`);
  log('report.txt dropped, sent, listed for bob with its size, and downloaded whole');

  step = 'attachments: one too large is refused with the reason, and nothing is sent';
  const before = await alice.locator('#messages li[data-seq]').count();
  await alice.locator('#attach-input').setInputFiles([
    { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(MAX_ATTACHMENT_BYTES + 1, 7) },
  ]);
  await send(alice, 'too big to send');
  await alice.locator('#conversation-error', { hasText: 'huge.bin was not sent: too large' }).waitFor();
  await chips.filter({ hasText: 'huge.bin' }).waitFor();
  check(await alice.getByLabel('Message', { exact: true }).inputValue() === 'too big to send', 'the text was lost');
  check(await alice.locator('#messages li[data-seq]').count() === before, 'a message was sent');
  await alice.getByRole('button', { name: 'Remove huge.bin' }).click();
  await alice.getByLabel('Message', { exact: true }).fill('');
  await alice.locator('#messages').evaluate((list) => { list.scrollTop = list.scrollHeight; });
  await alice.screenshot({ path: join(SHOTS, 'screenshot-attachments.png') });
  log(`a file past ${MAX_ATTACHMENT_BYTES} bytes: "${await alice.locator('#conversation-error').textContent()}"`);
  await alice.locator('#conversation-error').evaluate((element) => { element.textContent = ''; });
}

/** A self-signed certificate for TLS_HOST and its key, in `dir`; the
 * base64 SHA-256 of its public key, which Chromium is told to trust. */
function makeCertificate(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${TLS_HOST}`,
    '-addext', `subjectAltName=DNS:${TLS_HOST}`, '-addext', 'extendedKeyUsage=serverAuth',
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const spki = new X509Certificate(readFileSync(cert)).publicKey.export({ type: 'spki', format: 'der' });
  return { cert, key, spki: createHash('sha256').update(spki).digest('base64') };
}

/** Over https: the plain listener redirects there, a cookie sign-in sets the
 * `__Host-` cookies (Secure), the WebSocket (wss) carries a message, and the
 * browser keeps to https for the host afterwards (HSTS). */
async function overHttps(browser, tls, servers) {
  step = 'over https: the plain-HTTP listener redirects to https';
  const dataDir = mkdtempSync(join(tmpdir(), 'palaver-browser-tls-'));
  const [port, redirectPort] = [await freePort(), await freePort()];
  servers.push(await startServer(port, dataDir, [
    '--tls-cert', tls.cert, '--tls-key', tls.key, '--tls-redirect-listen', `127.0.0.1:${redirectPort}`,
  ]));
  const base = `https://${TLS_HOST}:${port}/`;
  const context = await browser.newContext();
  const page = await context.newPage();
  followSockets(page, 'dave');
  page.setDefaultTimeout(WAIT);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`http://${TLS_HOST}:${redirectPort}/`);
  check(page.url() === base, `the redirect led to ${page.url()}`);
  log(`http://${TLS_HOST}:${redirectPort}/ redirected to ${base}`);

  step = 'over https: cookie sign-in, and a message over wss';
  await signUp(page, base, 'dave');
  const cookies = (await context.cookies(base)).filter((c) => c.name.startsWith('__Host-palaver-'));
  const names = cookies.map((c) => c.name).sort();
  check(names.join() === '__Host-palaver-access,__Host-palaver-csrf,__Host-palaver-refresh',
    `the sign-in cookies are ${names.join() || 'missing'}`);
  check(cookies.every((c) => c.secure && c.sameSite === 'Strict'), `cookies: ${JSON.stringify(cookies)}`);
  await page.getByLabel('New room').fill('secure');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.locator('#room-title', { hasText: 'secure' }).waitFor();
  await send(page, 'hello over tls');
  await page.locator('#messages li[data-seq="1"]', { hasText: 'hello over tls' }).locator('time.time').waitFor();
  check(sockets.length > 0 && sockets.every((url) => url.startsWith(`wss://${TLS_HOST}:${port}/`)),
    `WebSockets opened: ${sockets.join(', ')}`);
  log('signed in by __Host- cookies over https; a message went through the wss WebSocket');

  step = 'over https: the browser took HSTS';
  // The TLS port speaks no plain HTTP: only the browser's own upgrade gets there.
  await page.goto(`http://${TLS_HOST}:${port}/`);
  check(page.url() === base, `http:// was not upgraded, but led to ${page.url()}`);
  await page.locator('#chat').waitFor({ state: 'visible' });
  log('http:// to the host was upgraded by the browser itself (HSTS)');
  await context.close();
  rmSync(dataDir, { recursive: true, force: true });
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'palaver-browser-'));
  const tlsDir = mkdtempSync(join(tmpdir(), 'palaver-browser-cert-'));
  const tls = makeCertificate(tlsDir);
  const tlsServers = [];
  const port = await freePort();
  const base = `http://127.0.0.1:${port}/`;
  const limits = ['--max-attachment-bytes', String(MAX_ATTACHMENT_BYTES)];
  let server = await startServer(port, dataDir, limits);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      `--ignore-certificate-errors-spki-list=${tls.spki}`,
      `--host-resolver-rules=MAP ${TLS_HOST} 127.0.0.1`,
    ],
  });
  try {
    const alice = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    const bobContext = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const bob = await bobContext.newPage();
    for (const [page, name] of [[alice, 'alice'], [bob, 'bob']]) {
      followSockets(page, name);
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (err) => { throw new Error(`page error: ${err.message}`); });
      if (process.env.PALAVER_BROWSER_DEBUG) page.on('console', (m) => console.log(`  [console] ${m.text()}`));
    }

    step = 'sign-up errors are shown inline';
    await alice.goto(base);
    await alice.screenshot({ path: join(SHOTS, 'screenshot-login.png') });
    await alice.getByLabel('Username', { exact: true }).fill('alice');
    await alice.getByLabel('Password', { exact: true }).fill('short');
    await alice.getByRole('button', { name: 'Sign up' }).click();
    await alice.locator('#auth-error', { hasText: 'password' }).waitFor();
    log('inline error shown for a short password');

    step = 'sign up and create a room';
    await signUp(alice, base, 'alice');
    const firstExpiry = await alice.evaluate(() => JSON.parse(localStorage.getItem('palaver.session')).expires_at);

    step = 'signed in by cookies: no token is readable by page scripts';
    const readable = await alice.evaluate(() => `${document.cookie} ${JSON.stringify(localStorage)}`);
    check(!/palaver-access|palaver-refresh|eyJ/.test(readable), `a token is readable: ${readable}`);
    check(readable.includes('__Host-palaver-csrf='), `the CSRF cookie is not readable: ${readable}`);
    log('only the CSRF token is readable');

    step = 'settings: an e-mail address, verified with the mailed code';
    await openSettings(alice);
    await alice.locator('#settings-email').fill('alice@example.test');
    await alice.getByRole('button', { name: 'Save e-mail' }).click();
    await alice.locator('#email-status', { hasText: '(not verified)' }).waitFor();
    await alice.locator('#settings-code').fill(await mailedCode(dataDir, 'alice@example.test', 'verification'));
    await alice.getByRole('button', { name: 'Verify' }).click();
    await alice.locator('#email-status', { hasText: '(verified)' }).waitFor();
    await alice.getByRole('button', { name: 'Settings' }).click();
    log('e-mail address verified with the code from the mail');
    await alice.getByLabel('New room').fill('lounge');
    await alice.getByRole('button', { name: 'Create' }).click();
    await alice.locator('#room-title', { hasText: 'lounge' }).waitFor();
    const code = (await alice.locator('#room-code').textContent()).replace('code ', '').trim();
    check(code.length === 8, `room code ${code}`);
    log(`alice created lounge (${code})`);

    step = 'join by code';
    await signUp(bob, base, 'bob');
    await bob.getByLabel('Join by code').fill(code);
    await bob.getByRole('button', { name: 'Join' }).click();
    await bob.locator('#room-title', { hasText: 'lounge' }).waitFor();
    log('bob joined by code');

    step = 'messages both ways, with pending then stored';
    await send(alice, 'hello bob');
    await alice.locator('#messages li[data-seq="1"]', { hasText: 'hello bob' }).waitFor();
    await message(bob, 'hello bob').waitFor();
    await send(bob, 'hi alice');
    await message(alice, 'hi alice').waitFor();
    log('messages delivered both ways');

    step = 'times on messages and a day separator; no raw seq shown';
    const stamp = message(alice, 'hello bob').locator('time.time');
    const [shown, datetime, title] = [await stamp.textContent(), await stamp.getAttribute('datetime'), await stamp.getAttribute('title')];
    const sentAt = new Date(datetime);
    check(!Number.isNaN(sentAt.getTime()) && Math.abs(Date.now() - sentAt.getTime()) < 120_000, `datetime ${datetime}`);
    const expected = await alice.evaluate((iso) => new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }), datetime);
    check(shown === expected, `the time shown is ${shown}, not ${expected}`);
    check(title && title.length > shown.length, `the full date is not in the title: ${title}`);
    const days = alice.locator('#messages li.day');
    check(await days.count() === 1, `${await days.count()} day separators for one day's messages`);
    check(await days.first().textContent() === 'Today', `the separator says ${await days.first().textContent()}`);
    const firstItem = await alice.locator('#messages li').first().getAttribute('class');
    check(firstItem === 'day', `the first item is not the day separator but ${firstItem}`);
    const texts = await alice.locator('#messages').innerText();
    check(!/#\d/.test(texts), `a raw seq is shown: ${texts}`);
    // A message of another day gets its own separator, in the reader's local time.
    const dayLabels = await alice.evaluate(async () => {
      const times = await import('/assets/times.js');
      const now = new Date(2026, 11, 7, 12, 0);
      return [
        times.dayLabel(new Date(2026, 11, 7, 0, 5).toISOString(), now),
        times.dayLabel(new Date(2026, 11, 6, 23, 55).toISOString(), now),
        times.dayLabel(new Date(2026, 10, 2, 9, 0).toISOString(), now),
        times.dayKey(new Date(2026, 11, 6, 23, 55).toISOString()) !== times.dayKey(new Date(2026, 11, 7, 0, 5).toISOString()),
      ];
    });
    check(dayLabels[0] === 'Today' && dayLabels[1] === 'Yesterday' && dayLabels[2].length > 8 && dayLabels[3],
      `day labels ${JSON.stringify(dayLabels)}`);
    log(`times shown (${shown}) under a "Today" separator; no #seq on screen`);

    step = 'typing indicator';
    // Keystrokes over more than 2 s, as a person types: the client repeats `typing`.
    await bob.getByLabel('Message', { exact: true }).pressSequentially('typing something', { delay: 180 });
    await alice.locator('#typing', { hasText: 'bob is typing' }).waitFor();
    await bob.getByLabel('Message', { exact: true }).fill('');
    log('alice saw bob typing');

    step = 'reply, edit and delete';
    await message(bob, 'hello bob').getByRole('button', { name: 'Reply' }).click();
    await send(bob, 'a reply');
    await message(alice, 'a reply').locator('.quote', { hasText: 'hello bob' }).waitFor();
    await message(alice, 'hello bob').getByRole('button', { name: 'Edit' }).click();
    const editor = alice.getByLabel('Edit message');
    await editor.fill('hello bob (edited)');
    await editor.press('Enter');
    await message(bob, 'hello bob (edited)').locator('.edited').waitFor();
    await message(alice, 'hi alice').waitFor();
    await send(alice, 'oops');
    await message(alice, 'oops').locator('time.time').waitFor();
    await message(alice, 'oops').getByRole('button', { name: 'Delete' }).click();
    await bob.locator('#messages li.deleted').waitFor();
    log('reply, edit and delete seen live');

    step = 'reactions: picker, counts, mine highlighted, click to toggle, in history';
    const reaction = (page, emoji) => message(page, 'hi alice').locator('.reaction', { hasText: emoji });
    await message(bob, 'hi alice').getByRole('button', { name: 'Add a reaction' }).click();
    await message(bob, 'hi alice').getByRole('button', { name: 'React 👍' }).click();
    await reaction(alice, '👍').locator('.count', { hasText: '1' }).waitFor();
    check(!(await reaction(alice, '👍').getAttribute('class')).includes('mine'), "bob's reaction shows as alice's");
    await reaction(bob, '👍').and(bob.locator('.mine')).waitFor();
    // Alice adds hers by clicking bob's, then takes it back.
    await reaction(alice, '👍').click();
    await reaction(bob, '👍').locator('.count', { hasText: '2' }).waitFor();
    await reaction(alice, '👍').and(alice.locator('.mine')).locator('.count', { hasText: '2' }).waitFor();
    await reaction(alice, '👍').click();
    await reaction(bob, '👍').locator('.count', { hasText: '1' }).waitFor();
    await reaction(alice, '👍').and(alice.locator('[aria-pressed="false"]')).waitFor();
    // A page read from history shows the same counts, bob's still his.
    await bob.reload();
    await roomButton(bob, 'lounge').click();
    await reaction(bob, '👍').and(bob.locator('.mine')).locator('.count', { hasText: '1' }).waitFor();
    log('reactions added, counted, toggled and read back from history');

    step = 'presence dots';
    await alice.getByRole('button', { name: 'Members' }).click();
    await alice.locator('#member-list li', { hasText: 'bob' }).getByRole('img', { name: 'online' }).waitFor();
    log('bob shows as online');

    step = 'unread badge';
    await alice.getByLabel('New room').fill('elsewhere');
    await alice.getByRole('button', { name: 'Create' }).click();
    await alice.locator('#room-title', { hasText: 'elsewhere' }).waitFor();
    await send(bob, 'while you look elsewhere');
    await roomButton(alice, 'lounge').locator('.badge', { hasText: '1' }).waitFor();
    await roomButton(alice, 'lounge').click();
    await message(alice, 'while you look elsewhere').waitFor();
    await roomButton(alice, 'lounge').locator('.badge').waitFor({ state: 'detached' });
    log('unread badge appeared and cleared');

    step = 'mentions: suggested while typing, highlighted, told and counted apart';
    // Alice looks at another room: her badge counts the mentions apart.
    await roomButton(alice, 'elsewhere').click();
    await alice.locator('#room-title', { hasText: 'elsewhere' }).waitFor();
    await bob.getByLabel('Message', { exact: true }).fill('');
    await bob.getByLabel('Message', { exact: true }).pressSequentially('look @al');
    const suggestion = bob.locator('#mention-suggestions li', { hasText: '@alice' });
    await suggestion.waitFor();
    await bob.getByLabel('Message', { exact: true }).press('Tab');
    const typed = await bob.getByLabel('Message', { exact: true }).inputValue();
    check(typed === 'look @alice ', `the suggestion wrote ${JSON.stringify(typed)}`);
    await bob.locator('#mention-suggestions').waitFor({ state: 'hidden' });
    await bob.getByLabel('Message', { exact: true }).pressSequentially('and @nobody <b>here</b>');
    await bob.getByLabel('Message', { exact: true }).press('Enter');
    await message(bob, 'look @alice and').locator('time.time').waitFor();
    await send(bob, 'and again @ALICE.');
    await roomButton(alice, 'lounge').locator('.mention-badge', { hasText: '@2' }).waitFor();
    await roomButton(alice, 'lounge').locator('.badge', { hasText: '2' }).waitFor();
    await roomButton(alice, 'lounge').click();
    const mentioning = message(alice, 'look @alice and');
    await mentioning.locator('.mention.me', { hasText: '@alice' }).waitFor();
    check(await mentioning.locator('.mention').count() === 1, 'a name that is no member\'s is highlighted');
    check(await mentioning.locator('b').count() === 0, 'markup in a body was rendered');
    check((await mentioning.locator('.body').textContent()) === 'look @alice and @nobody <b>here</b>',
      `the body reads ${await mentioning.locator('.body').textContent()}`);
    await message(alice, 'and again @ALICE.').locator('.mention.me', { hasText: '@ALICE' }).waitFor();
    await roomButton(alice, 'lounge').locator('.mention-badge').waitFor({ state: 'detached' });
    await alice.screenshot({ path: join(SHOTS, 'screenshot-conversation.png') });
    const listed = await alice.evaluate(async () => (await (await fetch('/api/v1/users/me/mentions')).json()).mentions.map((m) => m.message.body));
    check(listed.length === 2 && listed[0] === 'and again @ALICE.', `mentions listed: ${JSON.stringify(listed)}`);
    const counted = await alice.evaluate(async () => (await (await fetch('/api/v1/rooms')).json()).find((r) => r.name === 'lounge').unread_mentions);
    check(counted === 0, `the room list still counts ${counted} unread mentions`);
    log('@alice suggested and completed, highlighted as text, badge @2 cleared by reading');

    await attachments(alice, bob);

    step = 'search: matched words marked, a deleted message not found';
    const searchBox = alice.getByLabel('Search messages');
    const results = alice.locator('#search-results');
    await searchBox.fill('hello');
    await searchBox.press('Enter');
    await results.locator('li', { hasText: 'hello bob (edited)' }).locator('mark', { hasText: 'hello' }).waitFor();
    await searchBox.fill('oops');
    await searchBox.press('Enter');
    await results.locator('li', { hasText: 'No message holds every word.' }).waitFor();
    // The new room's members arrive only after a search has been typed: the
    // room, once loaded, must not take the focus from the search box.
    let releaseMembers;
    const membersHeld = new Promise((resolve) => { releaseMembers = resolve; });
    await alice.route(/\/api\/v1\/rooms\/\d+\/members$/, async (route) => {
      await membersHeld;
      await route.continue();
    }, { times: 1 });
    await alice.getByLabel('New room').fill('a third room');
    await alice.getByRole('button', { name: 'Create' }).click();
    await alice.locator('#room-title', { hasText: 'a third room' }).waitFor();
    await searchBox.fill('elsewh*');
    releaseMembers();
    // Its one member listed: the room has loaded (lounge lists two).
    await alice.waitForFunction(() => document.querySelectorAll('#member-list li').length === 1);
    const focusedId = await alice.evaluate(() => document.activeElement?.id);
    check(focusedId === 'search-input', `the loaded room moved the focus to ${focusedId}`);
    await searchBox.press('Enter');
    await results.locator('li', { hasText: 'while you look elsewhere' }).getByRole('button').click();
    await alice.locator('#room-title', { hasText: 'lounge' }).waitFor();
    log('search found the edited message, not the deleted one, and opened its room');

    step = 'direct message from the member list';
    await alice.locator('#member-list li', { hasText: 'bob' }).getByRole('button', { name: 'Message bob' }).click();
    await alice.locator('#room-title', { hasText: '@bob' }).waitFor();
    await send(alice, 'psst, just you');
    await bob.getByRole('button', { name: 'Back to rooms' }).click();
    await roomButton(bob, '@alice').waitFor();
    // A mention of bob in a room he is not looking at: its own badge.
    await alice.evaluate(async () => {
      const csrf = document.cookie.split('; ').find((c) => c.startsWith('__Host-palaver-csrf=')).split('=')[1];
      const rooms = await (await fetch('/api/v1/rooms')).json();
      const room = rooms.find((r) => r.name === 'lounge');
      const response = await fetch(`/api/v1/rooms/${room.id}/messages`, {
        method: 'POST',
        headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' },
        body: JSON.stringify({ body: '@bob have a look' }),
      });
      if (response.status !== 201) throw new Error(`posting was answered ${response.status}`);
    });
    await roomButton(bob, 'lounge').locator('.mention-badge', { hasText: '@1' }).waitFor();
    await bob.screenshot({ path: join(SHOTS, 'screenshot-phone-rooms.png') });
    await roomButton(bob, 'lounge').click();
    await message(bob, '@bob have a look').locator('.mention.me').waitFor();
    await bob.getByRole('button', { name: 'Back to rooms' }).click();
    await roomButton(bob, 'lounge').locator('.mention-badge').waitFor({ state: 'detached' });
    await roomButton(bob, '@alice').click();
    await message(bob, 'psst, just you').waitFor();
    log('direct room opened from the member list');

    step = 'an invitation waits for the invitee, who accepts it';
    await alice.getByLabel('New room').fill('book club');
    await alice.getByRole('button', { name: 'Create' }).click();
    await alice.locator('#room-title', { hasText: 'book club' }).waitFor();
    await alice.evaluate(async () => {
      const csrf = document.cookie.split('; ').find((c) => c.startsWith('__Host-palaver-csrf=')).split('=')[1];
      const rooms = await (await fetch('/api/v1/rooms')).json();
      const room = rooms.find((r) => r.name === 'book club');
      const response = await fetch(`/api/v1/rooms/${room.id}/invitations`, {
        method: 'POST',
        headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'bob' }),
      });
      if (response.status !== 204) throw new Error(`inviting bob was answered ${response.status}`);
    });
    await bob.getByRole('button', { name: 'Back to rooms' }).click();
    await bob.locator('.invitation', { hasText: 'book club' }).waitFor();
    check(await roomButton(bob, 'book club').count() === 0, 'the room is not bob\'s before he accepts');
    await bob.getByRole('button', { name: 'Accept the invitation to book club' }).click();
    await bob.locator('#room-title', { hasText: 'book club' }).waitFor();
    await bob.locator('.invitation').waitFor({ state: 'detached' });
    log('invitation accepted from the sidebar');

    step = 'names are isolated: a right-to-left name cannot reorder the text around it';
    // Arabic for "reading club", ending in a digit: without isolation, the
    // digits and punctuation beside it would join its right-to-left run.
    const rtlRoom = 'نادي القراءة 2';
    await alice.getByLabel('New room').fill(rtlRoom);
    await alice.getByRole('button', { name: 'Create' }).click();
    await alice.locator('#room-title bdi', { hasText: rtlRoom }).waitFor();
    await send(alice, 'مرحبا 3');
    await roomButton(alice, rtlRoom).locator('.last bdi', { hasText: 'مرحبا 3' }).waitFor();
    // Every text that holds the name sits in an isolating element.
    const loose = await alice.evaluate((name) => {
      const walker = document.createTreeWalker(document.getElementById('chat'), NodeFilter.SHOW_TEXT);
      const found = [];
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.data.includes(name) && !node.parentElement.closest('bdi, [dir="auto"]')) found.push(node.data);
      }
      return found;
    }, rtlRoom);
    check(loose.length === 0, `names shown without isolation: ${JSON.stringify(loose)}`);
    const rendered = await roomButton(alice, rtlRoom).locator('.name').evaluate((name) => name.innerHTML);
    check(rendered === `<bdi>${rtlRoom}</bdi>`, `the room list renders ${rendered}`);
    await roomButton(alice, 'lounge').click();
    await message(alice, 'hi alice').locator('.author bdi', { hasText: 'bob' }).waitFor();
    await alice.locator('#member-list .member-name bdi', { hasText: 'bob' }).waitFor({ state: 'attached' });
    log('room and user names rendered in <bdi>');

    step = 'a second tab: same session, badge cleared by reading in the first';
    const bobTab2 = await bobContext.newPage();
    followSockets(bobTab2, 'bob2');
    bobTab2.setDefaultTimeout(WAIT);
    await bobTab2.goto(base);
    await bobTab2.locator('#chat').waitFor({ state: 'visible' });
    await roomButton(alice, 'lounge').click();
    await send(alice, 'for both tabs');
    await roomButton(bobTab2, 'lounge').locator('.badge', { hasText: '1' }).waitFor();
    await bob.getByRole('button', { name: 'Back to rooms' }).click();
    await roomButton(bob, 'lounge').click();
    await message(bob, 'for both tabs').waitFor();
    await roomButton(bobTab2, 'lounge').locator('.badge').waitFor({ state: 'detached' });
    log('reading in one tab cleared the badge in the other');

    step = 'the access cookie is refreshed before it expires';
    const refreshed = await alice.waitForFunction(
      (first) => JSON.parse(localStorage.getItem('palaver.session')).expires_at !== first,
      firstExpiry, { timeout: TOKEN_TTL_SECS * 1000 },
    );
    check(refreshed, 'the login was not refreshed');
    log('access cookie refreshed');

    step = 'server restart: offline banner, a message sent while offline, resume';
    await stopServer(server);
    await alice.locator('#banner').waitFor({ state: 'visible' });
    await bob.locator('#banner').waitFor({ state: 'visible' });
    await send(alice, 'sent while offline');
    await message(alice, 'sent while offline').locator('.status', { hasText: 'sending' }).waitFor();
    server = await startServer(port, dataDir, limits);
    await alice.locator('#banner').waitFor({ state: 'hidden' });
    await bob.locator('#banner').waitFor({ state: 'hidden' });
    await message(bob, 'sent while offline').waitFor();
    await message(alice, 'sent while offline').locator('time.time').waitFor();
    const count = await message(bob, 'sent while offline').count();
    check(count === 1, `bob sees it ${count} times`);
    await send(bob, 'back online');
    await message(alice, 'back online').waitFor();
    // Both tabs refreshed tokens all along (8 s lifetime) without logging each other out.
    await bobTab2.locator('#chat').waitFor({ state: 'visible' });
    log('reconnected after the restart without gaps or duplicates');

    step = 'older history loads while scrolling up';
    await alice.getByLabel('New room').fill('archive');
    await alice.getByRole('button', { name: 'Create' }).click();
    await alice.locator('#room-title', { hasText: 'archive' }).waitFor();
    await alice.evaluate(async () => {
      // The page's own cookies sign these in; each change echoes the (rotating) CSRF cookie.
      const csrf = () => document.cookie.split('; ').find((c) => c.startsWith('__Host-palaver-csrf=')).split('=')[1];
      const rooms = await (await fetch('/api/v1/rooms')).json();
      const room = rooms.find((r) => r.name === 'archive');
      // 60 sends outrun the default send rate, so this client does what a
      // well-behaved one does with a 429: waits as long as Retry-After says.
      for (let n = 0; n < 60;) {
        const response = await fetch(`/api/v1/rooms/${room.id}/messages`, {
          method: 'POST',
          headers: { 'x-csrf-token': csrf(), 'content-type': 'application/json' },
          body: JSON.stringify({ body: `archived ${n}` }),
        });
        if (response.status === 429) {
          const seconds = Number(response.headers.get('retry-after'));
          await new Promise((resolve) => { setTimeout(resolve, seconds * 1000); });
        } else if (response.status === 201) {
          n += 1;
        } else {
          throw new Error(`sending "archived ${n}" was answered ${response.status}`);
        }
      }
    });
    // A fresh page knows only what it loads: the newest page of history.
    await alice.reload();
    await roomButton(alice, 'archive').click();
    await message(alice, 'archived 59').waitFor();
    check(await message(alice, 'archived 0').count() === 0, 'the first page holds only the newest 50');
    await alice.locator('#messages').evaluate((list) => { list.scrollTop = 0; });
    await message(alice, 'archived 0').waitFor();
    log('scrolling up loaded the older messages');

    step = 'settings: a new display name';
    await openSettings(alice);
    await alice.locator('#settings-display').fill('Alice A.');
    await alice.getByRole('button', { name: 'Save name' }).click();
    await alice.locator('#me', { hasText: 'Alice A.' }).waitFor();
    log('display name changed');

    step = 'deleting the account is refused while alice is the only owner of a room with members';
    await alice.locator('#delete-password').fill('alice password 1');
    await alice.getByRole('button', { name: 'Delete my account' }).click();
    // The name between FSI and PDI: the message is text, isolated all the same.
    await alice.locator('#settings-error', { hasText: 'only owner of \u2068lounge\u2069' }).waitFor();
    log('the last-owner answer names the room');

    step = 'log out';
    await alice.getByRole('button', { name: 'Log out', exact: true }).click();
    await alice.locator('#auth').waitFor({ state: 'visible' });
    log('logged out');

    step = 'forgot password: a new one with the code from the mail';
    await alice.getByRole('button', { name: 'Forgot password?' }).click();
    await alice.locator('#reset-login').fill('alice');
    await alice.getByRole('button', { name: 'Send code' }).click();
    await alice.locator('#reset-code').fill(await mailedCode(dataDir, 'alice@example.test', 'password reset'));
    await alice.locator('#reset-password').fill('alice password 2');
    await alice.getByRole('button', { name: 'Set new password' }).click();
    await alice.locator('#auth-status', { hasText: 'Password changed' }).waitFor();
    await alice.getByLabel('Username', { exact: true }).fill('alice');
    await alice.getByLabel('Password', { exact: true }).fill('alice password 1');
    await alice.getByRole('button', { name: 'Log in' }).click();
    await alice.locator('#auth-error', { hasText: 'invalid' }).waitFor();
    await alice.getByLabel('Password', { exact: true }).fill('alice password 2');
    await alice.getByRole('button', { name: 'Log in' }).click();
    await alice.locator('#chat').waitFor({ state: 'visible' });
    log('password reset through to a login with the new password');

    step = 'the session list: signing out another browser';
    const laptop = await (await browser.newContext()).newPage();
    const phoneContext = await browser.newContext();
    const phone = await phoneContext.newPage();
    for (const [page, name] of [[laptop, 'laptop'], [phone, 'phone']]) {
      followSockets(page, name);
      page.setDefaultTimeout(WAIT);
    }
    await signUp(laptop, base, 'carol');
    await logIn(phone, base, 'carol');
    await openSettings(phone);
    await phone.locator('#session-list li', { hasText: 'This browser' }).waitFor();
    await phone.locator('#session-list li').getByRole('button', { name: /^Sign out/ }).click();
    await laptop.locator('#auth').waitFor({ state: 'visible' });
    await phone.locator('#session-list li').nth(1).waitFor({ state: 'detached' });
    log('revoking the laptop from the phone signed it out');

    step = 'log out everywhere: a second tab and another browser are signed out';
    await logIn(laptop, base, 'carol');
    const phoneTab2 = await phoneContext.newPage();
    followSockets(phoneTab2, 'phone2');
    phoneTab2.setDefaultTimeout(WAIT);
    await phoneTab2.goto(base);
    await phoneTab2.locator('#chat').waitFor({ state: 'visible' });
    await phone.getByRole('button', { name: 'Log out everywhere' }).click();
    for (const page of [phone, phoneTab2, laptop]) await page.locator('#auth').waitFor({ state: 'visible' });
    check(await laptop.evaluate(() => localStorage.getItem('palaver.session')) === null,
      'the ended login is forgotten');
    log('log out everywhere signed out the second tab and the other browser');

    step = 'delete an account';
    await logIn(laptop, base, 'carol');
    await openSettings(laptop);
    await laptop.locator('#delete-password').fill('carol password 1');
    await laptop.getByRole('button', { name: 'Delete my account' }).click();
    await laptop.locator('#auth').waitFor({ state: 'visible' });
    await laptop.getByLabel('Username', { exact: true }).fill('carol');
    await laptop.getByLabel('Password', { exact: true }).fill('carol password 1');
    await laptop.getByRole('button', { name: 'Log in' }).click();
    await laptop.locator('#auth-error', { hasText: 'invalid' }).waitFor();
    log('the deleted account is gone');

    await overHttps(browser, tls, tlsServers);
  } catch (err) {
    shown = await shownOnPages();
    throw err;
  } finally {
    await browser.close();
    await stopServer(server).catch(() => {});
    for (const tlsServer of tlsServers) await stopServer(tlsServer).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tlsDir, { recursive: true, force: true });
  }
}

/** What each followed page shows where the client reports trouble: its
 * errors, its banner, the open room and the search results. */
async function shownOnPages() {
  const lines = [];
  for (const [name, page] of followed) {
    if (page.isClosed()) continue;
    const texts = await page.evaluate(() => {
      const ids = ['room-title', 'banner', 'auth-error', 'sidebar-error', 'conversation-error', 'search-results'];
      return ids.map((id) => {
        const element = document.getElementById(id);
        return element && element.textContent.trim() && !element.hidden ? `${id}: ${element.textContent.trim().slice(0, 300)}` : null;
      }).filter(Boolean);
    }).catch((err) => [`(could not be read: ${err.message})`]);
    lines.push(`${name}: ${texts.join(' | ') || '(nothing)'}`);
  }
  return lines;
}

main().then(
  () => console.log('browser test passed'),
  (err) => {
    // The reason comes last, so a log cut to its tail still holds it.
    console.error(`the last ${trail.length} frames and server log lines:\n${trail.join('\n')}`);
    console.error(`what the pages showed:\n${shown.join('\n')}`);
    console.error(`browser test FAILED at "${step}": ${err.stack ?? err}`);
    process.exit(1);
  },
);
