// The compliance pages: search the audit trail, open an event and check its
// inclusion proof here in the browser, export a query pinned to a signed
// tree head, and see whether the log still extends the head this browser
// saw last time.

import { h, show, fill, errorBox, link, fields, call, download, whoami } from './app.js';
import { checkEvent, verifyConsistency, verifyHead, hexToBytes } from './merkle.js';

const FILTERS = ['actor', 'action', 'outcome', 'rule', 'resource', 'from', 'to'];
const PAGE = 50;

// The query of the search page, kept while the user opens events and comes back.
let query = { order: 'desc' };

function queryString(extra = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...query, ...extra })) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  return q.toString();
}

function lastHeadKey() {
  return `prividium.audit.head.${whoami()?.principal ?? ''}`;
}

// The signed head, its signature checked here, and its consistency with the
// head this browser last accepted (kept per principal in localStorage with
// the key that signed it). A head is accepted only once it is proven to
// extend the previous one; a failed check stays on screen on every visit
// until the log proves consistency again, and a new signing key is named.
async function logStatus() {
  const doc = await call('/audit/head');
  const head = doc.tree_head;
  const signed = await verifyHead(head, doc.public_key);
  const signature = signed === null
    ? h('span', { class: 'muted', id: 'head-signed' }, 'cannot be checked in this browser (no Ed25519 in WebCrypto)')
    : signed
      ? h('span', { class: 'ok', id: 'head-signed' }, 'valid (checked in this browser)')
      : h('span', { class: 'bad', id: 'head-signed' }, 'INVALID');
  const rows = [
    ['Tree size', String(head.tree_size)],
    ['Root', h('span', { class: 'mono' }, head.root)],
    ['Signed at', new Date(head.signed_at_ms).toISOString()],
    ['Signing key', h('span', { class: 'mono' }, `${head.key_id} (public key ${doc.public_key})`)],
    ['Signature', signature],
  ];
  let previous = null;
  try {
    previous = JSON.parse(localStorage.getItem(lastHeadKey()) ?? 'null');
  } catch {
    previous = null;
  }
  let accept = signed === true && !previous;
  if (previous) {
    const seen = `the head of size ${previous.tree_size} you saw at ${new Date(previous.signed_at_ms).toISOString()}`;
    let verdict;
    if (previous.public_key && previous.public_key !== doc.public_key) {
      verdict = h('span', { class: 'bad', id: 'head-consistent' }, `signed by a NEW key ${head.key_id}; ${seen} was signed by ${previous.key_id}`);
    } else if (previous.tree_size > head.tree_size) {
      verdict = h('span', { class: 'bad', id: 'head-consistent' }, `the log is SMALLER than ${seen}: it was rolled back`);
    } else {
      let proof = null;
      try {
        proof = await call(`/audit/consistency?from=${previous.tree_size}&to=${head.tree_size}`);
      } catch (e) {
        verdict = h('span', { class: 'muted', id: 'head-consistent' }, `could not be checked now (${e.message})`);
      }
      if (proof) {
        const consistent =
          proof.old.root === previous.root &&
          (await verifyConsistency(previous.tree_size, head.tree_size, hexToBytes(previous.root), hexToBytes(head.root), proof.path.map(hexToBytes)).catch(() => false));
        verdict = consistent
          ? h('span', { class: 'ok', id: 'head-consistent' }, `extends ${seen} (checked in this browser)`)
          : h('span', { class: 'bad', id: 'head-consistent' }, `does NOT extend ${seen}: the log was rewritten`);
        accept = consistent && signed === true;
      }
    }
    rows.push(['Since your last visit', verdict]);
  }
  // The last full check of the log (`prividium audit verify`, which
  // re-hashes every event and checks every signed head) is itself an event.
  const last = await call('/audit/events?action=audit.verified&order=desc&limit=1').catch(() => null);
  const verified = last?.events?.[0];
  let outcome = null;
  try {
    outcome = verified ? JSON.parse(verified.details) : null;
  } catch {
    outcome = null;
  }
  rows.push([
    'Last full verification',
    !verified
      ? h('span', { class: 'muted', id: 'last-verify' }, 'never (run prividium audit verify)')
      : h('span', { class: outcome?.ok ? 'ok' : 'bad', id: 'last-verify' },
          `${outcome?.ok ? 'intact' : 'FAILED'} at ${verified.time} by ${verified.actor_id}${outcome?.ok ? '' : `: ${JSON.stringify(outcome?.finding ?? outcome)}`}`),
  ]);
  if (accept) localStorage.setItem(lastHeadKey(), JSON.stringify({ ...head, public_key: doc.public_key }));
  return { doc, view: h('section', { class: 'card', id: 'log-status' }, h('h2', {}, 'Log status'), fields(rows)) };
}

function filterForm(onSearch) {
  const input = (name, placeholder) =>
    h('label', {}, name, h('input', { name, id: `f-${name}`, value: query[name] ?? '', placeholder }));
  const outcome = h('select', { name: 'outcome', id: 'f-outcome' },
    ['', 'allow', 'deny', 'error'].map((o) => h('option', { value: o, selected: (query.outcome ?? '') === o }, o || 'any')));
  const form = h('form', { class: 'filters', id: 'audit-search' },
    input('actor', 'User:idp:alice'),
    input('action', 'policy.* or auth.login.failed'),
    h('label', {}, 'outcome', outcome),
    input('rule', 'rpc.admin.admin'),
    input('resource', 'wallet:0x…'),
    input('from', '2026-12-01 or RFC 3339'),
    input('to', '2026-12-31'),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'search' }, 'Search')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    query = { order: 'desc' };
    for (const f of FILTERS) {
      const v = String(data.get(f) ?? '').trim();
      if (v) query[f] = v;
    }
    onSearch();
  });
  return form;
}

function eventRows(events) {
  return events.map((e) =>
    h('tr', {},
      h('td', {}, link(`#/audit/${e.id}`, String(e.id), { class: 'event-link' })),
      h('td', {}, e.time),
      h('td', { class: 'mono' }, e.actor_id),
      h('td', {}, e.action),
      h('td', { class: e.outcome === 'allow' ? 'ok' : 'bad' }, e.outcome),
      h('td', { class: 'mono' }, e.rule_id ?? ''),
      h('td', { class: 'mono' }, e.resource ?? '')));
}

const usTime = (us) => new Date(Math.floor(us / 1000)).toISOString();

// Legal holds: every audit reader sees them; placing and releasing is
// decided by the node (`audit_hold`, compliance officers in the bank
// policies), whose refusal is shown as is.
async function holdsSection() {
  const out = h('div', { id: 'hold-result' });
  const section = h('section', { class: 'card', id: 'holds' }, h('h2', {}, 'Legal holds'));
  const refresh = async () => {
    const { holds } = await call('/audit/holds');
    const release = (id) => async () => {
      try {
        await call(`/audit/holds/${id}/release`, { json: {} });
        section.replaceWith(await holdsSection());
      } catch (e) {
        out.replaceChildren(errorBox(e));
      }
    };
    return holds.length
      ? h('table', { id: 'holds-table' },
          h('thead', {}, h('tr', {}, ['Id', 'From', 'To', 'Reason', 'Placed by', 'Placed', 'Status', ''].map((c) => h('th', {}, c)))),
          h('tbody', {}, holds.map((x) =>
            h('tr', {},
              h('td', {}, String(x.id)),
              h('td', {}, usTime(x.from_us)),
              h('td', {}, usTime(x.to_us)),
              h('td', {}, x.reason),
              h('td', { class: 'mono' }, x.placed_by),
              h('td', {}, usTime(x.placed_us)),
              h('td', { class: x.released_us ? 'muted' : 'ok' }, x.released_us ? `released ${usTime(x.released_us)}` : 'active'),
              h('td', {}, x.released_us ? null : h('button', { class: 'secondary', id: `release-${x.id}`, onclick: release(x.id) }, 'Release'))))))
      : h('p', { class: 'muted' }, 'No legal holds.');
  };
  const form = h('form', { class: 'filters', id: 'place-hold' },
    h('label', {}, 'from', h('input', { name: 'from', id: 'hold-from', placeholder: '2026-01-01' })),
    h('label', {}, 'to', h('input', { name: 'to', id: 'hold-to', placeholder: '2027-01-01' })),
    h('label', {}, 'reason (case reference)', h('input', { name: 'reason', id: 'hold-reason' })),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'hold-place' }, 'Place hold')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    try {
      await call('/audit/holds', { json: { from: String(d.get('from')).trim(), to: String(d.get('to')).trim(), reason: String(d.get('reason')) } });
      section.replaceWith(await holdsSection());
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  });
  section.append(await refresh().catch((e) => errorBox(e)), form, out);
  return section;
}

export async function searchPage() {
  const results = h('div', { id: 'audit-results' });
  const exportNote = h('div', { id: 'export-note' });
  const status = await logStatus().catch((e) => ({ view: errorBox(e) }));

  const run = async () => {
    results.replaceChildren(h('p', { class: 'muted' }, 'Searching…'));
    const body = h('tbody');
    const table = h('table', { id: 'audit-table' },
      h('thead', {}, h('tr', {}, ['Id', 'Time', 'Actor', 'Action', 'Outcome', 'Rule', 'Resource'].map((c) => h('th', {}, c)))),
      body);
    const more = h('div', { class: 'row' });
    const page = async (after) => {
      const r = await call(`/audit/events?${queryString({ limit: PAGE, after })}`);
      body.append(...eventRows(r.events));
      fill(more,
        h('span', { class: 'muted' }, `${body.children.length} event(s) shown`),
        r.next !== null && r.next !== undefined
          ? h('button', { class: 'secondary', id: 'more', onclick: () => page(r.next).catch((e) => more.replaceChildren(errorBox(e))) }, 'Next page')
          : null);
    };
    try {
      await page(undefined);
      results.replaceChildren(table, more);
    } catch (e) {
      results.replaceChildren(errorBox(e));
    }
  };

  const exportAs = async (format) => {
    exportNote.replaceChildren(h('span', { class: 'muted' }, 'Exporting…'));
    try {
      const q = queryString({ format, order: undefined });
      const resp = await download(`/audit/export?${q}`, `audit.${format === 'csv' ? 'csv' : 'jsonl'}`);
      const pinned = JSON.parse(resp.headers.get('x-audit-tree-head') ?? 'null');
      exportNote.replaceChildren(h('span', { class: 'ok', id: 'export-done' },
        pinned ? `Exported, pinned to the signed tree head of size ${pinned.tree_head.tree_size} (root ${pinned.tree_head.root}).` : 'Exported.'));
    } catch (e) {
      exportNote.replaceChildren(errorBox(e));
    }
  };

  show(
    h('h1', {}, 'Audit trail'),
    status.view,
    h('section', { class: 'card' },
      h('h2', {}, 'Search'),
      filterForm(run),
      h('div', { class: 'row' },
        h('button', { class: 'secondary', id: 'export-csv', onclick: () => exportAs('csv') }, 'Export CSV'),
        h('button', { class: 'secondary', id: 'export-json', onclick: () => exportAs('json') }, 'Export JSON lines'),
        exportNote)),
    results,
    await holdsSection());
  await run();
}

export async function eventPage(id) {
  const [{ event, proof }, head] = await Promise.all([call(`/audit/events/${id}/proof`), call('/audit/head')]);
  // The answer must be about the event asked for, not merely some event
  // with a valid proof.
  const same = event.id === id && proof.event_id === id;
  const check = same ? await checkEvent(event, proof, head.public_key) : { leafMatches: false, included: false, signed: false, ok: false };
  const mark = (ok, yes, no) => h('li', { class: ok ? 'ok' : 'bad' }, ok ? `✓ ${yes}` : `✗ ${no}`);
  let details = event.details;
  try {
    details = JSON.stringify(JSON.parse(event.details), null, 2);
  } catch {
    // Shown as stored.
  }
  show(
    h('p', {}, link('#/audit', '← Back to the search')),
    h('h1', {}, `Event ${event.id}`),
    h('section', { class: 'card' },
      fields([
        ['Time', event.time],
        ['Actor', h('span', { class: 'mono', id: 'event-actor' }, `${event.actor_type} ${event.actor_id}`)],
        ['Organization', event.organization],
        ['Action', event.action],
        ['Outcome', event.outcome],
        ['Rule', event.rule_id],
        ['Resource', event.resource],
        ['Request id', event.request_id],
        ['Trace id', event.trace_id],
        ['Client address', event.source_ip],
        ['Leaf hash', h('span', { class: 'mono' }, event.leaf_hash)],
      ]),
      h('h2', {}, 'Details'),
      h('pre', { id: 'event-details' }, details)),
    h('section', { class: 'card', id: 'proof' },
      h('h2', {}, 'Inclusion proof'),
      h('p', { id: 'proof-verdict', class: check.ok ? 'ok' : 'bad' },
        !same ? `NOT verified: the server answered for event ${event.id}, not ${id}` : check.ok ? 'Verified in this browser' : check.signed === null ? 'Path verified; the head signature cannot be checked in this browser' : 'NOT verified'),
      h('ul', { class: 'checks' },
        mark(check.leafMatches, 'the fields above hash to the leaf', 'the fields do not hash to the stated leaf'),
        mark(check.included, `the leaf is entry ${event.id} of the tree of ${proof.head.tree_size} events`, 'the path does not lead to the signed root'),
        check.signed === null
          ? h('li', { class: 'muted' }, 'the tree head signature cannot be checked here (no Ed25519 in WebCrypto)')
          : mark(check.signed, `the tree head is signed by key ${proof.head.key_id}`, 'the tree head signature does not verify')),
      fields([
        ['Tree size', String(proof.head.tree_size)],
        ['Root', h('span', { class: 'mono' }, proof.head.root)],
        ['Signed at', new Date(proof.head.signed_at_ms).toISOString()],
        ['Path', h('span', { class: 'mono' }, `${proof.path.length} hashes`)],
      ])));
}
