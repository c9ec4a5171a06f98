// The one way the benchmark compares a cycle with the bare query it cannot avoid: interleaved, at
// the same cadence (a warm back-to-back loop runs a query 2-3x faster than a caller that runs it
// now and then), medians of `runs` each.
import { readFileSync } from 'node:fs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Medians of `cycle` and `bare` (ms), interleaved `cadenceMs` apart, `runs` each; `beforeCycle`,
 * when given, runs before each cycle, untimed (a change the cycle is to see).
 */
export async function interleave(cycle, bare, runs, cadenceMs, { beforeCycle } = {}) {
  const c = [];
  const b = [];
  for (let i = 0; i < runs; i++) {
    await sleep(cadenceMs);
    let t = performance.now();
    await bare();
    b.push(performance.now() - t);
    await sleep(cadenceMs);
    await beforeCycle?.();
    t = performance.now();
    await cycle();
    c.push(performance.now() - t);
  }
  return { cycleMs: median(c), bareMs: median(b) };
}

/** The process's peak RSS so far (VmHWM), bytes; 0 where /proc is not there. */
function peakRss() {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/**
 * Runs `cycle` 100 times and reads the memory after a full collection (with --expose-gc) and a
 * second of idle, at cycle 10 and cycle 100: growth between them is what stays. Bytes. The idle
 * second is the daemon's between two ticks; V8 gives back the pages a collection emptied on a
 * background thread, so RSS read at the instant the collection returns counted 0-50 MB of them,
 * at random (issue 19). `peak` is the most RSS the process ever held (VmHWM): the first cycle's
 * reading of every role included.
 */
export async function memoryOver100Cycles(cycle) {
  const settle = async () => {
    globalThis.gc?.();
    await sleep(1000);
  };
  let at10 = { rss: 0, heapUsed: 0 };
  for (let i = 1; i <= 100; i++) {
    await cycle();
    if (i === 10) {
      await settle();
      at10 = process.memoryUsage();
    }
  }
  await settle();
  const at100 = process.memoryUsage();
  return { rss10: at10.rss, heap10: at10.heapUsed, rss100: at100.rss, heap100: at100.heapUsed, peak: peakRss() };
}
