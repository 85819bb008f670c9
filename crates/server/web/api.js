// REST calls and the login, shared by every tab of the browser.
//
// Signed in with cookies: the access and refresh tokens live in HttpOnly
// cookies no script can read; every request but GET echoes the readable
// CSRF cookie in X-CSRF-Token. localStorage keeps only who is signed in and
// until when the access cookie lasts, so tabs learn of each other's logins,
// refreshes and logouts. Refresh tokens are single-use and re-using one
// revokes the whole login, so two tabs must never refresh at once:
// refreshing happens under a Web Lock, and a tab that finds a newer login
// in localStorage takes it.

const STORAGE_KEY = 'palaver.session';
const CSRF_COOKIE = '__Host-palaver-csrf';
const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api extends EventTarget {
  constructor() {
    super();
    this.session = readSession();
    this.refreshTimer = null;
    // Another tab logged in, refreshed or logged out.
    window.addEventListener('storage', (event) => {
      if (event.key !== STORAGE_KEY) return;
      const next = readSession();
      const wasIn = Boolean(this.session);
      this.session = next;
      if (!next && wasIn) this.dispatchEvent(new Event('logout'));
      else if (next && !wasIn) this.dispatchEvent(new Event('login'));
      this.scheduleRefresh();
    });
  }

  get user() { return this.session?.user ?? null; }

  /** `body`: a value sent as JSON, or a `Blob` (a `File`) sent as it is. */
  async request(method, path, body, { auth = true, retry = true } = {}) {
    const raw = body instanceof Blob;
    const headers = {};
    if (body !== undefined) headers['content-type'] = raw ? 'application/octet-stream' : 'application/json';
    if (method !== 'GET') {
      const csrf = readCookie(CSRF_COOKIE);
      if (csrf) headers['x-csrf-token'] = csrf;
    }
    let response;
    try {
      response = await fetch(API + path, {
        method, headers, credentials: 'same-origin',
        body: body === undefined || raw ? body : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'offline', 'The server cannot be reached.');
    }
    if (response.status === 401 && auth && retry && this.session) {
      await this.refresh();
      return this.request(method, path, body, { auth, retry: false });
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(response.status, data?.error?.code ?? 'error',
        data?.error?.message ?? response.statusText, data?.error);
    }
    return data;
  }

  async register(username, password, displayName) {
    const body = { username, password };
    if (displayName) body.display_name = displayName;
    await this.request('POST', '/auth/register', body, { auth: false });
    return this.login(username, password);
  }

  async login(username, password) {
    const login = await this.request('POST', '/auth/login', { username, password, cookie: true }, { auth: false });
    this.store(login);
    this.dispatchEvent(new Event('login'));
  }

  async logout() {
    const wasIn = Boolean(this.session);
    this.store(null);
    this.dispatchEvent(new Event('logout'));
    if (wasIn) await this.request('POST', '/auth/logout', {}, { auth: false }).catch(() => {});
  }

  /** The server ended this login (signed out everywhere, revoked, password
   * changed, account deleted): its cookies are dead, so forget it and ask to
   * sign in. */
  forget() {
    if (!this.session) return;
    this.store(null);
    this.dispatchEvent(new Event('logout'));
  }

  /** Renews the access cookie; one tab at a time, and only if no tab already did. */
  async refresh() {
    const stale = this.session?.expires_at;
    if (!stale) throw new ApiError(401, 'unauthorized', 'Please log in.');
    const run = async () => {
      const current = readSession();
      if (current && current.expires_at !== stale) {
        this.session = current; // another tab refreshed meanwhile
        return;
      }
      try {
        const login = await this.request('POST', '/auth/refresh', { cookie: true }, { auth: false });
        this.store(login);
      } catch (err) {
        if (err.status === 401 || err.status === 403) {
          this.store(null);
          this.dispatchEvent(new Event('logout'));
        }
        throw err;
      }
    };
    if (navigator.locks) await navigator.locks.request('palaver-refresh', run);
    else await run();
  }

  /** Keeps who is signed in and until when; never a token. */
  store(login) {
    this.session = login
      ? { user: login.user, expires_in: login.expires_in, expires_at: Date.now() + login.expires_in * 1000 }
      : null;
    if (this.session) localStorage.setItem(STORAGE_KEY, JSON.stringify(this.session));
    else localStorage.removeItem(STORAGE_KEY);
    this.scheduleRefresh();
  }

  /** The signed-in user changed (display name): every tab shows it. */
  updateUser(user) {
    if (!this.session) return;
    this.session = { ...this.session, user: { ...this.session.user, ...user } };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.session));
  }

  /** Refreshes a minute before the access cookie expires (or at half its life). */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (!this.session?.expires_at) return;
    const life = this.session.expires_in * 1000;
    const lead = Math.min(60_000, life / 2);
    const wait = Math.max(1000, this.session.expires_at - Date.now() - lead);
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), wait);
  }

  rooms() { return this.request('GET', '/rooms'); }
  room(id) { return this.request('GET', `/rooms/${id}`); }
  createRoom(name, password) { return this.request('POST', '/rooms', { name, password: password || undefined }); }
  joinRoom(code, password) { return this.request('POST', '/rooms/join', { code, password: password || undefined }); }
  members(room) { return this.request('GET', `/rooms/${room}/members`); }
  readMarkers(room) { return this.request('GET', `/rooms/${room}/read-markers`); }
  history(room, before) {
    const query = before ? `?before=${before}&limit=50` : '?limit=50';
    return this.request('GET', `/rooms/${room}/messages${query}`);
  }
  search(q, cursor) {
    const query = new URLSearchParams({ q, limit: '20' });
    if (cursor) query.set('cursor', cursor);
    return this.request('GET', `/search?${query}`);
  }
  /** Uploads `file` into `room` (its bytes as the body); the stored attachment. */
  uploadAttachment(room, file) {
    return this.request('POST', `/rooms/${room}/attachments?${new URLSearchParams({ name: file.name })}`, file);
  }
  directRoom(userId) { return this.request('POST', '/dms', { user: userId }); }
  profile(userId) { return this.request('GET', `/users/${userId}`); }
  invitations(after) { return this.request('GET', `/invitations?limit=100${after ? `&after=${after}` : ''}`); }
  acceptInvitation(room) { return this.request('POST', `/invitations/${room}/accept`); }
  declineInvitation(room) { return this.request('DELETE', `/invitations/${room}`); }

  // ---------- the account ----------
  account() { return this.request('GET', '/users/me'); }
  updateAccount(changes) { return this.request('PATCH', '/users/me', changes); }
  verifyEmail(code) { return this.request('POST', '/auth/email/verify', { code }); }
  changePassword(current, next) {
    return this.request('POST', '/auth/password', { current_password: current, new_password: next });
  }
  sessions() { return this.request('GET', '/auth/sessions'); }
  endSession(id) { return this.request('DELETE', `/auth/sessions/${encodeURIComponent(id)}`); }
  logoutEverywhere() { return this.request('POST', '/auth/logout-all'); }
  deleteAccount(password, erase) {
    return this.request('DELETE', `/users/me${erase ? '?erase=true' : ''}`, { password });
  }

  // ---------- password reset (signed out) ----------
  requestReset(login) { return this.request('POST', '/auth/password-reset', { login }, { auth: false }); }
  resendReset(login) { return this.request('POST', '/auth/password-reset/resend', { login }, { auth: false }); }
  async resetPassword(login, code, newPassword) {
    const { reset_token: token } = await this.request('POST', '/auth/password-reset/confirm', { login, code }, { auth: false });
    await this.request('POST', '/auth/password-reset/complete', { reset_token: token, new_password: newPassword }, { auth: false });
  }
}

/** Where a member's browser downloads attachment `id` (signed in by cookie). */
export function attachmentUrl(id) {
  return `${API}/attachments/${encodeURIComponent(id)}`;
}

function readSession() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
  } catch {
    return null;
  }
}

function readCookie(name) {
  const prefix = `${name}=`;
  const found = document.cookie.split('; ').find((pair) => pair.startsWith(prefix));
  return found ? decodeURIComponent(found.slice(prefix.length)) : null;
}
