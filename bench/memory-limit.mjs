// The chart's memory limit, applied to the daemon processes the benchmark measures at scale, as a
// pod applies it: a memory cgroup whose limit Node reads at start-up to size its heap. On this
// 24 GiB machine with no limit Node gives the young generation two 16 MiB semi-spaces, which a
// tick at 100,000 roles fills; under the chart's 256 MiB or 512 MiB it gives them under 1 MiB
// (Node's `--max-semi-space-size`: "the default value depends on the memory limit"). Measured
// without the limit, the figures were those of a process no pod runs (issue 19).
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const UNITS = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 };

/** The chart's default memory limit (helm/pgwarden/values.yaml resources.limits.memory), bytes. */
export function chartMemoryLimitBytes() {
  const values = parse(readFileSync(`${ROOT}helm/pgwarden/values.yaml`, 'utf8'));
  const text = String(values.resources?.limits?.memory ?? '');
  const m = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(text);
  if (!m) throw new Error(`helm/pgwarden/values.yaml resources.limits.memory: ${JSON.stringify(text)} is not a quantity this bench reads`);
  return Number(m[1]) * (m[2] ? UNITS[m[2]] : 1);
}

/**
 * A memory cgroup limited to `bytes` (cgroup v2 where the root offers the memory controller,
 * else v1), or null where none can be made (not root, no cgroup filesystem): the caller then
 * measures without the limit and says so. `wrap(command, args)` gives the spawn arguments that
 * run the command inside it (a shell that moves itself in, then execs: same pid); `close()`
 * removes it once its processes are gone.
 */
export function memoryCgroup(bytes) {
  const name = `pgwarden-bench-${process.pid}`;
  const candidates = [
    // v2: a child may have a memory limit only if its parent hands the controller down
    { dir: `/sys/fs/cgroup/${name}`, limitFile: 'memory.max', ready: () => readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').split(/\s+/).includes('memory') },
    { dir: `/sys/fs/cgroup/memory/${name}`, limitFile: 'memory.limit_in_bytes', ready: () => true },
  ];
  for (const c of candidates) {
    try {
      if (!c.ready()) continue;
      mkdirSync(c.dir);
    } catch {
      continue;
    }
    try {
      writeFileSync(`${c.dir}/${c.limitFile}`, String(bytes));
    } catch {
      rmdirSync(c.dir);
      continue;
    }
    const procs = `${c.dir}/cgroup.procs`;
    return {
      path: c.dir,
      wrap: (command, args) => ['sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, command, ...args]],
      close: () => {
        try {
          rmdirSync(c.dir);
        } catch {
          // a process still in it: left for the system (it is empty once that process ends)
        }
      },
    };
  }
  return null;
}

/** The spawn arguments of `command args` inside `cgroup` (memoryCgroup), or as they are when it is null. */
export function inCgroup(cgroup, command, args) {
  return cgroup ? cgroup.wrap(command, args) : [command, args];
}
