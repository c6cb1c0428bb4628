// The admin page: API keys, wallet bindings, the loaded policies with a
// dry run of a decision, and the data keys. The node decides every call
// (`rpc:admin`); an admin still cannot read the audit trail.

import { h, show, fill, errorBox, fields, rpc, hasRole } from './app.js';

async function keysSection() {
  const list = await rpc('prividium_adminListApiKeys');
  const shown = h('div', { id: 'new-key' });
  const out = h('div');
  const revoke = (id) => async () => {
    try {
      await rpc('prividium_adminRevokeApiKey', [id]);
      await adminPage();
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  const form = h('form', { class: 'filters', id: 'create-key' },
    h('label', {}, 'role', h('select', { name: 'role', id: 'key-role' },
      // Audit roles are the operator's to create (`prividium keys create`):
      // the node refuses them to admins.
      ['trader', 'operator', 'service', 'counterparty', 'admin'].map((r) => h('option', { value: r }, r)))),
    h('label', {}, 'organization', h('input', { name: 'org', id: 'key-org' })),
    h('label', {}, 'wallets (comma-separated)', h('input', { name: 'wallets', id: 'key-wallets' })),
    h('label', {}, 'expires in (days, at most 365)', h('input', { name: 'days', id: 'key-days', type: 'number', min: 1, max: 365, value: 90 })),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'key-create' }, 'Create key')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    const wallets = String(d.get('wallets') ?? '').split(',').map((w) => w.trim()).filter(Boolean);
    const days = Number(d.get('days'));
    try {
      const r = await rpc('prividium_adminCreateApiKey', [{
        role: d.get('role'),
        org: String(d.get('org') ?? ''),
        wallets,
        expiresInSecs: days > 0 ? Math.round(days * 86400) : null,
      }]);
      await adminPage();
      document.getElementById('new-key').replaceChildren(h('div', { class: 'secret' },
        h('p', {}, `Key ${r.record.id} (${r.record.role}) created. Copy it now: it is shown once and never stored.`),
        h('code', { id: 'new-key-secret' }, r.key)));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  });
  return h('section', { class: 'card' },
    h('h2', {}, 'API keys'),
    form, shown, out,
    h('table', { id: 'keys' },
      h('thead', {}, h('tr', {}, ['Id', 'Role', 'Org', 'Status', 'Created', 'Last used', 'Wallets', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, list.map((k) =>
        h('tr', { 'data-key': k.id },
          h('td', { class: 'mono' }, k.id),
          h('td', {}, k.role),
          h('td', {}, k.org),
          h('td', { class: k.status === 'active' ? 'ok' : 'bad' }, k.status),
          h('td', {}, new Date(k.createdAt * 1000).toISOString()),
          h('td', {}, k.lastUsed ? new Date(k.lastUsed * 1000).toISOString() : '—'),
          h('td', { class: 'mono' }, k.wallets.join(', ')),
          h('td', {}, k.status === 'active' ? h('button', { class: 'danger', id: `revoke-${k.id}`, onclick: revoke(k.id) }, 'Revoke') : null))))));
}

async function walletsSection() {
  const bindings = await rpc('prividium_adminListWallets');
  const out = h('div', { id: 'wallet-result' });
  const form = h('form', { class: 'filters', id: 'bind-wallet' },
    h('label', {}, 'principal', h('input', { name: 'principal', id: 'bind-principal', placeholder: 'User:idp:alice or ApiKey:k_…' })),
    h('label', {}, 'wallet', h('input', { name: 'address', id: 'bind-address', placeholder: '0x…' })),
    h('div', { class: 'row' },
      h('button', { type: 'submit', id: 'bind' }, 'Bind'),
      h('button', { type: 'button', class: 'secondary', id: 'unbind' }, 'Unbind wallet')));
  const act = async (method, params, done) => {
    try {
      const r = await rpc(method, params);
      await adminPage();
      document.getElementById('wallet-result').replaceChildren(h('p', { class: 'ok' }, done(r)));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    act('prividium_adminBindWallet', [String(d.get('principal')).trim(), String(d.get('address')).trim()], () => 'Bound.');
  });
  form.querySelector('#unbind').addEventListener('click', () => {
    const d = new FormData(form);
    act('prividium_adminUnbindWallet', [String(d.get('address')).trim()], (removed) => (removed ? 'Unbound.' : 'That wallet was not bound.'));
  });
  return h('section', { class: 'card' },
    h('h2', {}, 'Wallet bindings'),
    form, out,
    h('table', { id: 'wallets' },
      h('thead', {}, h('tr', {}, ['Wallet', 'Principal', 'Org', 'Bound by', 'Since'].map((c) => h('th', {}, c)))),
      h('tbody', {}, bindings.map((b) =>
        h('tr', {},
          h('td', { class: 'mono' }, b.address),
          h('td', { class: 'mono' }, b.principal),
          h('td', {}, b.org),
          h('td', {}, b.method),
          h('td', {}, new Date(b.bound_at * 1000).toISOString()))))));
}

async function policiesSection() {
  const status = await rpc('prividium_adminPolicyStatus');
  const out = h('div', { id: 'policy-result' });
  const loaded = h('div', { id: 'policy-status' });
  const showLoaded = (s) =>
    loaded.replaceChildren(fields([
      ['Directory', h('span', { class: 'mono' }, s.dir)],
      ['Digest', h('span', { class: 'mono', id: 'policy-digest' }, s.digest)],
      ['Rules', h('details', {}, h('summary', {}, `${Object.keys(s.rules).length} rules`),
        h('table', {}, h('tbody', {}, Object.entries(s.rules).map(([id, at]) =>
          h('tr', {}, h('td', { class: 'mono' }, id), h('td', { class: 'mono' }, at))))))],
    ]));
  showLoaded(status);
  const reload = async () => {
    try {
      const r = await rpc('prividium_reloadPolicies');
      showLoaded(await rpc('prividium_adminPolicyStatus'));
      out.replaceChildren(h('p', { class: 'ok' }, r.changed ? `Reloaded: ${r.rules} rules, digest ${r.digest}.` : 'Reloaded: the files are unchanged.'));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  const answer = h('div', { id: 'explain-result' });
  const form = h('form', { class: 'filters', id: 'explain' },
    h('label', {}, 'principal', h('input', { name: 'principal', id: 'explain-principal', placeholder: 'User:idp:alice' })),
    h('label', {}, 'roles (comma-separated)', h('input', { name: 'roles', id: 'explain-roles', placeholder: 'trader' })),
    h('label', {}, 'organization', h('input', { name: 'org', id: 'explain-org' })),
    h('label', {}, 'action', h('input', { name: 'action', id: 'explain-action', placeholder: 'eth_getStorageAt, audit_read, view_all…' })),
    h('label', {}, 'resource', h('input', { name: 'resource', id: 'explain-resource', placeholder: 'node, account:0x…, tx:0x…' })),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'explain-run' }, 'Dry-run the decision')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    const list = (k) => String(d.get(k) ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    try {
      const r = await rpc('prividium_adminExplainPolicy', [{
        principal: String(d.get('principal')).trim(),
        roles: list('roles'),
        org: String(d.get('org') ?? '').trim(),
        action: String(d.get('action')).trim(),
        resource: String(d.get('resource') ?? '').trim() || null,
      }]);
      fill(answer, h('p', { class: r.allowed ? 'ok' : 'bad', id: 'explain-verdict' },
        `${r.allowed ? 'ALLOW' : 'DENY'} by rule ${r.rule}${r.definedAt ? ` (${r.definedAt})` : ''}`),
        r.errors.length ? h('pre', {}, r.errors.join('\n')) : null);
    } catch (e) {
      answer.replaceChildren(errorBox(e));
    }
  });
  return h('section', { class: 'card' },
    h('h2', {}, 'Policies'),
    loaded,
    h('div', { class: 'row' }, h('button', { id: 'reload-policies', onclick: reload }, 'Reload from the directory')),
    h('p', { class: 'muted' }, 'A reload validates the files first; a set with errors is refused and the loaded one stays.'),
    out,
    h('h2', {}, 'Dry run'),
    h('p', { class: 'muted' }, 'What the loaded policies would decide; nothing is decided for real.'),
    form, answer);
}

async function keyStatusSection() {
  const s = await rpc('prividium_adminKeyStatus');
  if (s.encrypted === false) {
    return h('section', { class: 'card' }, h('h2', {}, 'Data keys'), h('p', { class: 'bad' }, 'This data directory is not encrypted.'));
  }
  const at = (t) => (t ? new Date(t * 1000).toISOString() : '—');
  return h('section', { class: 'card', id: 'key-status' },
    h('h2', {}, 'Data keys'),
    fields([
      ['Provider', s.provider],
      ['Current version', `v${s.current}`],
      ['Re-encryption', s.reencryption.length ? s.reencryption.join('; ') : s.older_live ? 'older keys still live; the node is moving their records' : 'none pending'],
    ]),
    h('table', {},
      h('thead', {}, h('tr', {}, ['Version', 'Created', 'Records sealed', 'State'].map((c) => h('th', {}, c)))),
      h('tbody', {}, s.deks.map((d) =>
        h('tr', {}, h('td', {}, `v${d.version}`), h('td', {}, at(d.created)), h('td', {}, String(d.sealed)),
          h('td', {}, d.state === 'retired' ? `retired ${at(d.retired)}` : d.state))))),
    h('p', { class: 'muted' }, 'Rotate with prividium keys rotate-dek / rotate-kek on the appliance.'));
}

export async function adminPage() {
  if (!hasRole('admin')) {
    // The node decides; this only saves a round of refusals.
    show(h('h1', {}, 'Admin'), errorBox(new Error('Only admins manage keys, wallets and policies.')));
    return;
  }
  show(h('h1', {}, 'Admin'), await keysSection(), await walletsSection(), await policiesSection(), await keyStatusSection());
}
