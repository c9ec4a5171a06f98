import { describe, expect, it } from 'vitest';
import { quoteIdent, quoteLiteral } from '../../src/db/quote.js';
import { useFixture } from '../support/fixture.js';

const HOSTILE = [
  `it's`,
  `say "hi"`,
  `Mixed Case`,
  `Zoë Ünïcødé 日本`,
  `x"; drop role postgres; --`,
  `back\\slash`,
  `semi;colon`,
  `$1`,
];

const fixture = useFixture('quote');

describe('quoteIdent and quoteLiteral against the real server', () => {
  it('create and find roles with any characters in their names', async () => {
    const f = fixture();
    for (const [i, suffix] of HOSTILE.entries()) {
      const name = f.name(`${i}${suffix}`);
      await f.createRole(name);
      const { rows } = await f.sql('select rolname from pg_roles where rolname = $1', [name]);
      expect(rows[0]?.rolname).toBe(name);
    }
  });

  it('round-trip any text as a literal', async () => {
    const f = fixture();
    for (const text of [...HOSTILE, `'; select 1; --`, `\\'`, `''`, '']) {
      const { rows } = await f.sql(`select ${quoteLiteral(text)} as v`);
      expect(rows[0]?.v).toBe(text);
    }
  });

  it('refuse NUL characters, which PostgreSQL cannot store', () => {
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
    expect(() => quoteLiteral('a\0b')).toThrow(/NUL/);
  });
});
