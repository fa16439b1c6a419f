// Builds the native addon (native/build/Release/tessera_native.node) with
// node-gyp. Run by `npm install` it never fails the install: without the
// addon Tessera runs on its reference backend and says how to get this one.
// `node native/install.mjs --required` (npm run build:native) fails loudly.
// TESSERA_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const required = process.argv.includes('--required');

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package; npm's bundled copy is the usual one
  }
  return candidates.find((path) => path && existsSync(path));
}

/** Node's own headers when they sit beside the binary, so node-gyp needs no download. */
function localNodeDir() {
  if (process.env.npm_config_nodedir) return undefined;
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function finish(ok, detail) {
  if (ok) {
    console.log('tessera: built the native CPU backend (native/build/Release/tessera_native.node)');
    process.exit(0);
  }
  const message = [
    `tessera: could not build the native CPU backend (${detail}).`,
    '  Tessera still works, on its much slower reference backend.',
    '  To get the fast one: install Python 3 and a C++17 compiler (g++ or clang; on macOS the Xcode',
    '  command line tools), then run `npm run build:native` in the tessera package.',
  ].join('\n');
  console.warn(message);
  process.exit(required ? 1 : 0);
}

if (process.env.TESSERA_SKIP_NATIVE === '1' && !required) finish(false, 'TESSERA_SKIP_NATIVE=1');
const nodeGyp = findNodeGyp();
if (!nodeGyp) finish(false, 'node-gyp was not found');
const args = [nodeGyp, 'rebuild', `--directory=${here}`, `-j`, String(Math.max(1, availableParallelism()))];
const nodeDir = localNodeDir();
if (nodeDir) args.push(`--nodedir=${nodeDir}`);
const result = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
const logPath = join(here, 'install.log');
writeFileSync(logPath, log);
if (result.status !== 0) {
  const tail = log.trim().split('\n').filter((line) => /error|ERR!/i.test(line)).slice(0, 8).join('\n    ');
  finish(false, `node-gyp failed; full log in ${logPath}${tail ? `:\n    ${tail}` : ''}`);
}
finish(true);
