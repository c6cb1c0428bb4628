#!/usr/bin/env node
// Compiles every *.sol in one directory (default: contracts/, or the first
// argument, e.g. gateway-bridge/contracts) with the npm `solc` package
// (standard JSON, evmVersion cancun, optimizer 200 runs) and writes one
// artifact per deployable contract to <dir>/out/<Name>.json:
//   {"contractName", "abi", "bytecode": "0x...", "deployedBytecode": "0x..."}
//
// `solc` is resolved from $PRIVIDIUM_PEERS/node_modules (default
// ~/.cache/prividium-peers, populated by deploy/dev/install-peers.sh).
// Prefer running contracts/compile.sh, which installs the peers first.
//
// The artifacts are checked in: the Rust load generator and the settlement
// bridge include_str! them, so building needs no Node.js.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { createRequire } = require('module');

function die(msg) {
  console.error('compile.js: ERROR: ' + msg);
  process.exit(1);
}

function loadSolc() {
  const peers = process.env.PRIVIDIUM_PEERS || path.join(os.homedir(), '.cache', 'prividium-peers');
  const req = createRequire(path.join(path.resolve(peers), 'package.json'));
  try {
    return req('solc');
  } catch (e) {
    die(`cannot load solc from ${peers}/node_modules (${e.message}); run deploy/dev/install-peers.sh first`);
  }
}

const srcDir = process.argv[2] ? path.resolve(process.argv[2]) : __dirname;
const outDir = path.join(srcDir, 'out');
const solc = loadSolc();

const files = fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort();
if (files.length === 0) die(`no .sol files in ${srcDir}`);

const input = {
  language: 'Solidity',
  sources: Object.fromEntries(
    files.map((f) => [f, { content: fs.readFileSync(path.join(srcDir, f), 'utf8') }]),
  ),
  settings: {
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
    },
  },
};

function findImports(p) {
  const full = path.resolve(srcDir, p);
  if (!full.startsWith(srcDir + path.sep) || !fs.existsSync(full)) {
    return { error: 'import not found: ' + p };
  }
  return { contents: fs.readFileSync(full, 'utf8') };
}

console.error(`compile.js: solc ${solc.version()} compiling ${files.join(', ')}`);
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

const diags = output.errors || [];
for (const d of diags) {
  if (d.severity !== 'error') console.error(d.formattedMessage || d.message);
}
const errors = diags.filter((d) => d.severity === 'error');
if (errors.length > 0) {
  for (const d of errors) console.error(d.formattedMessage || d.message);
  die(`${errors.length} compiler error(s)`);
}

fs.mkdirSync(outDir, { recursive: true });
const seen = new Map();
let written = 0;
for (const file of Object.keys(output.contracts || {}).sort()) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    const bytecode = c.evm.bytecode.object;
    if (!bytecode) continue; // interfaces / abstract contracts
    if (seen.has(name)) die(`contract name ${name} defined in both ${seen.get(name)} and ${file}`);
    seen.set(name, file);
    const artifact = {
      contractName: name,
      abi: c.abi,
      bytecode: '0x' + bytecode,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    const dest = path.join(outDir, name + '.json');
    fs.writeFileSync(dest, JSON.stringify(artifact, null, 2) + '\n');
    console.error(`compile.js: wrote ${path.relative(process.cwd(), dest)} (${bytecode.length / 2} bytes initcode)`);
    written++;
  }
}
if (written === 0) die('no deployable contracts found');
