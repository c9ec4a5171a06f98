// The 100,000-role scale of `npm run bench` (issue 19): a throwaway PostgreSQL 17 with 100,000
// login roles (1 % members of pgwarden_disabled, expiries over a year); the daemon's cycle in a
// child process (bench/roles-scale-child.mjs), and `pgwarden roles --json` as a process against
// `psql -c 'select * from pg_roles'` as a process, median of 9 each, alternated, stdout read and dropped.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startServer } from '../scripts/embedded.mjs';
import { inCgroup } from './memory-limit.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs a process to its end: `{ms, out}`. With `discard`, stdout is read and dropped (the listing
 * commands print 10-20 MB: gathering it here would weigh on the measure, and unequally).
 */
function runProcess(command, args, { discard = false, cgroup = null } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const [file, argv] = inCgroup(cgroup, command, args);
    const child = spawn(file, argv, { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      if (!discard) out += c;
    });
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ ms: performance.now() - started, out }) : reject(new Error(`${command} exited ${code}: ${err}`))));
  });
}

/**
 * Measures the 100,000-role scale; `log` prints progress. Resolves with the results' keys. The
 * daemon's cycle, `roles --json` and psql run in `cgroup` (memory-limit.mjs) when there is one.
 */
export async function measureRoleScale(log, { runs, cadenceMs, cgroup = null }) {
  log('100,000 roles: a server of their own…');
  const server = await startServer({ package: 'pg17', postgresFlags: ['-c', 'shared_buffers=256MB'] });
  try {
    const admin = new pg.Client(server.url);
    admin.on('error', () => undefined);
    await admin.connect();
    const started = performance.now();
    await admin.query('create role pgwarden_disabled nologin');
    // 2,000 per transaction: each CREATE ROLE holds a lock until commit (max_locks_per_transaction).
    for (let from = 1; from <= 100000; from += 2000) {
      await admin.query(`do $$ begin for i in ${from}..${from + 1999} loop
        execute format('create role %I login valid until %L', 'scale_r_' || i, now() + (i % 365) * interval '1 day');
      end loop; end $$`);
    }
    await admin.query(`do $$ begin for i in 1..1000 loop execute format('grant pgwarden_disabled to %I', 'scale_r_' || (i * 100)); end loop; end $$`);
    await admin.end();
    log(`  created in ${Math.round((performance.now() - started) / 1000)} s; the daemon's cycle in a child process…`);
    const child = await runProcess(process.execPath, ['--expose-gc', `${ROOT}bench/roles-scale-child.mjs`, server.url, String(runs), String(cadenceMs)], { cgroup });
    const figures = JSON.parse(child.out.trim().split('\n').at(-1));
    log('  roles --json as a process vs psql as a process…');
    const command = [];
    const psql = [];
    for (let i = 0; i < 9; i++) {
      command.push((await runProcess(process.execPath, [`${ROOT}dist/main.js`, '--database-url', server.url, '--json', 'roles'], { discard: true, cgroup })).ms);
      psql.push((await runProcess('psql', [server.url, '-Atc', 'select * from pg_roles'], { discard: true, cgroup })).ms);
    }
    return { ...figures, rolesCommand100kMs: median(command), rolesPsql100kMs: median(psql) };
  } finally {
    await server.stop();
  }
}
