#!/usr/bin/env node
// npm run demo [-- --duration 30s]: builds dist/ when a source is newer than its output, then
// runs `pgwarden demo` in this same process (so Ctrl-C reaches one process, not a chain).
// Only when stale: `npm ci` (prepare) and `npm test` (pretest) have built it already, and
// rebuilding rewrites every file of dist/ under the feet of the tests running beside the demo's.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');

/** True when some src/**.ts has no dist/**.js, or one newer than it (tsconfig changes count too). */
function stale() {
  const config = Math.max(...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(root, f)).mtimeMs));
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return walk(path);
      if (!entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) return false;
      const output = join(dist, relative(src, path)).replace(/\.ts$/, '.js');
      if (!existsSync(output)) return true;
      const built = statSync(output).mtimeMs;
      return statSync(path).mtimeMs > built || config > built;
    });
  return walk(src);
}

if (stale()) {
  try {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  } catch {
    // tsc has printed why.
    process.exit(1);
  }
}
const main = join(dist, 'main.js');
process.argv = [process.argv[0], main, 'demo', ...process.argv.slice(2)];
await import(pathToFileURL(main).href);
