/**
 * Durations in configuration and flags: `30s`, `5m`, `1h`, `14d` (DESIGN.md), also `2w`, `500ms`
 * and compounds such as `1h30m`. A bare number is refused: `300` could mean seconds or minutes.
 */

const UNIT_SECONDS: Readonly<Record<string, number>> = {
  ms: 0.001,
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 604_800,
};

const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;

/** Seconds in a duration string, or undefined when it is not one. */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) return undefined;
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) {
    seconds += Number(amount) * (UNIT_SECONDS[unit as string] ?? Number.NaN);
  }
  return Number.isFinite(seconds) ? seconds : undefined;
}

/** True for a duration string that parses. */
export function isDuration(text: unknown): text is string {
  return parseDuration(text) !== undefined;
}

/**
 * A short human form of a number of seconds, two units at most: `45s`, `5m12s`, `3h7m`, `2d4h`;
 * with `pad`, the second unit on two digits (`12m04s`, for columns that line up).
 */
export function formatSeconds(seconds: number, options: { pad?: boolean } = {}): string {
  const abs = Math.abs(seconds);
  const sign = seconds < 0 ? '-' : '';
  const two = (n: number) => (options.pad ? String(n).padStart(2, '0') : String(n));
  if (abs < 60) return `${sign}${Math.floor(abs)}s`;
  if (abs < 3600) return `${sign}${Math.floor(abs / 60)}m${two(Math.floor(abs % 60))}s`;
  if (abs < 86_400) return `${sign}${Math.floor(abs / 3600)}h${two(Math.floor((abs % 3600) / 60))}m`;
  return `${sign}${Math.floor(abs / 86_400)}d${two(Math.floor((abs % 86_400) / 3600))}h`;
}
