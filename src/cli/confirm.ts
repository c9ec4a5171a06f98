/**
 * Manual commands that act (logout, offboard) print what they will do and ask on a terminal;
 * `--yes` skips the question, `--dry-run` only prints; without a terminal they refuse unless one
 * of the two is given (DESIGN.md).
 */
import { UsageError } from '../errors.js';
import type { Io } from './io.js';

export interface ActOptions {
  readonly yes?: boolean;
  readonly dryRun?: boolean;
}

/** True to go ahead; false for a dry run or a "no". Throws UsageError without a terminal. */
export async function confirmAct(io: Io, options: ActOptions, question: string): Promise<boolean> {
  if (options.dryRun) return false;
  if (options.yes) return true;
  if (!io.interactive) {
    throw new UsageError('refusing to act without a terminal to confirm on: pass --yes to act, or --dry-run to only print the SQL');
  }
  const answer = await io.ask(`${question} [y/N] `);
  return /^y(es)?$/i.test(answer.trim());
}
