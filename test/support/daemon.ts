/**
 * The daemon in-process (src/daemon.ts, as `pgwarden run` starts it) on a free port, with its
 * log captured: faster than a child process, and the log lines can be read as objects.
 */
import { loadConfig } from '../../src/config/load.js';
import { startDaemon, type DaemonHandle } from '../../src/daemon.js';
import { TargetDb } from '../../src/db/pool.js';
import { createLogger } from '../../src/log.js';
import { isolatedEnv } from './cli.js';
import { freePort } from './net.js';

export interface TestDaemon {
  readonly handle: DaemonHandle;
  readonly base: string;
  /** The text of /metrics. */
  metrics(): Promise<string>;
  /** /readyz: status and body. */
  readyz(): Promise<{ status: number; body: { targets: Record<string, { up: boolean; lastError: string | null }> } }>;
  /** The log lines so far, parsed. */
  log(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Starts the daemon on `configFile` (its `server` is replaced by a free port on loopback) against `url`. */
export async function startTestDaemon(configFile: string, url: string, env: NodeJS.ProcessEnv = {}): Promise<TestDaemon> {
  const port = await freePort();
  const config = loadConfig({ configFile, databaseUrl: url }, { ...isolatedEnv(env), PGWARDEN_SERVER_PORT: String(port), PGWARDEN_SERVER_HOST: '127.0.0.1' });
  let text = '';
  const logger = createLogger('info', { write: (line: string) => (text += line) });
  const options = { connectTimeoutMs: config.connectTimeoutMs, statementTimeoutMs: config.statementTimeoutMs, poolSize: config.settings.database.poolSize };
  const targets = config.targets.map((t) => new TargetDb(t, options, logger));
  let stop: (signal: string) => void = () => undefined;
  const stopSignal = new Promise<string>((resolve) => (stop = resolve));
  const handle = await startDaemon({ config, targets, logger, stopSignal });
  const base = `http://127.0.0.1:${handle.http.port}`;
  return {
    handle,
    base,
    metrics: async () => (await fetch(`${base}/metrics`)).text(),
    readyz: async () => {
      const res = await fetch(`${base}/readyz`);
      return { status: res.status, body: (await res.json()) as { targets: Record<string, { up: boolean; lastError: string | null }> } };
    },
    log: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      stop('SIGTERM');
      await handle.done;
      await Promise.allSettled(targets.map((t) => t.end()));
    },
  };
}
