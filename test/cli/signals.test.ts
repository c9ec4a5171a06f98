/** The stop signals of `run` and `demo`: first graceful, a later second one forces; npm's echo of one Ctrl-C is not a second. */
import { afterEach, describe, expect, it } from 'vitest';
import { listenForInterrupt, SECOND_SIGNAL_AFTER_MS, type Interrupt } from '../../src/cli/signals.js';
import type { Io } from '../../src/cli/io.js';

function harness() {
  let clock = 1_000;
  let stderr = '';
  const exits: number[] = [];
  const io = { stderr: { write: (t: string) => (stderr += t) } } as unknown as Io;
  const interrupt = listenForInterrupt(io, { exit: (code) => exits.push(code), now: () => clock, forcedNote: 'cleanup left to the supervisor' });
  return {
    interrupt,
    exits,
    stderr: () => stderr,
    advance: (ms: number) => (clock += ms),
  };
}

let current: Interrupt | undefined;
afterEach(() => current?.release());

describe('listenForInterrupt', () => {
  it('resolves on the first signal and exits 1 on a second one a second or more later', async () => {
    const h = harness();
    current = h.interrupt;
    process.emit('SIGTERM', 'SIGTERM');
    expect(await h.interrupt.interrupted).toBe('SIGTERM');
    expect(h.exits).toEqual([]);
    h.advance(SECOND_SIGNAL_AFTER_MS);
    process.emit('SIGINT', 'SIGINT');
    expect(h.exits).toEqual([1]);
    expect(h.stderr()).toBe('pgwarden: second SIGINT: exiting now (cleanup left to the supervisor)\n');
  });

  it('takes a copy of the same Ctrl-C (npm forwards it) within a second as the same interrupt', async () => {
    const h = harness();
    current = h.interrupt;
    process.emit('SIGINT', 'SIGINT');
    h.advance(5);
    process.emit('SIGINT', 'SIGINT');
    expect(await h.interrupt.interrupted).toBe('SIGINT');
    expect(h.exits).toEqual([]);
    expect(h.stderr()).toBe('');
  });

  it('stops listening when released', () => {
    const h = harness();
    const before = process.listenerCount('SIGINT');
    h.interrupt.release();
    expect(process.listenerCount('SIGINT')).toBe(before - 1);
  });
});
