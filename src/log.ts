/**
 * The pino root logger: JSON lines on stderr (stdout is for command output). Components take
 * `logger.child({ component })`. Secrets never reach a line: known secret keys are censored and
 * error messages pass through the URL redactor.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { redactText, REDACTED } from './config/redact.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const SECRET_PATHS = [
  'password',
  'bindPassword',
  'verifier',
  'connectionString',
  'url',
  '*.password',
  '*.bindPassword',
  '*.verifier',
  '*.connectionString',
  '*.url',
  'config.database.url',
];

function serializeError(err: unknown): Record<string, unknown> {
  const base = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { ...base };
  for (const key of ['message', 'stack']) {
    if (typeof out[key] === 'string') out[key] = redactText(out[key]);
  }
  return out;
}

/** A logger writing JSON lines to `destination` (stderr by default). */
export function createLogger(level: LogLevel, destination: DestinationStream = pino.destination(2)): Logger {
  return pino(
    {
      level,
      base: { app: 'pgwarden' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: SECRET_PATHS, censor: REDACTED },
      serializers: { err: serializeError },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
