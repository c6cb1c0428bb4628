// The console's shell: sign-in (OIDC authorization code with PKCE as a
// public client, or an API key pasted once), the session, the calls every
// page makes, and the hash router.
//
// The bearer token lives in this tab's sessionStorage: never in a cookie,
// so no other site can make the browser send it (no CSRF), and gone when
// the tab closes, the token expires, or the user signs out. Every page
// builds its DOM with `h()`, which only ever sets text, never HTML, because
// much of what is shown (audit details, actor ids) is attacker-controlled.

import * as admin from './admin.js';
import * as audit from './audit.js';
import * as views from './views.js';

const SESSION = 'prividium.session';
const PENDING = 'prividium.signin';

// ---- DOM ----------------------------------------------------------------------

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces `el`'s children; null, undefined and false are left out (the
// DOM would print them as text).
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// Shows a page. A page whose answers arrive after sign-out is dropped: what
// it fetched must not appear on the sign-in page.
export function show(...children) {
  if (!session()) return;
  fill(document.getElementById('page'), ...children);
}

export function errorBox(e) {
  return h('div', { class: 'error', role: 'alert' }, e?.message ?? String(e));
}

export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

export function fields(pairs) {
  return h('dl', { class: 'fields' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

// ---- session --------------------------------------------------------------------

export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION) ?? 'null');
    if (!s || typeof s.token !== 'string') return null;
    if (s.expiresAt && Date.now() >= s.expiresAt) {
      sessionStorage.removeItem(SESSION);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

let me = null; // prividium_whoami of the signed-in principal
let expiryTimer = null;

// Signs the tab out when the token expires. Timers take at most 2^31-1 ms,
// so a long-lived token re-arms the timer instead of firing at once.
function armExpiry(expiresAt) {
  clearTimeout(expiryTimer);
  if (!expiresAt) return;
  const wait = expiresAt - Date.now();
  if (wait <= 0) return signOut('Your session has expired; sign in again.');
  expiryTimer = setTimeout(() => armExpiry(expiresAt), Math.min(wait, 2_147_000_000));
}

export function whoami() {
  return me;
}

export function hasRole(...roles) {
  return !!me && roles.some((r) => me.roles.includes(r));
}

export function signOut(reason) {
  sessionStorage.removeItem(SESSION);
  me = null;
  clearTimeout(expiryTimer);
  if (reason) sessionStorage.setItem(`${PENDING}.reason`, reason);
  location.hash = '#/signin';
  route();
}

function startSession(s) {
  sessionStorage.setItem(SESSION, JSON.stringify(s));
}

// Where the user was going when the sign-in page took over.
function takeBack() {
  const back = sessionStorage.getItem(`${PENDING}.back`);
  sessionStorage.removeItem(`${PENDING}.back`);
  return back && back !== '#/signin' ? back : '#/';
}

// ---- calls ----------------------------------------------------------------------

export class ApiError extends Error {
  constructor(message, status, code, data) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data;
  }
}

function authHeader() {
  const s = session();
  if (!s) throw new ApiError('not signed in', 401);
  return `Bearer ${s.token}`;
}

let rpcId = 0;

export async function rpc(method, params = []) {
  const resp = await fetch('/', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: authHeader() },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
  });
  if (resp.status === 401) {
    signOut('Your session has ended; sign in again.');
    throw new ApiError('signed out', 401);
  }
  const body = await resp.json().catch(() => null);
  if (!body) throw new ApiError(`${method}: HTTP ${resp.status}`, resp.status);
  if (body.error) {
    const rule = body.error.data?.rule ? ` (rule ${body.error.data.rule})` : '';
    throw new ApiError(`${body.error.message}${rule}`, resp.status, body.error.code, body.error.data);
  }
  return body.result;
}

// Several calls in one JSON-RPC batch; each answer is its result or an ApiError.
export async function rpcBatch(calls) {
  if (!calls.length) return [];
  const first = rpcId + 1;
  const resp = await fetch('/', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: authHeader() },
    body: JSON.stringify(calls.map(([method, params]) => ({ jsonrpc: '2.0', id: ++rpcId, method, params }))),
  });
  if (resp.status === 401) {
    signOut('Your session has ended; sign in again.');
    throw new ApiError('signed out', 401);
  }
  const body = await resp.json().catch(() => null);
  if (!Array.isArray(body)) throw new ApiError(body?.error?.message ?? `HTTP ${resp.status}`, resp.status, body?.error?.code);
  const byId = new Map(body.map((r) => [r.id, r]));
  return calls.map((_, i) => {
    const r = byId.get(first + i);
    if (!r) return new ApiError('no answer', resp.status);
    return r.error ? new ApiError(r.error.message, resp.status, r.error.code, r.error.data) : r.result;
  });
}

// GET (or, with `json`, POST) on this origin with the bearer token; the
// answer as JSON unless `raw`.
export async function call(path, { raw = false, json = undefined } = {}) {
  const init = { headers: { authorization: authHeader() } };
  if (json !== undefined) {
    init.method = 'POST';
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    signOut('Your session has ended; sign in again.');
    throw new ApiError('signed out', 401);
  }
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    const rule = body.rule ? ` (rule ${body.rule})` : '';
    throw new ApiError(`${body.error ?? `HTTP ${resp.status}`}${rule}`, resp.status);
  }
  return raw ? resp : resp.json();
}

// Saves a response body as a file (the token cannot ride on a plain link).
export async function download(path, fallbackName) {
  const resp = await call(path, { raw: true });
  const blob = await resp.blob();
  const name = /filename="([^"]+)"/.exec(resp.headers.get('content-disposition') ?? '')?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return resp;
}

// ---- OIDC -------------------------------------------------------------------------

let config = { issuers: [] };

const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const randomToken = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
const redirectUri = () => `${location.origin}/console/`;

async function discover(issuer) {
  const resp = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!resp.ok) throw new Error(`identity provider ${issuer}: HTTP ${resp.status}`);
  return resp.json();
}

async function beginOidc(idp) {
  const meta = await discover(idp.issuer);
  const verifier = randomToken();
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = randomToken();
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, issuer: idp.issuer }));
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: idp.clientId,
    redirect_uri: redirectUri(),
    scope: 'openid rpc',
    resource: idp.audience,
    // Signing out here does not end the IdP's session; asking for the
    // password every time keeps the next person at a shared desk out.
    prompt: 'login',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
  });
  location.assign(`${meta.authorization_endpoint}?${q}`);
}

// Back from the IdP with `?code=…&state=…`: exchange the code (with the
// PKCE verifier only this tab holds) for an access token.
async function finishOidc(params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null');
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', '/console/');
  // Nothing from the URL is shown or used unless this tab started the
  // sign-in: anyone can send a link with `?error_description=…`.
  if (!pending || pending.state !== params.get('state')) throw new Error('sign-in answer does not match this tab (state mismatch); try again');
  if (params.get('error')) throw new Error(`sign-in refused: ${params.get('error_description') ?? params.get('error')}`);
  const idp = config.issuers.find((i) => i.issuer === pending.issuer);
  if (!idp) throw new Error('sign-in answer from an identity provider this node does not trust');
  const meta = await discover(idp.issuer);
  const resp = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      client_id: idp.clientId,
      code_verifier: pending.verifier,
      resource: idp.audience,
    }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok || typeof body.access_token !== 'string') {
    throw new Error(`token exchange failed: ${body.error_description ?? body.error ?? `HTTP ${resp.status}`}`);
  }
  const expiresIn = Number(body.expires_in) > 0 ? Number(body.expires_in) : 300;
  startSession({ token: body.access_token, kind: 'oidc', issuer: idp.issuer, expiresAt: Date.now() + expiresIn * 1000 });
  location.hash = takeBack();
}

function signInPage() {
  const reason = sessionStorage.getItem(`${PENDING}.reason`);
  sessionStorage.removeItem(`${PENDING}.reason`);
  const keyInput = h('input', { type: 'password', id: 'api-key', autocomplete: 'off', placeholder: 'pvd_…' });
  const failure = h('div');
  const useKey = async (ev) => {
    ev.preventDefault();
    const token = keyInput.value.trim();
    keyInput.value = '';
    if (!token) return;
    startSession({ token, kind: 'api_key', expiresAt: null });
    try {
      me = await rpc('prividium_whoami');
      location.hash = takeBack();
    } catch (e) {
      sessionStorage.removeItem(SESSION);
      failure.replaceChildren(errorBox(e));
    }
  };
  document.getElementById('nav').replaceChildren();
  document.getElementById('who').replaceChildren();
  fill(document.getElementById('page'),
    h('div', { class: 'signin' },
      h('section', { class: 'card' },
        h('h1', {}, 'Sign in'),
        reason ? h('div', { class: 'error' }, reason) : null,
        config.issuers.map((idp) =>
          h('button', { id: `signin-${idp.name}`, onclick: () => beginOidc(idp).catch((e) => failure.replaceChildren(errorBox(e))) },
            `Sign in with ${idp.name}`)),
        config.issuers.length ? h('p', { class: 'muted' }, 'or with an API key:') : null,
        h('form', { onsubmit: useKey },
          h('label', {}, 'API key', keyInput),
          h('button', { type: 'submit', id: 'use-key' }, 'Use API key')),
        failure,
        h('p', { class: 'muted' }, 'The console never sees your password: the bank’s identity provider does.'))));
}

// ---- shell and routes ---------------------------------------------------------------

function shell(active) {
  const item = (href, name, id) => h('a', { href, id: `nav-${id}`, class: active === id ? 'active' : null }, name);
  fill(document.getElementById('nav'),
    item('#/', 'Explorer', 'explorer'),
    item('#/proofs', 'Proofs', 'proofs'),
    hasRole('auditor', 'compliance') ? item('#/audit', 'Audit trail', 'audit') : null,
    hasRole('admin') ? item('#/admin', 'Admin', 'admin') : null,
  );
  fill(document.getElementById('who'),
    h('span', { id: 'principal' }, `${me.principal} · ${me.roles.join(', ')}`),
    h('button', { class: 'secondary', id: 'signout', onclick: () => signOut() }, 'Sign out'),
  );
}

const ROUTES = [
  [/^#\/audit\/(\d+)$/, 'audit', (m) => audit.eventPage(Number(m[1]))],
  [/^#\/audit(?:\?.*)?$/, 'audit', () => audit.searchPage()],
  [/^#\/block\/(\d+)$/, 'explorer', (m) => views.blockPage(Number(m[1]))],
  [/^#\/tx\/(0x[0-9a-fA-F]{64})$/, 'explorer', (m) => views.txPage(m[1])],
  [/^#\/address\/(0x[0-9a-fA-F]{40})$/, 'explorer', (m) => views.addressPage(m[1])],
  [/^#\/proofs$/, 'proofs', () => views.proofsPage()],
  [/^#\/admin$/, 'admin', () => admin.adminPage()],
  [/^(#\/?)?$/, 'explorer', () => views.homePage()],
];

export async function route() {
  const hash = location.hash || '#/';
  const s = session();
  if (!s) {
    if (hash !== '#/signin') {
      // Come back here after signing in.
      sessionStorage.setItem(`${PENDING}.back`, hash);
      location.replace('#/signin');
    }
    return signInPage();
  }
  if (hash === '#/signin') {
    location.replace('#/');
    return;
  }
  armExpiry(s.expiresAt);
  try {
    me = me ?? (await rpc('prividium_whoami'));
  } catch (e) {
    if (e.status !== 401) show(errorBox(e));
    return;
  }
  const found = ROUTES.map(([re, nav, page]) => [re.exec(hash), nav, page]).find(([m]) => m);
  if (!found) {
    shell(null);
    return show(h('h1', {}, 'Not found'), h('p', {}, link('#/', 'Back to the explorer')));
  }
  const [m, nav, page] = found;
  shell(nav);
  show(h('p', { class: 'muted' }, 'Loading…'));
  try {
    await page(m);
  } catch (e) {
    if (e.status !== 401) show(errorBox(e));
  }
}

async function main() {
  try {
    config = await (await fetch('config.json')).json();
  } catch {
    config = { issuers: [] };
  }
  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) {
    try {
      await finishOidc(params);
    } catch (e) {
      sessionStorage.setItem(`${PENDING}.reason`, e.message);
      location.hash = '#/signin';
    }
  }
  window.addEventListener('hashchange', () => route());
  await route();
}

main();
