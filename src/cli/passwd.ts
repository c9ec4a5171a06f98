/**
 * `pgwarden passwd ROLE [--valid-until TS]`: a new password from stdin (one line) or, on a
 * terminal, asked twice without echo. Only a SCRAM-SHA-256 verifier computed here is sent, so the
 * plain text never reaches the server's logs or pg_stat_statements; the verifier is a secret too
 * and is never logged. Verified afterwards from the catalog.
 */
import { setPasswordSql } from '../db/role-ddl.js';
import { fetchPasswordSettings, fetchValidUntil, silenceStatementLog, storedAsScram } from '../db/password.js';
import { fetchAlterRefusals } from '../db/roles.js';
import { withTransaction } from '../db/transaction.js';
import { scramVerifier } from '../db/scram.js';
import { loadContext, requireActionableRole, singleTarget, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { UsageError } from '../errors.js';
import { recordActions } from './metrics-file.js';
import { printJson } from './output.js';
import { parseValidUntil, readNewPassword } from './password.js';

export interface PasswdOptions {
  validUntil?: string;
  target?: string;
  metricsFile?: string;
}

export async function runPasswd(role: string, options: PasswdOptions, globals: GlobalOptions, io: Io): Promise<void> {
  if (role.startsWith('pg_')) throw new UsageError(`role ${JSON.stringify(role)} is a reserved pg_* role: pgwarden never acts on it`);
  const validUntil = options.validUntil === undefined ? undefined : parseValidUntil(options.validUntil);
  const context = loadContext(globals, io);
  const result = await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    await requireActionableRole(db, role);
    // Refused before the verifier is sent: a failing ALTER ROLE is logged with its text.
    const refused = (await fetchAlterRefusals(db, [role])).get(role);
    if (refused) throw new Error(`cannot set the password of ${JSON.stringify(role)}: ${refused} (see pgwarden doctor); nothing was sent`);
    const password = await readNewPassword(io);
    return db.withClient(async (client) => {
      const settings = await fetchPasswordSettings(client);
      await withTransaction(client, {}, async (c) => {
        await silenceStatementLog(c, settings);
        await c.query(setPasswordSql(role, scramVerifier(password, settings.iterations), validUntil));
      });
      const stored = await fetchValidUntil(client, role);
      if ((await storedAsScram(client, role, settings)) === false) {
        throw new Error(`the password of ${JSON.stringify(role)} was not stored as a SCRAM-SHA-256 verifier`);
      }
      return { role, target: db.name, validUntil: stored?.validUntil ?? null, iterations: settings.iterations };
    });
  });
  context.logger.child({ component: 'audit' }).info(
    { audit: true, target: context.config.targets[0]?.name, action: 'passwd', result: 'done', role, validUntil: result.validUntil },
    'passwd done',
  );
  await recordActions(options.metricsFile, context.config, [{ target: result.target, policy: 'passwd', action: 'set_password', result: 'done' }]);
  if (context.json) await printJson(io.stdout, { role: result.role, validUntil: result.validUntil });
  else {
    const until = result.validUntil ? result.validUntil.toISOString() : 'no expiry';
    io.stdout.write(`password of ${role} changed (SCRAM-SHA-256, ${result.iterations} iterations); valid until: ${until}\n`);
  }
}
