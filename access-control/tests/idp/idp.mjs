#!/usr/bin/env node
// Test-only OpenID Provider for the access-control integration tests.
// NOT for production: static clients, plaintext test passwords, in-memory state,
// and a resource-owner "password" grant that real deployments must never offer.
//
//   node idp.mjs --port N --jwks FILE [--issuer URL] [--alg RS256|ES256|EdDSA]
//                [--console-redirect URL]...
//
// --console-redirect registers the web console (`prividium-console`, a
// public client: authorization code with PKCE, no secret) with that
// redirect URI. People sign in on this IdP's own login page, which checks
// the USERS passwords below; the console never sees them.
//
// Prints exactly one line `READY <issuer>` on stdout once listening; everything
// else goes to stderr, so the Rust harness can read stdout line by line.
// Env: PRIVIDIUM_PEERS (where oidc-provider is installed, see
// deploy/dev/install-peers.sh), IDP_TOKEN_TTL (access token lifetime, seconds).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as http from 'node:http';

// Captured before the slow module loading below, so a parent that dies while we
// boot is still noticed (see the watchdog at the end).
const parent = process.ppid;

// oidc-provider reports notices via console.info (stdout); stdout is reserved for
// the READY line, so route all console output to stderr before loading it.
console.log = console.info = console.debug = (...a) => console.error(...a);
// It also warns on every start that Node 20 is not a supported LTS; it works on
// 20.20 and the warning is noise in test logs.
const warn = console.warn;
console.warn = (...a) => {
  if (typeof a[0] === 'string' && a[0].includes('Unsupported runtime')) return;
  warn(...a);
};

const die = (msg) => {
  console.error(`idp: ${msg}`);
  process.exit(2);
};

// ---- arguments --------------------------------------------------------------
const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    jwks: { type: 'string' },
    issuer: { type: 'string' },
    alg: { type: 'string', default: 'RS256' },
    'console-redirect': { type: 'string', multiple: true, default: [] },
  },
});
const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) die('--port N is required');
if (!args.jwks) die('--jwks FILE is required');
if (!['RS256', 'ES256', 'EdDSA'].includes(args.alg)) die('--alg must be RS256, ES256 or EdDSA');
// Discovery echoes the issuer verbatim and validators compare it byte for byte,
// so a trailing slash would make every token's `iss` "wrong".
const issuer = (args.issuer ?? `http://127.0.0.1:${port}`).replace(/\/+$/, '');
const TTL = Number(process.env.IDP_TOKEN_TTL ?? 300);
if (!Number.isInteger(TTL) || TTL <= 0) die('IDP_TOKEN_TTL must be a positive integer (seconds)');
const DEFAULT_RESOURCE = 'https://prividium.test';

// ---- load oidc-provider from the peers dir -----------------------------------
// ESM ignores NODE_PATH, and this file lives in the repo (no node_modules next
// to it), so resolve the package by absolute path from the peers install.
async function loadOidcProvider() {
  const dirs = [
    process.env.PRIVIDIUM_PEERS && path.join(process.env.PRIVIDIUM_PEERS, 'node_modules'),
    ...(process.env.NODE_PATH ?? '').split(path.delimiter),
    path.join(os.homedir(), '.cache', 'prividium-peers', 'node_modules'),
  ].filter(Boolean);
  for (const dir of dirs) {
    let resolved;
    try {
      resolved = createRequire(path.join(dir, 'noop.js')).resolve('oidc-provider');
    } catch {
      continue;
    }
    return import(pathToFileURL(resolved).href);
  }
  try {
    return await import('oidc-provider');
  } catch {
    die(`oidc-provider not found in ${dirs.join(', ')}; run deploy/dev/install-peers.sh`);
  }
}
const { default: Provider, errors } = await loadOidcProvider();

// ---- signing keys -------------------------------------------------------------
// The file persists keys across restarts; tests rotate keys by deleting it, so
// fresh keys must always get fresh kids (random, not a thumbprint of an old key).
function generateJwks() {
  const gen = (alg, type, opts) => {
    const jwk = crypto.generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' });
    const kid = `${alg.toLowerCase()}-${crypto.randomBytes(8).toString('hex')}`;
    // `alg` pins each key to one algorithm so verifiers can pick keys by alg.
    return { ...jwk, kid, alg, use: 'sig' };
  };
  return {
    keys: [
      gen('RS256', 'rsa', { modulusLength: 2048 }),
      gen('ES256', 'ec', { namedCurve: 'P-256' }),
      gen('EdDSA', 'ed25519'),
    ],
  };
}

function loadOrCreateJwks(file) {
  if (fs.existsSync(file)) {
    const jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (!Array.isArray(jwks.keys)) die(`${file}: not a JWKS ({"keys":[...]})`);
    return jwks;
  }
  const jwks = generateJwks();
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  // Write-then-rename so a concurrently starting IdP never reads half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(jwks, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
  console.error(`idp: generated new keys in ${file}: ${jwks.keys.map((k) => k.kid).join(', ')}`);
  return jwks;
}
const jwks = loadOrCreateJwks(args.jwks);
const fitsAlg = {
  RS256: (k) => k.kty === 'RSA',
  ES256: (k) => k.kty === 'EC' && k.crv === 'P-256',
  EdDSA: (k) => k.kty === 'OKP' && k.crv === 'Ed25519',
}[args.alg];
if (!jwks.keys.some((k) => fitsAlg(k) && (!k.alg || k.alg === args.alg))) {
  die(`${args.jwks} has no key for --alg ${args.alg}; delete it to regenerate`);
}

// ---- principals ----------------------------------------------------------------
// Machine clients: the claims their client_credentials tokens carry.
const SERVICE_CLIENTS = {
  'svc-settlement': { secret: 'svc-secret', claims: { roles: ['service'], org: 'bank-a' } },
  'svc-trader-bot': { secret: 'bot-secret', claims: { roles: ['trader'], org: 'bank-a' } },
  'svc-other-org': { secret: 'other-secret', claims: { roles: ['trader'], org: 'bank-b' } },
};
// Humans (password grant via web-app). Roles go out under two claim paths
// (realm_access.roles like Keycloak, groups like Okta/Azure) and NOT as a
// top-level `roles`, so tests exercise configurable claim paths.
const USERS = {
  alice: { password: 'alice-pw', roles: ['trader'], org: 'bank-a' },
  bob: { password: 'bob-pw', roles: ['trader'], org: 'bank-a' },
  carol: { password: 'carol-pw', roles: ['auditor'], org: 'bank-a' },
  dave: { password: 'dave-pw', roles: ['counterparty'], org: 'bank-b' },
  erin: { password: 'erin-pw', roles: ['admin'], org: 'bank-a' },
  olga: { password: 'olga-pw', roles: ['operator'], org: 'bank-a' },
  cora: { password: 'cora-pw', roles: ['compliance'], org: 'bank-a' },
};

const clients = [
  ...Object.entries(SERVICE_CLIENTS).map(([id, c]) => ({
    client_id: id,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
  })),
  { client_id: 'web-app', client_secret: 'web-secret', grant_types: ['password'] },
].map((c) => ({ ...c, token_endpoint_auth_method: 'client_secret_post', response_types: [], redirect_uris: [] }));
const CONSOLE_CLIENT = 'prividium-console';
if (args['console-redirect'].length) {
  clients.push({
    client_id: CONSOLE_CLIENT,
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: args['console-redirect'],
  });
}

// Every resource is accepted and becomes the token audience verbatim, so tests
// can obtain a validly signed token for the wrong audience.
const resourceServerInfo = (resource) => ({
  scope: 'rpc',
  audience: resource,
  accessTokenTTL: TTL,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: args.alg } },
});

// ---- provider ------------------------------------------------------------------
const provider = new Provider(issuer, {
  clients,
  jwks,
  // Test-only cookie signing key (sessions live in memory and die with us).
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, sub) => (USERS[sub] ? { accountId: sub, claims: async () => ({ sub }) } : undefined),
  // The console is the bank's own application: signing in grants it the
  // node's audience without a consent screen.
  loadExistingGrant: async (ctx) => {
    const { client, session, params } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) return grant;
    }
    if (client.clientId !== CONSOLE_CLIENT) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid');
    const resources = [params.resource ?? DEFAULT_RESOURCE].flat();
    for (const r of resources) grant.addResourceScope(r, 'rpc');
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf ?? DEFAULT_RESOURCE,
      getResourceServerInfo: async (ctx, resource) => resourceServerInfo(resource),
    },
  },
  extraTokenClaims: async (ctx, token) => {
    if (token.kind === 'ClientCredentials') return SERVICE_CLIENTS[token.clientId]?.claims;
    const user = ['password', 'authorization_code'].includes(token.gty) && USERS[token.accountId];
    if (!user) return undefined;
    return {
      preferred_username: token.accountId,
      org: user.org,
      realm_access: { roles: user.roles },
      groups: user.roles,
    };
  },
  // Explicit TTLs also keep oidc-provider's "you SHOULD change" notices quiet.
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL,
    Interaction: 600,
    Grant: 3600,
    Session: 3600,
    IdToken: TTL,
  },
  // Browsers may call the token endpoint only from a public client's own
  // redirect origins (the console's page).
  clientBasedCORS: (ctx, origin, client) =>
    client.clientAuthMethod === 'none' && client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin),
});

// oidc-provider has no password grant (OAuth 2.1 dropped it); the tests need
// user tokens without a browser, so this one issues them directly.
provider.registerGrantType('password', async (ctx) => {
  const { params, client } = ctx.oidc;
  if (!params.username || !params.password) throw new errors.InvalidRequest('username and password are required');
  const user = USERS[params.username];
  if (!user || user.password !== params.password) throw new errors.InvalidGrant('invalid username or password');

  const resource = params.resource ?? DEFAULT_RESOURCE;
  if (!URL.canParse(resource)) throw new errors.InvalidTarget('resource indicator must be an absolute URI');

  const at = new provider.AccessToken({ accountId: params.username, client, gty: 'password' });
  at.resourceServer = new provider.ResourceServer(resource, resourceServerInfo(resource));
  const requested = new Set((params.scope ?? '').split(' '));
  at.scope = requested.has('rpc') ? 'rpc' : undefined;

  ctx.oidc.entity('AccessToken', at);
  const value = await at.save();
  ctx.body = { access_token: value, token_type: at.tokenType, expires_in: at.expiration, scope: at.scope };
}, ['username', 'password', 'resource', 'scope']);

// Token failures are the interesting part of a failing test; surface them.
// error_detail is kept out of the HTTP response by oidc-provider but says why.
provider.on('grant.error', (ctx, err) => {
  console.error(`idp: token error: ${err.error}: ${err.error_description ?? ''}${err.error_detail ? ` (${err.error_detail})` : ''}`);
});
provider.on('server_error', (ctx, err) => console.error('idp: server error:', err));

// ---- login page ------------------------------------------------------------------
// oidc-provider leaves the login UI to the deployment; this one checks the
// USERS passwords and finishes the interaction as that account.
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function loginPage(res, uid, problem) {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1>${problem ? `<p id="problem">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Username <input name="username" id="username" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="login">Sign in</button></form></body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, login) {
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction does not match this browser');
    if (!login) return loginPage(res, uid, '');
    if (req.method !== 'POST') return res.writeHead(405).end();
    const form = await readForm(req);
    const name = form.get('username') ?? '';
    const user = Object.hasOwn(USERS, name) ? USERS[name] : undefined;
    if (!user || user.password !== form.get('password')) return loginPage(res, uid, 'Wrong username or password.');
    await provider.interactionFinished(req, res, { login: { accountId: name } }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`interaction failed: ${err.message}`);
  }
}

// ---- serve ---------------------------------------------------------------------
const callback = provider.callback();
const server = http.createServer((req, res) => {
  const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec(new URL(req.url, 'http://x').pathname);
  if (m) return void interaction(req, res, m[1], !!m[2]);
  return callback(req, res);
});
server.on('error', (err) => die(`listen on 127.0.0.1:${port}: ${err.message}`));
server.listen(port, '127.0.0.1', () => {
  console.error(`idp: listening on 127.0.0.1:${port}, issuer ${issuer}, access tokens ${args.alg}, ttl ${TTL}s`);
  process.stdout.write(`READY ${issuer}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// A test that crashes before killing us would leave the port taken for the next
// run; once reparented (our parent died), exit.
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();
