/**
 * Reading a new password and its expiry the same way for every command that sets one (`passwd`,
 * `adduser`): one line from stdin when it is not a terminal, else asked twice without echo.
 */
import { parseDuration } from '../config/duration.js';
import { UsageError } from '../errors.js';
import type { Io } from './io.js';

/** `infinity`, or a timestamp PostgreSQL and JS both read, as ISO-8601 UTC. */
export function parseValidUntil(text: string, flag = '--valid-until'): string {
  if (text.toLowerCase() === 'infinity') return 'infinity';
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a timestamp (e.g. 2027-03-01 or 2027-03-01T00:00:00Z, or infinity)`);
  return new Date(ms).toISOString();
}

/** `--valid-for 90d`: now plus the duration, as ISO-8601 UTC. */
export function validUntilAfter(text: string, now: Date, flag = '--valid-for'): string {
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds <= 0) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a duration (e.g. 90d, 12w, 36h)`);
  return new Date(now.getTime() + seconds * 1000).toISOString();
}

/** The new password; an empty one or two that differ are refused before anything is done. */
export async function readNewPassword(io: Io): Promise<string> {
  if (io.interactive) {
    const first = await io.ask('New password: ', { silent: true });
    const second = await io.ask('Again: ', { silent: true });
    if (first !== second) throw new UsageError('the passwords do not match; nothing was changed');
    if (first === '') throw new UsageError('an empty password is not allowed; nothing was changed');
    return first;
  }
  const text = await io.readStdin();
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line === '') throw new UsageError('no password on stdin (one line expected); nothing was changed');
  return line;
}
