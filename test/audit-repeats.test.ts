/** audit.repeatAfter (issue 19): a run that does not act logs a persisting violation once, on change, then once per period. */
import { describe, expect, it } from 'vitest';
import { AuditRepeats } from '../src/engine/audit-repeats.js';

describe('AuditRepeats', () => {
  const action = (role: string, result = 'planned') => ({ role, result });
  const key = (a: { role: string }) => a.role;
  const signature = (a: { result: string }) => a.result;

  it('logs a violation when it first appears, when what would be done changes, and then once per repeatAfter', () => {
    let now = 0;
    const repeats = new AuditRepeats(3_600_000, () => now);
    const due = (actions: { role: string; result: string }[]) => repeats.due('t', 'p', actions, key, signature).map((a) => a.role);
    expect(due([action('a'), action('b')])).toEqual(['a', 'b']);
    now += 2_000;
    expect(due([action('a'), action('b')])).toEqual([]);
    // What would be done changed for b; c is new.
    expect(due([action('a'), action('b', 'skipped'), action('c')])).toEqual(['b', 'c']);
    now += 3_600_000;
    expect(due([action('a'), action('b', 'skipped'), action('c')])).toEqual(['a', 'b', 'c']);
    // Gone, then back: logged again at once.
    expect(due([action('a')])).toEqual([]);
    expect(due([action('a'), action('b', 'skipped')])).toEqual(['b']);
    // Another policy or target keeps its own memory.
    expect(repeats.due('t', 'q', [action('a')], key, signature).map((a) => a.role)).toEqual(['a']);
  });
});
