/**
 * Printing: `--json` writes the DESIGN.md shapes on stdout; otherwise an aligned text table.
 */
import { formatSeconds } from '../config/duration.js';
import type { TextSink } from './io.js';

/** Characters gathered before a write: few writes, and never the whole document in one string. */
const CHUNK_CHARS = 1 << 16;

/**
 * Writes `text` and, when the sink says its buffer is full, waits until it drains. Standard output
 * into a pipe is asynchronous in Node: written without waiting, 100,000 roles (17 MB) were all
 * queued in memory before the reader had taken the first 64 KiB, and collecting them doubled the
 * CPU time of `roles --json | …` (0.59 s against 0.38 s, issue 19).
 */
export async function writeText(out: TextSink, text: string): Promise<void> {
  if (out.write(text) === false && out.once && out.destroyed !== true) {
    const once = out.once.bind(out);
    const off = out.off?.bind(out);
    // A stream that closes or fails instead never drains: go on (its error is the stream's
    // listeners' to report, main.ts), rather than wait for ever.
    await new Promise<void>((resolve) => {
      const done = (): void => {
        for (const event of ['drain', 'close', 'error'] as const) off?.(event, done);
        resolve();
      };
      for (const event of ['drain', 'close', 'error'] as const) once(event, done);
    });
  }
}

/**
 * Writes `value` as one JSON document (Dates become ISO-8601 UTC strings). An array (the listings:
 * `roles`, `sessions`, `owned`) is written as printJsonArray writes it; anything else is
 * pretty-printed.
 */
export async function printJson(out: TextSink, value: unknown): Promise<void> {
  if (!Array.isArray(value)) {
    await writeText(out, `${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  // 'null': what JSON.stringify does to an array element that has no JSON form (undefined, a function).
  await printJsonArray(out, value as unknown[], (item) => JSON.stringify(item) ?? 'null');
}

/**
 * Writes `rows` as one JSON array, one compact element per line between `[` and `]`, a chunk at a
 * time: 100,000 roles pretty-printed whole were 23 MB of text held at once, and 0.2 s or more
 * (issue 19). `element` writes one row and must give what JSON.stringify gives: a command may pass
 * a writer of its own rows, faster than JSON.stringify's walk of each object (roles.ts roleJsonLine).
 */
export async function printJsonArray<T>(out: TextSink, rows: readonly T[], element: (row: T) => string): Promise<void> {
  if (rows.length === 0) {
    await writeText(out, '[]\n');
    return;
  }
  let chunk = '[\n';
  const last = rows.length - 1;
  for (let i = 0; i <= last; i++) {
    chunk += element(rows[i] as T) + (i < last ? ',\n' : '\n]\n');
    if (chunk.length >= CHUNK_CHARS) {
      await writeText(out, chunk);
      chunk = '';
    }
  }
  if (chunk !== '') await writeText(out, chunk);
}

/**
 * A time as `--json` writes it (Date's toJSON: ISO-8601 UTC, null when invalid), for rows made by
 * the thousand: JSON.stringify calling each Date's toJSON itself cost about as much as all the
 * rest of a 100,000-role document, and toISOString itself still 125 ms of it (issue 19).
 */
export function jsonTime(date: Date | null): string | null {
  if (date === null) return null;
  const ms = date.getTime();
  return Number.isNaN(ms) ? null : isoTime(ms);
}

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** Date parts (`2027-03-01T`) by day since the epoch: expiries fall on a few hundred days. */
const datePrefixes = new Map<number, string>();
const DATE_PREFIXES_MAX = 4096;

/**
 * Exactly what `new Date(ms).toISOString()` gives for any valid time (±8.64e15 ms; years outside
 * 0–9999 as ±YYYYYY), at a fraction of its cost: the date part made once per day and kept, the
 * time of day by arithmetic (test/cli/output.test.ts compares the two).
 */
export function isoTime(ms: number): string {
  const days = Math.floor(ms / DAY_MS);
  let prefix = datePrefixes.get(days);
  if (prefix === undefined) {
    if (datePrefixes.size >= DATE_PREFIXES_MAX) datePrefixes.clear();
    prefix = datePrefix(days);
    datePrefixes.set(days, prefix);
  }
  let rest = ms - days * DAY_MS;
  const milliseconds = rest % 1000;
  rest = (rest - milliseconds) / 1000;
  const seconds = rest % 60;
  rest = (rest - seconds) / 60;
  const minutes = rest % 60;
  const hours = (rest - minutes) / 60;
  // join makes one flat string; `+` (or a template) makes a tree of eight, 260 bytes instead of 48
  // that live as long as the row: 100,000 of them were most of what the young GC copied.
  return [prefix, TWO_DIGITS[hours], ':', TWO_DIGITS[minutes], ':', TWO_DIGITS[seconds], '.', THREE_DIGITS[milliseconds], 'Z'].join('');
}

/**
 * `YYYY-MM-DDT` of a day since 1970-01-01 in the proleptic Gregorian calendar, as toISOString
 * writes it. Howard Hinnant's civil_from_days (http://howardhinnant.github.io/date_algorithms.html).
 */
function datePrefix(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const yearText = year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : `${year < 0 ? '-' : '+'}${String(Math.abs(year)).padStart(6, '0')}`;
  return `${yearText}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T`;
}

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string | number | null | undefined;
  /** Right-align (numbers). */
  readonly right?: boolean;
  /** Cut longer cells to this many characters. */
  readonly max?: number;
}

function cell(value: string | number | null | undefined, max: number | undefined): string {
  const text = value === null || value === undefined ? '' : String(value).replace(/\s+/g, ' ');
  return max !== undefined && text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * An aligned table with a header row; `empty` is printed instead when there are no rows. Written a
 * chunk of lines at a time, waiting for the sink to drain (writeText): not a write per row.
 */
export async function printTable<T>(out: TextSink, columns: readonly Column<T>[], rows: readonly T[], empty: string): Promise<void> {
  if (rows.length === 0) {
    await writeText(out, `${empty}\n`);
    return;
  }
  const cells = rows.map((row) => columns.map((c) => cell(c.value(row), c.max)));
  // A loop, not Math.max(...cells): one argument per row overflows the stack from about 125,000 rows.
  const widths = columns.map((c) => c.header.length);
  for (const r of cells) r.forEach((v, i) => (widths[i] = Math.max(widths[i] as number, v.length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (columns[i]?.right ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  let chunk = `${line(columns.map((c) => c.header))}\n`;
  for (const r of cells) {
    chunk += `${line(r)}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      await writeText(out, chunk);
      chunk = '';
    }
  }
  if (chunk !== '') await writeText(out, chunk);
}

/** Seconds as a short age (`45s`, `12m03s`, `3h07m`, `2d04h`), blank when unknown. */
export function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '';
  return formatSeconds(Math.max(0, Math.floor(seconds)), { pad: true });
}

/** A blocker as printed (DESIGN.md `blocker`): what stops a command before its first change. */
export interface PrintedBlocker {
  readonly kind: string;
  readonly database?: string;
  readonly detail: string;
  readonly fix: string | null;
}

/** Prints why `command ROLE` refused: one block per blocker, with the statement that removes it. */
export function printBlockers(out: TextSink, heading: string, blockers: readonly PrintedBlocker[]): void {
  out.write(`${heading}: refused, nothing was changed — ${blockers.length} blocker(s) must be removed first:\n`);
  for (const b of blockers) {
    out.write(`- ${b.kind}${b.database ? ` in ${JSON.stringify(b.database)}` : ''}: ${b.detail}\n`);
    out.write(b.fix ? `  fix: ${b.fix};\n` : '  fix: none that pgwarden can print (see the detail)\n');
  }
}
