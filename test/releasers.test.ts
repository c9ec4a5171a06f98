import { describe, expect, it } from 'vitest';
import { Releasers } from '../src/releasers.js';

describe('Releasers', () => {
  it('releases newest first, runs every step after one throws, and throws the first error', async () => {
    const releasers = new Releasers();
    const ran: string[] = [];
    const failed: string[] = [];
    releasers.add('server', () => {
      ran.push('server');
    });
    releasers.add('pool', async () => {
      ran.push('pool');
      await Promise.resolve();
      throw new Error('pool would not close');
    });
    releasers.add('lock', () => {
      ran.push('lock');
      throw new Error('lock would not close');
    });
    releasers.add('schedule', async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      ran.push('schedule');
    });
    await expect(releasers.releaseAll((name) => failed.push(name))).rejects.toThrow('lock would not close');
    expect(ran).toEqual(['schedule', 'lock', 'pool', 'server']);
    expect(failed).toEqual(['lock', 'pool']);
    // Each releaser runs once: a second stop has nothing left to do.
    await releasers.releaseAll();
    expect(ran).toHaveLength(4);
  });
});
