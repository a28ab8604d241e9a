#!/usr/bin/env node
// A `solc` executable for ape-solidity / py-solc-x, served by the npm WASM build of solc.
// py-solc-x only calls `--version` and `--standard-json` (input on stdin, JSON on stdout);
// no native solc can be downloaded here, so this stands in for it with the same compiler.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, '..', 'node_modules', 'solc'));

const args = process.argv.slice(2);
if (args.includes('--version')) {
  // py-solc-x parses "Version: X.Y.Z+commit..." from this text.
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes('--standard-json')) {
  const allowed = [];
  for (let i = 0; i < args.length; i++) {
    if ((args[i] === '--allow-paths' || args[i] === '--base-path') && args[i + 1]) {
      allowed.push(...args[i + 1].split(','));
    }
  }
  const input = fs.readFileSync(0, 'utf8');
  const findImports = (importPath) => {
    for (const base of ['', ...allowed]) {
      const candidate = path.resolve(base, importPath);
      if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
    }
    return { error: `File not found: ${importPath}` };
  };
  const output = solc.compile(input, { import: findImports });
  // NOTE: no process.exit() here: it would cut a large stdout at 64 KiB.
  process.stdout.write(output);
} else {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exitCode = 2;
}
