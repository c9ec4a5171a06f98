/**
 * A SCRAM-SHA-256 verifier computed in the client, as libpq's PQencryptPasswordConn does, so the
 * plain-text password never reaches the server (its logs, pg_stat_statements, pg_stat_activity).
 * The verifier is a secret too: it allows offline guessing. Never log it.
 *
 * Format (RFC 5803, as PostgreSQL stores it):
 *   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import saslprepModule from '@mongodb-js/saslprep';

const saslprep = saslprepModule as unknown as (input: string, opts?: { allowUnassigned?: boolean }) => string;

/** libpq's default when the server does not say (scram_iterations exists from PostgreSQL 16). */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;

/**
 * SASLprep-normalises the password like PostgreSQL's pg_saslprep: unassigned code points are
 * allowed, and a password that SASLprep rejects (prohibited characters) is used as it is — the
 * server does exactly the same at login, so both sides agree.
 */
export function normalizePassword(password: string): string {
  try {
    return saslprep(password, { allowUnassigned: true });
  } catch {
    return password;
  }
}

/** The verifier for `password` with `iterations` and a fresh random salt (or the given one, for tests). */
export function scramVerifier(password: string, iterations = DEFAULT_SCRAM_ITERATIONS, salt: Buffer = randomBytes(SALT_BYTES)): string {
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`invalid SCRAM iteration count ${iterations}`);
  const salted = pbkdf2Sync(Buffer.from(normalizePassword(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
