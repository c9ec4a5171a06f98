/**
 * `pgwarden passwd ROLE [--valid-until TS]`: a new password from stdin (one line) or, on a
 * terminal, asked twice without echo. Only a SCRAM-SHA-256 verifier computed here is sent, so the
 * plain text never reaches the server's logs or pg_stat_statements; the verifier is a secret too
 * and is never logged. Verified afterwards from the catalog.
 */
import type { Command } from 'commander';
import { setPasswordSql } from '../actions/role-sql.js';
import { DEFAULT_SCRAM_ITERATIONS, scramVerifier } from '../db/scram.js';
import { UsageError } from '../errors.js';
import { loadContext, requireRole, singleTarget, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { printJson } from './output.js';

interface PasswdOptions {
  validUntil?: string;
  target?: string;
}

/** `infinity`, or a timestamp PostgreSQL and JS both read, as ISO-8601 UTC. */
export function parseValidUntil(text: string): string {
  if (text.toLowerCase() === 'infinity') return 'infinity';
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`--valid-until: ${JSON.stringify(text)} is not a timestamp (e.g. 2027-03-01 or 2027-03-01T00:00:00Z, or infinity)`);
  return new Date(ms).toISOString();
}

async function readPassword(io: Io): Promise<string> {
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

async function runPasswd(role: string, options: PasswdOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const validUntil = options.validUntil === undefined ? undefined : parseValidUntil(options.validUntil);
  const context = loadContext(globals, io);
  const result = await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    await requireRole(db, role);
    const password = await readPassword(io);
    return db.withClient(async (client) => {
      const { rows } = await client.query<{ iterations: string | null; su: boolean }>(
        `select current_setting('scram_iterations', true) as iterations,
                (select rolsuper from pg_roles where rolname = current_user) as su`,
      );
      // scram_iterations exists from PostgreSQL 16; before that the server and libpq use 4096.
      const iterations = Number(rows[0]?.iterations) || DEFAULT_SCRAM_ITERATIONS;
      const superuser = rows[0]?.su === true;
      await client.query('begin');
      try {
        if (superuser) {
          // The verifier is a secret: keep this one statement out of the server log.
          await client.query("set local log_statement = 'none'");
          await client.query('set local log_min_duration_statement = -1');
          await client.query("set local log_min_error_statement = 'panic'");
        }
        await client.query(setPasswordSql(role, scramVerifier(password, iterations), validUntil));
        await client.query('commit');
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      }
      const check = await client.query<{ valid_until: Date | null; infinite: boolean }>(
        `select case when isfinite(rolvaliduntil) then rolvaliduntil end as valid_until,
                coalesce(rolvaliduntil = 'infinity', false) as infinite
         from pg_roles where rolname = $1`,
        [role],
      );
      if (superuser) {
        const stored = await client.query<{ scram: boolean }>(`select rolpassword like 'SCRAM-SHA-256$%' as scram from pg_authid where rolname = $1`, [role]);
        if (!stored.rows[0]?.scram) throw new Error(`the password of ${JSON.stringify(role)} was not stored as a SCRAM-SHA-256 verifier`);
      }
      return { role, validUntil: check.rows[0]?.valid_until ?? null, iterations };
    });
  });
  context.logger.child({ component: 'audit' }).info(
    { audit: true, target: context.config.targets[0]?.name, action: 'passwd', result: 'done', role, validUntil: result.validUntil },
    'passwd done',
  );
  if (context.json) printJson(io.stdout, { role: result.role, validUntil: result.validUntil });
  else {
    const until = result.validUntil ? result.validUntil.toISOString() : 'no expiry';
    io.stdout.write(`password of ${role} changed (SCRAM-SHA-256, ${result.iterations} iterations); valid until: ${until}\n`);
  }
}

export function registerPasswd(program: Command, io: Io): void {
  program
    .command('passwd')
    .description('set a new password: read from stdin or asked twice; only a SCRAM-SHA-256 verifier is sent')
    .argument('<role>', 'the role')
    .option('--valid-until <timestamp>', 'password expiry (VALID UNTIL), e.g. 2027-03-01, or infinity')
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string, options: PasswdOptions, command: Command) => {
      await runPasswd(role, options, command.optsWithGlobals<GlobalOptions>(), io);
    });
}
