/** Secrets never reach a log line: passwords, verifiers and connection-string passwords. */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';

function capture(): { lines: () => string; stream: { write(s: string): void } } {
  let out = '';
  return { lines: () => out, stream: { write: (s: string) => void (out += s) } };
}

describe('the logger', () => {
  it('censors secret keys and connection-string passwords in errors', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    logger.info({ password: 'p1', role: { password: 'p2' }, url: 'postgres://u:p3@h/db', verifier: 'SCRAM-SHA-256$4096:abc' }, 'hello');
    logger.error({ err: new Error('connect to postgres://app:p4@db:5432/x failed; password=p5') }, 'failed');
    logger.child({ component: 'x' }).warn({ connectionString: 'postgresql://a:p6@b/c' }, 'child');
    const text = lines();
    expect(text).not.toMatch(/p[1-6]\b/);
    expect(text).not.toContain('abc');
    expect(text).toContain('postgres://app:***@db:5432/x');
    expect(text.split('\n').filter(Boolean).every((l) => JSON.parse(l) && true)).toBe(true);
  });
});
