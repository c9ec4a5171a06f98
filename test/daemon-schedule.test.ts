import { describe, expect, it } from 'vitest';
import { TICK_SPREAD_MS, tickOffsetMs } from '../src/daemon.js';

describe('tickOffsetMs', () => {
  it('starts one target at the tick, and spreads several evenly inside TICK_SPREAD_MS', () => {
    expect(tickOffsetMs(0, 1)).toBe(0);
    const offsets = Array.from({ length: 20 }, (_, i) => tickOffsetMs(i, 20));
    expect(offsets[0]).toBe(0);
    expect(new Set(offsets).size).toBe(20);
    expect(Math.max(...offsets)).toBeLessThan(TICK_SPREAD_MS);
    // even: consecutive targets TICK_SPREAD_MS / 20 apart (rounded down)
    for (let i = 1; i < 20; i++) expect((offsets[i] as number) - (offsets[i - 1] as number)).toBeGreaterThanOrEqual(Math.floor(TICK_SPREAD_MS / 20) - 1);
  });
});
