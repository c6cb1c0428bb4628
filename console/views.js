// The explorer (blocks, transactions, receipts, token transfers, accounts)
// and the proofs page. Every answer comes from JSON-RPC as
// the signed-in principal, so each person sees exactly what the RPC lets
// them see: a trader's blocks list only its own transactions.

import { h, show, errorBox, link, fields, rpc, rpcBatch, download, whoami } from './app.js';

const TRANSFER = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
const RECENT_BLOCKS = 40;
const LOG_WINDOW = 5_000;

const num = (hex) => (hex === null || hex === undefined ? null : Number(BigInt(hex)));
const hex = (n) => `0x${BigInt(n).toString(16)}`;
const time = (ts) => new Date(num(ts) * 1000).toISOString();

function ether(wei) {
  const v = BigInt(wei ?? 0);
  const whole = v / 10n ** 18n;
  const frac = (v % 10n ** 18n).toString().padStart(18, '0').replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''} ETH`;
}

const addrLink = (a) => (a ? link(`#/address/${a}`, a, { class: 'mono' }) : '—');
const txLink = (t) => link(`#/tx/${t}`, t, { class: 'mono tx-link' });
const topicAddress = (t) => `0x${t.slice(26)}`;

function searchBox() {
  const input = h('input', { id: 'search-input', placeholder: 'block number, transaction hash or address', size: 60 });
  const form = h('form', { class: 'row', id: 'explorer-search' }, input, h('button', { type: 'submit' }, 'Go'));
  const note = h('span', { class: 'muted' });
  form.append(note);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (/^\d+$/.test(q)) location.hash = `#/block/${q}`;
    else if (/^0x[0-9a-fA-F]{64}$/.test(q)) location.hash = `#/tx/${q}`;
    else if (/^0x[0-9a-fA-F]{40}$/.test(q)) location.hash = `#/address/${q}`;
    else note.textContent = 'Enter a block number, a 32-byte transaction hash or a 20-byte address.';
  });
  return form;
}

function txTable(txs, id) {
  return h('table', { id },
    h('thead', {}, h('tr', {}, ['Hash', 'Block', 'From', 'To', 'Value'].map((c) => h('th', {}, c)))),
    h('tbody', {}, txs.map((t) =>
      h('tr', {},
        h('td', {}, txLink(t.hash)),
        h('td', {}, link(`#/block/${num(t.blockNumber)}`, String(num(t.blockNumber)))),
        h('td', {}, addrLink(t.from)),
        h('td', {}, t.to ? addrLink(t.to) : 'contract creation'),
        h('td', {}, ether(t.value))))));
}

export async function homePage() {
  const me = whoami();
  const head = num(await rpc('eth_blockNumber'));
  const first = Math.max(0, head - RECENT_BLOCKS + 1);
  const answers = await rpcBatch(Array.from({ length: head - first + 1 }, (_, i) => ['eth_getBlockByNumber', [hex(head - i), true]]));
  const failed = answers.find((a) => a instanceof Error);
  if (failed) throw failed;
  const blocks = answers.filter(Boolean);
  const txs = blocks.flatMap((b) => b.transactions);
  show(
    h('h1', {}, 'Explorer'),
    searchBox(),
    me.wallets.length
      ? h('section', { class: 'card' }, h('h2', {}, 'Your wallets'), h('ul', {}, me.wallets.map((w) => h('li', {}, addrLink(w)))))
      : null,
    h('section', { class: 'card' },
      h('h2', {}, `Transactions you can see in the last ${blocks.length} blocks`),
      txs.length ? txTable(txs, 'recent-txs') : h('p', { class: 'muted', id: 'recent-txs' }, 'None.')),
    h('section', { class: 'card' },
      h('h2', {}, 'Latest blocks'),
      h('table', { id: 'blocks' },
        h('thead', {}, h('tr', {}, ['Block', 'Time', 'Transactions (yours to see)', 'Hash'].map((c) => h('th', {}, c)))),
        h('tbody', {}, blocks.slice(0, 10).map((b) =>
          h('tr', {},
            h('td', {}, link(`#/block/${num(b.number)}`, String(num(b.number)))),
            h('td', {}, time(b.timestamp)),
            h('td', {}, String(b.transactions.length)),
            h('td', { class: 'mono' }, b.hash)))))));
}

export async function blockPage(n) {
  const b = await rpc('eth_getBlockByNumber', [hex(n), true]);
  if (!b) return show(h('h1', {}, `Block ${n}`), h('p', {}, 'No such block yet.'));
  show(
    searchBox(),
    h('h1', {}, `Block ${n}`),
    h('section', { class: 'card' }, fields([
      ['Hash', h('span', { class: 'mono' }, b.hash)],
      ['Parent', n > 0 ? link(`#/block/${n - 1}`, b.parentHash, { class: 'mono' }) : b.parentHash],
      ['Time', time(b.timestamp)],
      ['State root', h('span', { class: 'mono' }, b.stateRoot)],
      ['Gas used', String(num(b.gasUsed))],
      ['Transactions you can see', String(b.transactions.length)],
    ])),
    b.transactions.length ? txTable(b.transactions, 'block-txs') : h('p', { class: 'muted' }, 'No transactions you may see.'));
}

// ERC-20 Transfer logs. Any contract can emit a log that looks like one,
// so a malformed amount is shown as such rather than breaking the page.
function transfers(logs) {
  const amount = (data) => {
    try {
      return /^0x[0-9a-fA-F]{1,64}$/.test(data) ? BigInt(data).toString() : 'malformed';
    } catch {
      return 'malformed';
    }
  };
  return logs
    .filter((l) => l.topics?.[0] === TRANSFER && l.topics.length === 3)
    .map((l) => ({ token: l.address, from: topicAddress(l.topics[1]), to: topicAddress(l.topics[2]), amount: amount(l.data), tx: l.transactionHash, block: num(l.blockNumber) }));
}

function transferTable(rows, id) {
  return h('table', { id },
    h('thead', {}, h('tr', {}, ['Token', 'From', 'To', 'Amount', 'Transaction'].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((t) =>
      h('tr', {}, h('td', {}, addrLink(t.token)), h('td', {}, addrLink(t.from)), h('td', {}, addrLink(t.to)), h('td', {}, t.amount), h('td', {}, txLink(t.tx))))));
}

export async function txPage(hash) {
  const [tx, receipt] = await Promise.all([rpc('eth_getTransactionByHash', [hash]), rpc('eth_getTransactionReceipt', [hash])]);
  if (!tx) {
    return show(searchBox(), h('h1', {}, 'Transaction'), h('p', { id: 'tx-missing' }, 'No transaction with this hash that you may see.'));
  }
  const moved = receipt ? transfers(receipt.logs) : [];
  show(
    searchBox(),
    h('h1', {}, 'Transaction'),
    h('section', { class: 'card', id: 'tx' }, fields([
      ['Hash', h('span', { class: 'mono', id: 'tx-hash' }, tx.hash)],
      ['Block', tx.blockNumber ? link(`#/block/${num(tx.blockNumber)}`, String(num(tx.blockNumber))) : 'pending'],
      ['From', addrLink(tx.from)],
      ['To', tx.to ? addrLink(tx.to) : 'contract creation'],
      ['Value', ether(tx.value)],
      ['Nonce', String(num(tx.nonce))],
      ['Status', receipt ? (receipt.status === '0x1' ? h('span', { class: 'ok' }, 'success') : h('span', { class: 'bad' }, 'reverted')) : 'pending'],
      ['Gas used', receipt ? String(num(receipt.gasUsed)) : null],
      ['Contract created', receipt?.contractAddress ? addrLink(receipt.contractAddress) : null],
      ['Input', h('span', { class: 'mono' }, tx.input.length > 202 ? `${tx.input.slice(0, 202)}… (${(tx.input.length - 2) / 2} bytes)` : tx.input)],
    ])),
    moved.length ? [h('h2', {}, 'Token transfers'), transferTable(moved, 'tx-transfers')] : null,
    receipt && receipt.logs.length ? [h('h2', {}, `Logs (${receipt.logs.length})`), h('pre', {}, JSON.stringify(receipt.logs, null, 2))] : null);
}

export async function addressPage(address) {
  const head = num(await rpc('eth_blockNumber'));
  const [balance, nonce, code] = await Promise.all([
    rpc('eth_getBalance', [address, 'latest']),
    rpc('eth_getTransactionCount', [address, 'latest']),
    rpc('eth_getCode', [address, 'latest']),
  ]);
  const topic = `0x${address.slice(2).toLowerCase().padStart(64, '0')}`;
  const fromBlock = hex(Math.max(0, head - LOG_WINDOW + 1));
  const logs = await Promise.all([
    rpc('eth_getLogs', [{ fromBlock, toBlock: 'latest', topics: [TRANSFER, topic] }]),
    rpc('eth_getLogs', [{ fromBlock, toBlock: 'latest', topics: [TRANSFER, null, topic] }]),
  ]).then(([a, b]) => transfers([...a, ...b]).sort((x, y) => y.block - x.block)).catch((e) => e);
  show(
    searchBox(),
    h('h1', {}, code && code !== '0x' ? 'Contract' : 'Account'),
    h('section', { class: 'card' }, fields([
      ['Address', h('span', { class: 'mono', id: 'address' }, address)],
      ['Balance', h('span', { id: 'balance' }, ether(balance))],
      ['Transactions sent', String(num(nonce))],
      ['Code', code && code !== '0x' ? `${(code.length - 2) / 2} bytes` : 'none'],
    ])),
    h('h2', {}, `Token transfers in the last ${LOG_WINDOW} blocks`),
    logs instanceof Error ? errorBox(logs) : logs.length ? transferTable(logs, 'address-transfers') : h('p', { class: 'muted' }, 'None you may see.'));
}

export async function proofsPage() {
  const r = await rpc('prividium_batches', [{ limit: 50 }]);
  const fetchFile = (name) => (ev) => {
    ev.preventDefault();
    download(`/proofs/${name}`, name).catch((e) => ev.target.replaceWith(errorBox(e)));
  };
  const yes = (v) => (v ? h('span', { class: 'ok' }, 'yes') : h('span', { class: 'muted' }, 'no'));
  show(
    h('h1', {}, 'Proofs and settlement'),
    !r.proving
      ? h('p', { class: 'muted' }, 'This node does not prove batches.')
      : h('section', { class: 'card' }, fields([
          ['Queued batches', String(r.queue?.queued ?? '—')],
          ['Being proven', String(r.queue?.proving ?? '—')],
          ['Settled up to batch', r.settlement?.settled_batch ?? 'not settling'],
        ])),
    r.batches.length
      ? h('table', { id: 'batches' },
          h('thead', {}, h('tr', {}, ['Batch', 'Blocks', 'State root before / after', 'Proven', 'Settled', 'Digest / program', 'Files', 'Counterparty check'].map((c) => h('th', {}, c)))),
          h('tbody', {}, r.batches.map((b) =>
            b.unreadable
              ? h('tr', {}, h('td', {}, String(b.batch)), h('td', { colspan: 7, class: 'bad' }, 'outputs file unreadable'))
              : h('tr', {},
                  h('td', {}, String(b.batch)),
                  h('td', {}, link(`#/block/${b.firstBlock}`, String(b.firstBlock)), '–', link(`#/block/${b.lastBlock}`, String(b.lastBlock))),
                  h('td', { class: 'mono' }, b.prevStateRoot, h('br'), b.newStateRoot),
                  h('td', {}, yes(b.proven)),
                  h('td', {}, yes(b.settled)),
                  h('td', { class: 'mono' }, `digest ${b.digest}`, h('br'), `program ${b.programId}`),
                  h('td', {},
                    h('a', { href: `/proofs/batch-${b.batch}.proof`, onclick: fetchFile(`batch-${b.batch}.proof`) }, 'proof'), ' ',
                    h('a', { href: `/proofs/batch-${b.batch}.json`, onclick: fetchFile(`batch-${b.batch}.json`) }, 'outputs')),
                  h('td', {}, h('code', {}, b.verify))))))
      : h('p', { class: 'muted', id: 'batches' }, 'No batch has been proven yet.'));
}
