// Starts a throwaway PostgreSQL through the supervisor child (scripts/embedded-server.mjs)
// from plain JavaScript: used by the version matrix and the benchmark.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SUPERVISOR = fileURLToPath(new URL('./embedded-server.mjs', import.meta.url));

/** Resolves with `{ url, port, stop() }` once the server accepts connections. */
export function startServer(options) {
  const child = spawn(process.execPath, [SUPERVISOR, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('exit', (code) => reject(new Error(`${options.package}: supervisor exited with ${code} before the server was ready`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const line = out.split('\n').find((l) => l.startsWith('READY '));
      if (!line) return;
      child.removeAllListeners('exit');
      const info = JSON.parse(line.slice('READY '.length));
      resolve({
        ...info,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.on('exit', done);
            child.stdin.end();
          }),
      });
    });
  });
}
