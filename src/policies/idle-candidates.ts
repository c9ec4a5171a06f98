/**
 * What the two connection-limit kinds (pressure on the whole server, a quota per group) share: the idle sessions they may end, longest
 * idle first, and their keys `states` and `minIdle`. Both never end an active session, nor one idle
 * for less than `minIdle`; both re-check in the killing statement that the session is still that
 * backend, still idle that long, and its group still over its limit (types.ts `overLimit`).
 */
import type { ItemReader } from '../config/reader.js';
import { ConfigError } from '../errors.js';
import type { Match } from '../config/reader.js';
import type { Session, Snapshot } from '../db/snapshot.js';
import { matches } from './match.js';
import type { SessionSources } from './kind.js';

/** The idle states a limit policy may end sessions in (`states`); never `active`. */
export const IDLE_STATES = ['idle', 'idle in transaction', 'idle in transaction (aborted)'] as const;
export type IdleState = (typeof IDLE_STATES)[number];

/** Reads `states` (default `[idle]`) and `minIdle` (default 30s). Throws ConfigError naming the key. */
export function readIdleKeys(item: ItemReader): { states: IdleState[]; minIdleSeconds: number } {
  const raw = item.raw('states');
  let states: IdleState[] = ['idle'];
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw) || raw.length === 0) item.fail('states', `must be a non-empty list of ${IDLE_STATES.join(', ')}`);
    raw.forEach((state, i) => {
      if (!IDLE_STATES.includes(state as IdleState)) {
        throw new ConfigError(`${item.key('states')}[${i}]: ${JSON.stringify(state)} is not one of ${IDLE_STATES.join(', ')} (an active session is never ended)`);
      }
    });
    states = [...new Set(raw as IdleState[])];
  }
  return { states, minIdleSeconds: item.seconds('minIdle', '30s') };
}

/**
 * The sessions a limit policy may end, longest idle first: client backends in one of `states`
 * for longer than `minIdleSeconds` (by the server's clock), in the policy's `match`, that pgwarden
 * may act on (`sources.candidate`: not its own, not exempt, not reserved).
 */
export function idleCandidates(
  snapshot: Snapshot,
  policy: { readonly match: Match; readonly states: readonly string[]; readonly minIdleSeconds: number },
  sources: SessionSources,
): Session[] {
  return snapshot.sessions
    .filter(
      (s) =>
        s.backendType === 'client backend' &&
        s.state !== null &&
        policy.states.includes(s.state) &&
        s.stateSeconds !== null &&
        s.stateSeconds > policy.minIdleSeconds &&
        matches(policy.match, s) &&
        sources.candidate(s),
    )
    .sort((a, b) => (b.stateSeconds ?? 0) - (a.stateSeconds ?? 0) || a.pid - b.pid);
}

/**
 * Why a limit kind decides nothing on this snapshot, or undefined: backends hidden from pgwarden's
 * role (no pg_read_all_stats) may be workers, not clients — counted as clients they would make a
 * server look fuller than it is, and a policy that ends sessions must never over-count; and a
 * server whose slots could not be read.
 */
export function cannotCount(snapshot: Snapshot): string | undefined {
  if (snapshot.slots.usable <= 0) return 'the usable connection slots could not be read';
  if (snapshot.sessions.some((s) => s.hidden)) return "some backends are hidden from pgwarden's role (no pg_read_all_stats): they cannot be told from workers";
  return undefined;
}

/** A limit as configured: a share of the usable slots (`90%`) or a number of client backends (`85`). */
export type SlotLimit = { readonly percent: number } | { readonly count: number };

/** Reads a limit key: `"90%"` (0–100, of the usable slots) or a whole number. Throws ConfigError naming the key. */
export function readSlotLimit(item: ItemReader, name: string): SlotLimit {
  const value = item.raw(name);
  if (value === undefined || value === null) item.fail(name, 'is required: a share of the usable slots ("90%") or a number of client backends (85)');
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return { count: value };
  const percent = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*%$/.exec(value.trim()) : null;
  if (percent && Number(percent[1]) > 0 && Number(percent[1]) <= 100) return { percent: Number(percent[1]) };
  return item.fail(name, `${JSON.stringify(value)} is neither a share of the usable slots ("90%", above 0 and at most 100) nor a whole number of client backends (at least 1)`);
}

/** The limit in client backends for a server with `usable` slots (a share is rounded down). */
export function slotCount(limit: SlotLimit, usable: number): number {
  return 'count' in limit ? limit.count : Math.floor((limit.percent * usable) / 100);
}

/** The limit as written, for reasons and messages. */
export function slotText(limit: SlotLimit): string {
  return 'count' in limit ? String(limit.count) : `${limit.percent}%`;
}
