#!/usr/bin/env node
// Test-only: signs arbitrary JWT claims with the IdP's own signing key, so
// tests can present tokens the IdP would never issue on request (expired,
// not yet valid) yet that carry a valid signature from a key its JWKS
// publishes. NOT for production.
//
//   node mint.mjs --jwks FILE --claims JSON [--kid KID]
//
// Signs with the file's RS256 key; prints the compact JWS on stdout.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';

const die = (msg) => {
  console.error(`mint: ${msg}`);
  process.exit(2);
};

const { values: args } = parseArgs({
  options: {
    jwks: { type: 'string' },
    claims: { type: 'string' },
    kid: { type: 'string' },
  },
});
if (!args.jwks || !args.claims) die('--jwks FILE and --claims JSON are required');
const jwks = JSON.parse(fs.readFileSync(args.jwks, 'utf8'));
const jwk = (jwks.keys ?? []).find((k) => k.kty === 'RSA');
if (!jwk) die(`${args.jwks} has no RSA key`);
let claims;
try {
  claims = JSON.parse(args.claims);
} catch (e) {
  die(`--claims is not JSON: ${e.message}`);
}

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
// The kid may be overridden to present a key id the IdP never published.
const header = { alg: 'RS256', typ: 'at+jwt', kid: args.kid ?? jwk.kid };
const input = `${b64(header)}.${b64(claims)}`;
const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
const signature = crypto.sign('sha256', Buffer.from(input), key).toString('base64url');
process.stdout.write(`${input}.${signature}\n`);
