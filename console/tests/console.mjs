#!/usr/bin/env node
// The console in a real browser: Debian's Chromium driven by playwright-core
// against the real `prividium` binary and the real test IdP (oidc-provider).
// Started by appliance/tests/it/console.rs, which sets up the chain and
// passes what it made through the environment:
//
//   CONSOLE_URL    https://127.0.0.1:PORT/console/
//   ADMIN_KEY      the dev admin API key
//   ALICE_TX       a transfer alice (a trader) sent from her wallet
//   OTHER_TX       a transfer from a wallet that is not alice's
//   XSS_TEXT       text containing <script> that an audit event carries
//   SHOTS          where to save screenshots
//   PRIVIDIUM_PEERS  where playwright-core is installed
//
// Exits 0 when every check passed; each failure is printed with its step.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { createRequire } from 'node:module';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL0 = env('CONSOLE_URL');
const SHOTS = env('SHOTS');
const peers = process.env.PRIVIDIUM_PEERS ?? path.join(os.homedir(), '.cache', 'prividium-peers');
const { chromium } = createRequire(path.join(peers, 'node_modules', 'noop.js'))('playwright-core');

let step = 'start';
const log = (m) => console.log(`console-test: ${m}`);
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const downloads = fs.mkdtempSync(path.join(os.tmpdir(), 'console-dl-'));
fs.mkdirSync(SHOTS, { recursive: true });

// A fresh browser profile per person; any alert() (a script that ran from
// data) fails the test, as does any script error or CSP violation.
async function person() {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.problems = [];
  page.on('dialog', async (d) => {
    page.problems.push(`dialog opened: ${d.message()}`);
    await d.dismiss();
  });
  page.on('pageerror', (e) => page.problems.push(`script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) page.problems.push(`CSP: ${m.text()}`);
  });
  return { ctx, page };
}

// Saves a screenshot, after checking that no empty value reached the page
// as the words "null" or "undefined".
async function shot(page, name, fullPage = true) {
  const body = await page.locator('body').innerText();
  check(!/\b(null|undefined|NaN)\b/.test(body), `${name} page shows ${/\b(null|undefined|NaN)\b/.exec(body)?.[0]}`);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}
const text = (page, sel) => page.locator(sel).first().innerText({ timeout: 15_000 });

async function signInWithIdp(page, user) {
  await page.goto(`${URL0}#/`);
  await page.waitForURL(/#\/signin$/);
  await page.click('#signin-idp');
  await page.waitForSelector('#username', { timeout: 15_000 });
  await page.fill('#username', user);
  await page.fill('#password', `${user}-pw`);
  await page.click('#login');
  await page.waitForSelector('#principal', { timeout: 20_000 });
  const who = await text(page, '#principal');
  check(who.startsWith(`User:idp:${user}`), `signed in as ${who}, not ${user}`);
}

let failed = false;
async function run(name, body) {
  step = name;
  try {
    await body();
    log(`ok: ${name}`);
  } catch (e) {
    failed = true;
    console.error(`console-test: FAILED: ${e.message}`);
  }
}

// ---- signed out -------------------------------------------------------------------
await run('a signed-out page redirects to sign-in', async () => {
  const { ctx, page } = await person();
  await page.goto(`${URL0}#/audit`);
  await page.waitForURL(/#\/signin$/);
  check((await text(page, 'h1')) === 'Sign in', 'no sign-in heading');
  check(await page.isVisible('#signin-idp'), 'no IdP sign-in button');
  await shot(page, 'signin');
  const headers = (await page.request.get(URL0)).headers();
  const csp = headers['content-security-policy'] ?? '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `CSP: ${csp}`);
  check(headers['referrer-policy'] === 'no-referrer', 'referrer policy');
  await ctx.close();
});

// ---- admin: keys, and no audit trail ----------------------------------------------
let revokedKey = null;
await run('an admin creates and revokes a key and is refused the audit page', async () => {
  const { ctx, page } = await person();
  await page.goto(`${URL0}#/admin`);
  await page.waitForURL(/#\/signin$/);
  await page.fill('#api-key', env('ADMIN_KEY'));
  await page.click('#use-key');
  // Back where the admin was going.
  await page.waitForSelector('#create-key', { timeout: 15_000 });
  check(!(await page.isVisible('#nav-audit')), 'admin is offered the audit trail');
  await page.selectOption('#key-role', 'trader');
  await page.fill('#key-org', 'bank-a');
  await page.click('#key-create');
  await page.waitForSelector('#new-key-secret', { timeout: 15_000 });
  const secret = await text(page, '#new-key-secret');
  check(/^pvd_[0-9a-f]{64}$/.test(secret), `key shown: ${secret}`);
  // The new key works at once, for RPC, as a trader.
  const call = async (key) =>
    page.request.post(URL0.replace(/\/console\/$/, '/'), {
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      data: { jsonrpc: '2.0', id: 1, method: 'prividium_whoami', params: [] },
    });
  const who = await (await call(secret)).json();
  check(who.result?.roles?.[0] === 'trader', `new key: ${JSON.stringify(who)}`);
  const id = who.result.principal.replace(/^ApiKey:/, '');
  const row = page.locator(`tr[data-key="${id}"]`);
  check((await row.locator('td').nth(3).innerText()) === 'active', 'new key not listed as active');
  await page.click(`#revoke-${id}`);
  await page.waitForFunction((k) => document.querySelector(`tr[data-key="${k}"] td:nth-child(4)`)?.textContent === 'revoked', id, { timeout: 15_000 });
  check((await call(secret)).status() === 401, 'revoked key still accepted');
  revokedKey = id;
  // Keys that reach the audit trail are not an admin's to hand out.
  const escalate = await (await page.request.post(URL0.replace(/\/console\/$/, '/'), {
    headers: { authorization: `Bearer ${env('ADMIN_KEY')}`, 'content-type': 'application/json' },
    data: { jsonrpc: '2.0', id: 1, method: 'prividium_adminCreateApiKey', params: [{ role: 'compliance' }] },
  })).json();
  check(/separation of duties/.test(escalate.error?.message ?? ''), `compliance key: ${JSON.stringify(escalate)}`);
  // The admin binds a wallet for a principal whose name is markup: the
  // auditor below must see it as text.
  await page.fill('#bind-principal', env('XSS_TEXT'));
  await page.fill('#bind-address', '0x00000000000000000000000000000000000000aa');
  await page.click('#bind');
  await page.waitForSelector('#wallet-result .ok', { timeout: 15_000 });
  check((await text(page, '#wallets')).includes(env('XSS_TEXT')), 'binding not listed (as text)');
  // The loaded policies, a dry run and the data keys.
  check(/^[0-9a-f]{64}$/.test(await text(page, '#policy-digest')), 'policy digest');
  await page.fill('#explain-principal', 'User:idp:alice');
  await page.fill('#explain-roles', 'trader');
  await page.fill('#explain-action', 'audit_read');
  await page.click('#explain-run');
  await page.waitForSelector('#explain-verdict', { timeout: 15_000 });
  check((await text(page, '#explain-verdict')).startsWith('DENY by rule default-deny'), await text(page, '#explain-verdict'));
  await page.fill('#explain-roles', 'compliance');
  await page.click('#explain-run');
  await page.waitForFunction(() => document.querySelector('#explain-verdict')?.textContent.startsWith('ALLOW'), null, { timeout: 15_000 });
  check((await text(page, '#explain-verdict')).includes('audit.read.compliance'), await text(page, '#explain-verdict'));
  check((await text(page, '#key-status')).includes('current'), 'key status');
  await shot(page, 'admin');
  // Separation of duties: the node refuses the audit trail to an admin.
  await page.goto(`${URL0}#/audit`);
  await page.waitForSelector('.error', { timeout: 15_000 });
  const refusal = await text(page, '.error');
  check(/may not read the audit log/.test(refusal), `refusal: ${refusal}`);
  check(page.problems.length === 0, page.problems.join('; '));
  await ctx.close();
});

// ---- auditor: search, proof, export, markup shown as text ----------------------------
await run('an auditor signs in at the IdP, searches, checks a proof and exports CSV', async () => {
  const { ctx, page } = await person();
  await signInWithIdp(page, 'carol');
  await page.click('#nav-audit');
  await page.waitForSelector('#audit-table tbody tr', { timeout: 20_000 });
  check((await text(page, '#head-signed')).startsWith('valid'), 'tree head signature');
  // The first screenful: the log's status, the search and the newest events.
  await shot(page, 'audit', false);
  // The revocation, found by action and resource.
  await page.fill('#f-action', 'admin.api_key.*');
  await page.fill('#f-resource', `ApiKey:${revokedKey}`);
  await page.click('#search');
  await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr').length === 2, null, { timeout: 15_000 });
  const actions = await page.locator('#audit-table tbody tr td:nth-child(4)').allInnerTexts();
  check(actions.join(',') === 'admin.api_key.revoked,admin.api_key.created', `actions: ${actions}`);
  // The wallet binding whose details carry markup: the newest binding.
  await page.fill('#f-action', 'admin.wallet.bound');
  await page.fill('#f-resource', '');
  await page.click('#search');
  await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr').length >= 1, null, { timeout: 15_000 });
  await page.locator('#audit-table .event-link').first().click();
  await page.waitForSelector('#proof-verdict', { timeout: 20_000 });
  check((await text(page, '#proof-verdict')) === 'Verified in this browser', 'proof not verified');
  const details = await text(page, '#event-details');
  check(details.includes(env('XSS_TEXT')), `details do not show the markup as text: ${details}`);
  // The browser's check fails for a changed event and for a head whose
  // signed fields were changed (the same code the page ran above).
  const eventId = Number(new URL(page.url()).hash.replace('#/audit/', ''));
  const verdicts = await page.evaluate(async (id) => {
    const m = await import('/console/merkle.js');
    const { token } = JSON.parse(sessionStorage.getItem('prividium.session'));
    const get = (p) => fetch(p, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json());
    const { event, proof } = await get(`/audit/events/${id}/proof`);
    const { public_key: key } = await get('/audit/head');
    const good = await m.checkEvent(event, proof, key);
    const edited = await m.checkEvent({ ...event, details: event.details.replace('alert(1)', 'alert(3)') }, proof, key);
    const moved = await m.checkEvent({ ...event, id: event.id + 1 }, proof, key);
    const forged = await m.checkEvent(event, { ...proof, head: { ...proof.head, signed_at_ms: proof.head.signed_at_ms + 1 } }, key);
    return { good: good.ok, edited: edited.leafMatches || edited.ok, moved: moved.ok, forged: forged.signed || forged.ok };
  }, eventId);
  check(verdicts.good && !verdicts.edited && !verdicts.moved && !verdicts.forged, `tamper checks: ${JSON.stringify(verdicts)}`);
  check((await page.locator('#event-details script, #event-details img').count()) === 0, 'markup became elements');
  await shot(page, 'audit-event');
  // Export of the whole trail as CSV, pinned to a signed head.
  await page.goto(`${URL0}#/audit`);
  await page.waitForSelector('#audit-table tbody tr', { timeout: 20_000 });
  // The second visit proves the log still extends the head seen on the first.
  check((await text(page, '#head-consistent')).startsWith('extends the head of size'), await text(page, '#head-consistent'));
  // The page keeps the last query; the export is of the whole trail.
  await page.fill('#f-action', '');
  await page.click('#search');
  await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr').length > 10, null, { timeout: 15_000 });
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 20_000 }), page.click('#export-csv')]);
  const file = path.join(downloads, dl.suggestedFilename());
  await dl.saveAs(file);
  const csv = fs.readFileSync(file, 'utf8').trim().split('\n');
  check(csv[0].startsWith('id,'), `CSV header: ${csv[0]}`);
  check(csv.length > 10 && csv.some((l) => l.includes('admin.api_key.revoked')), `CSV has ${csv.length} lines`);
  check((await text(page, '#export-done')).includes('pinned to the signed tree head'), 'export not pinned');
  check(page.problems.length === 0, page.problems.join('; '));
  await ctx.close();
});

// ---- legal holds: compliance curates, auditors only read -------------------------------
await run('a compliance officer places and releases a legal hold; an auditor may not', async () => {
  const placeHold = async (page, reason) => {
    await page.click('#nav-audit');
    await page.waitForSelector('#place-hold', { timeout: 20_000 });
    await page.fill('#hold-from', '2026-01-01');
    await page.fill('#hold-to', '2030-01-01');
    await page.fill('#hold-reason', reason);
    await page.click('#hold-place');
  };
  const auditor = await person();
  await signInWithIdp(auditor.page, 'carol');
  await placeHold(auditor.page, 'case 1');
  await auditor.page.waitForSelector('#hold-result .error', { timeout: 15_000 });
  const refusal = await text(auditor.page, '#hold-result .error');
  check(/may not place or release legal holds/.test(refusal), `auditor's hold: ${refusal}`);
  await auditor.ctx.close();

  const { ctx, page } = await person();
  await signInWithIdp(page, 'cora');
  await placeHold(page, 'case 2026-17 <b>bold</b>');
  await page.waitForSelector('#holds-table', { timeout: 15_000 });
  const row = page.locator('#holds-table tbody tr', { hasText: 'case 2026-17' });
  check((await row.locator('td').nth(6).innerText()) === 'active', 'hold not active');
  check((await row.locator('td').nth(3).innerText()) === 'case 2026-17 <b>bold</b>', 'reason not shown as text');
  const id = await row.locator('td').first().innerText();
  await page.click(`#release-${id}`);
  await page.waitForFunction((i) => document.querySelector(`#release-${i}`) === null, id, { timeout: 15_000 });
  const status = await page.locator('#holds-table tbody tr', { hasText: 'case 2026-17' }).locator('td').nth(6).innerText();
  check(status.startsWith('released'), `after release: ${status}`);
  check(page.problems.length === 0, page.problems.join('; '));
  await ctx.close();
});

// ---- trader: own transfer only ------------------------------------------------------
await run("a trader sees its own transfer and not another's", async () => {
  const { ctx, page } = await person();
  await signInWithIdp(page, 'alice');
  check(!(await page.isVisible('#nav-audit')), 'trader offered the audit trail');
  await page.waitForSelector('#recent-txs', { timeout: 20_000 });
  const recent = await text(page, '#recent-txs');
  check(recent.includes(env('ALICE_TX')), 'own transfer missing from the recent list');
  check(!recent.includes(env('OTHER_TX')), "another's transfer listed");
  await shot(page, 'explorer');
  await page.goto(`${URL0}#/tx/${env('ALICE_TX')}`);
  await page.waitForSelector('#tx-hash', { timeout: 15_000 });
  check((await text(page, '#tx-hash')) === env('ALICE_TX'), 'own transfer page');
  await shot(page, 'transaction');
  await page.goto(`${URL0}#/tx/${env('OTHER_TX')}`);
  await page.waitForSelector('#tx-missing', { timeout: 15_000 });
  // Signing out ends the session: the next page asks to sign in again.
  await page.click('#signout');
  await page.waitForURL(/#\/signin$/);
  await page.goto(`${URL0}#/`);
  await page.waitForURL(/#\/signin$/);
  check(page.problems.length === 0, page.problems.join('; '));
  await ctx.close();
});

await run('the proofs page shows what the node proves', async () => {
  const { ctx, page } = await person();
  await signInWithIdp(page, 'alice');
  await page.click('#nav-proofs');
  await page.waitForSelector('h1:has-text("Proofs")', { timeout: 15_000 });
  await shot(page, 'proofs');
  await ctx.close();
});

await browser.close();
fs.rmSync(downloads, { recursive: true, force: true });
if (failed) process.exit(1);
log('all checks passed');
