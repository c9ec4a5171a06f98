/**
 * The daemon (`pgwarden run`): a node-cron task per policy (seconds field allowed, never
 * overlapping itself), one shared snapshot per target per tick, /metrics and health endpoints,
 * and a graceful stop: on SIGTERM/SIGINT stop scheduling, let running actions finish up to
 * shutdownTimeout, close the server and the pools, exit 0; a second signal exits 1 at once.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { Policy } from './config/policies.js';
import { Engine } from './engine.js';
import { coerceError } from './errors.js';
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
  /** Resolves when the daemon has stopped. */
  readonly done: Promise<void>;
}

/** Starts the daemon; `done` resolves after a graceful stop. */
export async function startDaemon(options: DaemonOptions): Promise<DaemonHandle> {
  const { config, logger } = options;
  const log = logger.child({ component: 'daemon' });
  const metrics = new Metrics(config.settings.metrics);
  const engine = new Engine({ config, targets: options.targets, metrics, logger });
  const policies = config.policies.filter((p) => {
    if (engine.supported(p)) return true;
    log.warn({ policy: p.name, kind: p.kind }, `policy kind ${p.kind} is not supported by this version yet; the policy is not scheduled`);
    return false;
  });
  metrics.initPolicies(
    options.targets.map((t) => t.name),
    policies,
    (p) => engine.modeOf(p),
  );
  for (const t of options.targets) metrics.leader.set({ target: t.name }, 1);

  const http = await startHttpServer({
    host: config.settings.server.host,
    port: config.settings.server.port,
    metrics,
    states: engine.states,
    logger: log,
  });
  log.info({ host: http.host, port: http.port, policies: policies.map((p) => p.name), mode: config.mode }, 'pgwarden started');

  // A first snapshot of every target, so /readyz and pgwarden_up speak before the first tick.
  await Promise.allSettled(options.targets.map((db) => engine.snapshot(db)));

  const running = new Set<Promise<unknown>>();
  const tick = async (policy: Policy, date: Date) => {
    const tickSecond = Math.floor(date.getTime() / 1000);
    const mode = engine.modeOf(policy);
    await Promise.all(engine.targetsOf(policy).map((db) => engine.runPolicy(db, policy, engine.snapshotsForTick(db, tickSecond), mode)));
  };
  const tasks: ScheduledTask[] = policies.map((policy) => {
    const task = cron.schedule(
      policy.schedule,
      (context) => {
        const run = tick(policy, context.date).catch((err: unknown) => log.error({ err: coerceError(err), policy: policy.name }, 'tick failed'));
        running.add(run);
        return run.finally(() => running.delete(run));
      },
      { name: `pgwarden:${policy.name}`, noOverlap: true },
    );
    task.on('execution:overlap', () => log.warn({ policy: policy.name }, 'previous run still going: tick skipped'));
    return task;
  });

  const done = options.stopSignal.then(async (signal) => {
    log.info({ signal }, 'stopping: no new runs; waiting for running actions');
    await Promise.allSettled(tasks.map(async (t) => t.destroy()));
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs).unref());
    const finished = await Promise.race([Promise.allSettled([...running]).then(() => 'finished' as const), timeout]);
    if (finished === 'timeout') log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'running actions did not finish in time');
    await http.close();
    log.info('stopped');
  });
  return { http, engine, done };
}
