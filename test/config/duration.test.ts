import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.js';
import { compileGlobs } from '../../src/config/glob.js';

describe('parseDuration', () => {
  it.each([
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['14d', 14 * 86_400],
    ['2w', 14 * 86_400],
    ['1h30m', 5400],
    ['500ms', 0.5],
  ])('%s is %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['5 minutes', '300', '', 'm5', '5x', '1h 30m', '-5m'])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('refuses non-strings: a bare number has no unit', () => {
    expect(parseDuration(300)).toBeUndefined();
    expect(parseDuration(null)).toBeUndefined();
  });
});

describe('globs', () => {
  it('matches * and ? and treats everything else literally', () => {
    const match = compileGlobs(['app_*', 'etl?', 'a.b', 'x(y)']);
    expect(match('app_web')).toBe(true);
    expect(match('app_')).toBe(true);
    expect(match('etl1')).toBe(true);
    expect(match('etl12')).toBe(false);
    expect(match('a.b')).toBe(true);
    expect(match('axb')).toBe(false);
    expect(match('x(y)')).toBe(true);
    expect(match(null)).toBe(false);
  });

  it('an empty list matches nothing (callers treat it as no filter)', () => {
    expect(compileGlobs([])('anything')).toBe(false);
  });

  it('takes every punctuation character literally', () => {
    const punctuation = `-_.,;:!@#$%^&()[]{}|\\/+='"\``;
    expect(compileGlobs([`a${punctuation}*`])(`a${punctuation}z`)).toBe(true);
    expect(compileGlobs(['app-backup'])('app-backup')).toBe(true);
  });

  it('handles non-ASCII and quotes', () => {
    expect(compileGlobs(['Zoë "*'])('Zoë "the" admin')).toBe(true);
  });
});
