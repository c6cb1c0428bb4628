// The audit log's proofs, checked in the browser (RFC 9162 Merkle trees,
// SHA-256; the event leaf and the tree head exactly as `audit` in Rust
// encodes them), so an auditor does not have to take the server's word.

const enc = new TextEncoder();

export function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new Error(`not hex: ${String(hex).slice(0, 20)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function concat(parts) {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(len);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Numbers arrive as JSON numbers: only exact, in-range integers are
// encoded (a wrapped negative would hash a different leaf than Rust's).
function integer(n, min) {
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`not an integer the log uses: ${n}`);
  return BigInt(n);
}

function u64be(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, integer(n, 0));
  return b;
}

function i64be(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, integer(n, Number.MIN_SAFE_INTEGER));
  return b;
}

// A SHA-256 hash in hex: exactly 32 bytes, as Rust parses them.
export function hashFromHex(hex) {
  const b = hexToBytes(hex);
  if (b.length !== 32) throw new Error(`not a 32-byte hash: ${String(hex).slice(0, 20)}`);
  return b;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

const leafHash = (data) => sha256(concat([new Uint8Array([0]), data]));
const nodeHash = (l, r) => sha256(concat([new Uint8Array([1]), l, r]));

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// `audit::StoredEvent::leaf_bytes`: a version tag, id and time, then every
// text field length-prefixed (absent fields as one zero byte).
export function eventLeafBytes(e) {
  const parts = [enc.encode('prividium-audit-event/1'), u64be(e.id), i64be(e.time_us)];
  const text = [
    e.actor_type, e.actor_id, e.organization, e.action, e.resource, e.outcome,
    e.rule_id, e.request_id, e.trace_id, e.source_ip, e.details,
  ];
  for (const f of text) {
    if (f === null || f === undefined) {
      parts.push(new Uint8Array([0]));
    } else {
      const s = enc.encode(f);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, s.length);
      parts.push(new Uint8Array([1]), len, s);
    }
  }
  return concat(parts);
}

export async function eventLeafHash(e) {
  return leafHash(eventLeafBytes(e));
}

// RFC 9162 §2.1.3.2.
export async function verifyInclusion(index, size, leaf, path, root) {
  let fn = integer(index, 0);
  let sn = integer(size, 0) - 1n;
  if (fn > sn) return false;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

// RFC 9162 §2.1.4.2.
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  const old = integer(oldSize, 0);
  const neu = integer(newSize, 0);
  if (old > neu) return false;
  if (old === neu) return proof.length === 0 && equal(oldRoot, newRoot);
  if (old === 0n) return proof.length === 0;
  const path = (old & (old - 1n)) === 0n ? [oldRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = old - 1n;
  let sn = neu - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(fr, oldRoot) && equal(sr, newRoot);
}

// `audit::TreeHead::message`, checked with the log's Ed25519 key: true or
// false, or null where this browser's WebCrypto has no Ed25519.
export async function verifyHead(head, publicKeyHex) {
  let message;
  try {
    message = concat([
      enc.encode('prividium-audit-tree-head/1'),
      u64be(head.tree_size),
      u64be(head.signed_at_ms),
      hashFromHex(head.root),
    ]);
  } catch {
    return false;
  }
  let key;
  try {
    key = await crypto.subtle.importKey('raw', hexToBytes(publicKeyHex), { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    return e?.name === 'NotSupportedError' ? null : false;
  }
  try {
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, hexToBytes(head.signature), message);
  } catch {
    return false;
  }
}

// The whole check of one event: its fields hash to the leaf, the leaf is in
// the tree, and the tree's head is signed by the log's key. Each step's
// answer is returned, so the page can say which one failed.
export async function checkEvent(event, proof, publicKeyHex) {
  const failed = { leafMatches: false, included: false, signed: false, ok: false };
  let leaf;
  let path;
  let root;
  try {
    leaf = await eventLeafHash(event);
    path = proof.path.map(hashFromHex);
    root = hashFromHex(proof.head.root);
  } catch {
    return failed;
  }
  const leafMatches = bytesToHex(leaf) === proof.leaf_hash;
  const included = await verifyInclusion(event.id, proof.head.tree_size, leaf, path, root).catch(() => false);
  const signed = await verifyHead(proof.head, publicKeyHex);
  return { leafMatches, included, signed, ok: leafMatches && included && signed === true };
}
