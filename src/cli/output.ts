/**
 * Printing: `--json` writes the DESIGN.md shapes on stdout; otherwise an aligned text table.
 */
import { formatSeconds } from '../config/duration.js';
import type { TextSink } from './io.js';

/** Characters gathered before a write: few writes, and never the whole document in one string. */
const JSON_CHUNK_CHARS = 1 << 16;

/**
 * Writes `value` as one JSON document (Dates become ISO-8601 UTC strings). An array (the listings:
 * `roles`, `sessions`, `owned`) is written one compact element per line between `[` and `]`, a
 * chunk at a time: 100,000 roles pretty-printed whole were 23 MB of text held at once, and 0.2 s
 * or more (issue 19). Anything else is pretty-printed.
 */
export function printJson(out: TextSink, value: unknown): void {
  if (!Array.isArray(value)) {
    out.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (value.length === 0) {
    out.write('[]\n');
    return;
  }
  let chunk = '[\n';
  for (let i = 0; i < value.length; i++) {
    // What JSON.stringify does to an array element that has no JSON form (undefined, a function).
    chunk += (JSON.stringify(value[i]) ?? 'null') + (i < value.length - 1 ? ',\n' : '\n]\n');
    if (chunk.length >= JSON_CHUNK_CHARS) {
      out.write(chunk);
      chunk = '';
    }
  }
  if (chunk !== '') out.write(chunk);
}

/**
 * A time as `--json` writes it (Date's toJSON: ISO-8601 UTC, null when invalid), for rows made by
 * the thousand: JSON.stringify calling each Date's toJSON itself cost about as much as all the
 * rest of a 100,000-role document (issue 19).
 */
export function jsonTime(date: Date | null): string | null {
  return date === null || Number.isNaN(date.getTime()) ? null : date.toISOString();
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

/** An aligned table with a header row; `empty` is printed instead when there are no rows. */
export function printTable<T>(out: TextSink, columns: readonly Column<T>[], rows: readonly T[], empty: string): void {
  if (rows.length === 0) {
    out.write(`${empty}\n`);
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
  out.write(`${line(columns.map((c) => c.header))}\n`);
  for (const r of cells) out.write(`${line(r)}\n`);
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
