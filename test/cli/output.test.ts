/** `--json` printing: one JSON document whatever its size, the same values JSON.stringify gives. */
import { describe, expect, it } from 'vitest';
import { jsonTime, printJson } from '../../src/cli/output.js';

function printed(value: unknown): { text: string; writes: string[] } {
  const writes: string[] = [];
  printJson({ write: (t: string) => writes.push(t) }, value);
  return { text: writes.join(''), writes };
}

describe('printJson', () => {
  it('writes an array one compact element per line, with the values JSON.stringify gives', () => {
    const value = [{ role: 'a "quoted"\nname', validUntil: new Date('2027-03-01T00:00:00Z'), memberOf: ['g'] }, undefined, null, 3, 'x'];
    const { text } = printed(value);
    expect(text).toBe(
      ['[', '{"role":"a \\"quoted\\"\\nname","validUntil":"2027-03-01T00:00:00.000Z","memberOf":["g"]},', 'null,', 'null,', '3,', '"x"', ']', ''].join('\n'),
    );
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
  });

  it('writes an empty array and anything else as before', () => {
    expect(printed([]).text).toBe('[]\n');
    const object = { mode: 'dry-run', violations: [], actions: [{ result: 'planned' }] };
    expect(printed(object).text).toBe(`${JSON.stringify(object, null, 2)}\n`);
  });

  it('writes 100,000 rows in chunks, never the whole document at once, as one valid document', () => {
    const rows = Array.from({ length: 100_000 }, (_, i) => ({ target: 'default', role: `r_${i}`, sessions: i % 3, disabled: null }));
    const { text, writes } = printed(rows);
    expect(writes.length).toBeGreaterThan(50);
    expect(Math.max(...writes.map((w) => w.length))).toBeLessThan(70_000);
    expect(JSON.parse(text)).toEqual(rows);
  });
});

describe('jsonTime', () => {
  it('is what JSON.stringify writes for a Date, or null', () => {
    for (const date of [new Date('2026-12-02T02:22:00.757Z'), new Date(0), new Date(-1), new Date(8.64e15), new Date(Number.NaN)]) {
      expect(JSON.stringify({ t: jsonTime(date) })).toBe(JSON.stringify({ t: date }));
    }
    expect(jsonTime(null)).toBeNull();
  });
});
