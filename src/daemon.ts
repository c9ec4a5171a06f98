/**
 * The daemon (`pgwarden run`): a node-cron task per policy (seconds field allowed, never
 * overlapping itself), one shared snapshot per target per tick, /metrics and health endpoints,
 * and a graceful stop: on SIGTERM/SIGINT stop scheduling, let running actions finish up to
 * shutdownTimeout, close the server and the pools, exit 0; a second signal exits 1 at once.
 */
import type { Logger as CronLogger, ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { Policy } from './config/policies.js';
import { Engine } from './engine.js';
import { Releasers } from './releasers.js';
import { LeaderLock } from './leader.js';
import { coerceError } from './errors.js';
import { nodeCron } from './lazy.js';
import { logCapabilities } from './doctor/examine.js';
import type { TargetDb } from './db/pool.js';
import { Metrics } from './metrics/registry.js';
import { startHttpServer, type HttpServer } from './server/http.js';

export interface DaemonOptions {
  readonly config: Config;
  readonly targets: readonly TargetDb[];
  readonly logger: Logger;
  /** Resolves when the daemon should stop (the CLI wires it to signals). */
  readonly stopSignal: Promise<string>;
}

export interface DaemonHandle {
  readonly http: HttpServer;
  readonly engine: Engine;
  /** Resolves when the daemon has stopped: `abandoned` when running actions outlived shutdownTimeout. */
  readonly done: Promise<{ abandoned: boolean }>;
}

/**
 * The span over which the targets' ticks are spread, ms: a quarter of the shortest schedule (1 s),
 * so that the last target's runs still have 750 ms of it before its next tick (noOverlap skips a
 * tick that comes while the run goes on).
 */
export const TICK_SPREAD_MS = 250;

/**
 * When target `index` of `count` runs its policies after each tick, ms: the targets spread evenly
 * over TICK_SPREAD_MS, so that 20 servers are not all read and judged at the same instant (every
 * run queued behind the 19 others: a mean run of 107 ms at 20 targets against 9 ms at one,
 * issue 19). All the policies of one target still start together and share its snapshot.
 */
export function tickOffsetMs(index: number, count: number): number {
  return count <= 1 ? 0 : Math.floor((index * TICK_SPREAD_MS) / count);
}

/**
 * node-cron's messages as pgwarden's log lines (its own logger writes colored text to the console,
 * not JSON). What it warns of (an overlap, a missed tick) the daemon logs itself from the task's
 * events, with target and policy: debug here.
 */
function cronLogger(log: Logger): CronLogger {
  return {
    info: (message) => log.debug(message),
    warn: (message) => log.debug(message),
    error: (message, err) => log.error({ err: coerceError(err ?? message) }, typeof message === 'string' ? message : 'scheduler error'),
    debug: (message) => log.debug(String(message)),
  };
}

/** Starts the daemon; `done` resolves after a graceful stop. */
export async function startDaemon(options: DaemonOptions): Promise<DaemonHandle> {
  const { config, logger } = options;
  const log = logger.child({ component: 'daemon' });
  const metrics = new Metrics(config.settings.metrics);
  const engine = new Engine({ config, targets: options.targets, metrics, logger });
  const policies = config.policies;
  metrics.initPolicies(
    options.targets.map((t) => t.name),
    policies,
    (p) => engine.modeOf(p),
  );
  // One leader lock per target: only the replica that holds it enforces there.
  const locks = options.targets.map(
    (db) => [db, new LeaderLock(db, config.settings.leader.lockKey, log.child({ target: db.name }), (leader) => engine.setLeader(db.name, leader))] as const,
  );
  for (const [db] of locks) engine.setLeader(db.name, false);
  const pollTimeoutMs = Math.max(config.leaderPollMs, 5000);
  // Each target polls on its own: a hung target's poll never delays another's.
  const inFlight = new Set<LeaderLock>();
  const pollLeader = (lock: LeaderLock) => {
    if (inFlight.has(lock)) return;
    inFlight.add(lock);
    void lock.poll(pollTimeoutMs).finally(() => inFlight.delete(lock));
  };

  // Each thing started is registered as it starts: a stop releases them newest first.
  const releasers = new Releasers();
  const http = await startHttpServer({
    host: config.settings.server.host,
    port: config.settings.server.port,
    metrics,
    states: engine.states,
    logger: log,
  });
  releasers.add('http server', () => http.close());
  // All at once: one target's vanished peer must not keep the other targets' locks held.
  releasers.add('leader locks', () => Promise.all(locks.map(([, lock]) => lock.close())));
  log.info({ host: http.host, port: http.port, policies: policies.map((p) => p.name), mode: config.mode }, 'pgwarden started');
  // What pgwarden's role lacks on each target (as `pgwarden doctor` says), logged once; not awaited.
  for (const db of options.targets) void logCapabilities(db, config, logger);

  // A first snapshot of every target, so /readyz and pgwarden_up speak before the first tick —
  // not awaited: a target that hangs must not hold up the schedule of the others.
  for (const db of options.targets) void engine.snapshot(db).catch(() => undefined);
  // The directories are searched now and then every `refresh`, off the policy ticks; /readyz does not wait for them.
  engine.directories.start();
  releasers.add('directory searches', () => engine.directories.stop());
  for (const [, lock] of locks) pollLeader(lock);
  const leaderTimer = setInterval(() => {
    for (const [, lock] of locks) pollLeader(lock);
  }, config.leaderPollMs);
  releasers.add('leader polls', () => clearInterval(leaderTimer));

  const running = new Set<Promise<unknown>>();
  let abandoned = false;
  releasers.add('running actions', async () => {
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs).unref());
    const finished = await Promise.race([Promise.allSettled([...running]).then(() => 'finished' as const), timeout]);
    abandoned = finished === 'timeout';
    if (abandoned) log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'running actions did not finish in time');
  });
  // Set by the stop (below): a run still waiting for its offset then does not start.
  let stopping = false;
  const offsets = new Map(options.targets.map((db, i) => [db.name, tickOffsetMs(i, options.targets.length)]));
  const tick = async (policy: Policy, db: TargetDb, date: Date) => {
    const tickSecond = Math.floor(date.getTime() / 1000);
    const offset = offsets.get(db.name) ?? 0;
    if (offset > 0) await new Promise((resolve) => setTimeout(resolve, offset));
    if (stopping) return;
    await engine.runPolicy(db, policy, engine.snapshotsForTick(db, tickSecond), engine.modeOf(policy));
  };
  // One task per policy and target: a slow or dead target never delays (or, through noOverlap,
  // skips) the runs on the others.
  const tasks: ScheduledTask[] = policies.flatMap((policy) =>
    engine.targetsOf(policy).map((db) => {
      const where = { policy: policy.name, target: db.name };
      // Ticks skipped while the run goes on (a hung target): logged at the first and when the run
      // ends, not once a second per policy for as long as the target hangs.
      let skipped = 0;
      const task = nodeCron().schedule(
        policy.schedule,
        (context) => {
          const run = tick(policy, db, context.date)
            .catch((err: unknown) => log.error({ err: coerceError(err), ...where }, 'tick failed'))
            .finally(() => {
              if (skipped > 0) log.warn({ ...where, skipped }, 'run ended: ticks were skipped while it went on');
              skipped = 0;
            });
          running.add(run);
          return run.finally(() => running.delete(run));
        },
        { name: `pgwarden:${policy.name}:${db.name}`, noOverlap: true, logger: cronLogger(log.child(where)) },
      );
      task.on('execution:overlap', () => {
        if (skipped === 0) log.warn(where, 'previous run still going: ticks skipped until it ends');
        skipped += 1;
      });
      // A pause of the whole process (a long collection) misses a tick of every task at once: at
      // most one line a minute per task.
      let missedLogged = 0;
      task.on('execution:missed', (context) => {
        if (Date.now() - missedLogged < 60_000) return;
        missedLogged = Date.now();
        log.warn({ ...where, at: context.date.toISOString() }, 'tick missed: the process was busy');
      });
      return task;
    }),
  );

  for (const task of tasks) releasers.add(`schedule of ${task.name}`, () => task.destroy());

  const done = options.stopSignal.then(async (signal) => {
    stopping = true;
    log.info({ signal }, 'stopping: no new runs; waiting for running actions');
    await releasers.releaseAll((name, err) => log.error({ err: coerceError(err), step: name }, 'stop step failed'));
    log.info('stopped');
    return { abandoned };
  });
  return { http, engine, done };
}
