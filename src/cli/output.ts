/**
 * Printing: `--json` writes the DESIGN.md shapes on stdout; otherwise an aligned text table.
 */
import { formatSeconds } from '../config/duration.js';
import type { TextSink } from './io.js';

/** Writes `value` as JSON (Dates become ISO-8601 UTC strings). */
export function printJson(out: TextSink, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
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
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => (r[i] as string).length)));
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
