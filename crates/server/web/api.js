// REST calls and the session (tokens), shared by every tab of the browser.
//
// Refresh tokens are single-use and re-using one revokes the whole login, so
// two tabs must never refresh with the same token: refreshing happens under a
// Web Lock, and a tab that finds a newer session in localStorage uses it.

const STORAGE_KEY = 'palaver.session';
const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
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
  get accessToken() { return this.session?.access_token ?? null; }

  async request(method, path, body, { auth = true, retry = true } = {}) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && this.accessToken) headers.authorization = `Bearer ${this.accessToken}`;
    let response;
    try {
      response = await fetch(API + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
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
        data?.error?.message ?? response.statusText);
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
    const session = await this.request('POST', '/auth/login', { username, password }, { auth: false });
    this.store(session);
    this.dispatchEvent(new Event('login'));
  }

  async logout() {
    const token = this.session?.refresh_token;
    this.store(null);
    this.dispatchEvent(new Event('logout'));
    if (token) {
      await this.request('POST', '/auth/logout', { refresh_token: token }, { auth: false }).catch(() => {});
    }
  }

  /** The server ended this login (signed out everywhere, revoked, password
   * changed): its tokens are dead, so forget them and ask to sign in. */
  forget() {
    if (!this.session) return;
    this.store(null);
    this.dispatchEvent(new Event('logout'));
  }

  /** Gets a new access token; one tab at a time, and only if no tab already did. */
  async refresh() {
    const stale = this.session?.refresh_token;
    if (!stale) throw new ApiError(401, 'unauthorized', 'Please log in.');
    const run = async () => {
      const current = readSession();
      if (current && current.refresh_token !== stale) {
        this.session = current; // another tab refreshed meanwhile
        return;
      }
      try {
        const session = await this.request('POST', '/auth/refresh', { refresh_token: stale }, { auth: false });
        this.store(session);
      } catch (err) {
        if (err.status === 401) {
          this.store(null);
          this.dispatchEvent(new Event('logout'));
        }
        throw err;
      }
    };
    if (navigator.locks) await navigator.locks.request('palaver-refresh', run);
    else await run();
  }

  store(session) {
    if (session) session.expires_at = Date.now() + session.expires_in * 1000;
    this.session = session;
    if (session) localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    else localStorage.removeItem(STORAGE_KEY);
    this.scheduleRefresh();
  }

  /** Refreshes a minute before the access token expires (or at half its life). */
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
  directRoom(userId) { return this.request('POST', '/dms', { user: userId }); }
}

function readSession() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
  } catch {
    return null;
  }
}
