/**
 * Running the doctor on a target: read the capability facts (one round trip), judge them
 * (checks.ts), and either return the report (`pgwarden doctor`) or log its gaps (`pgwarden run`
 * at start). A target that cannot be reached or read is one failing `connect` check; the reason
 * never carries a password.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { redactText } from '../config/redact.js';
import { fetchCapabilities, type CapabilityFacts, type ValidUntil } from '../db/capabilities.js';
import type { TargetDb } from '../db/pool.js';
import { coerceError } from '../errors.js';
import { assess, connectCheck, doctorSettings, policiesStopped, type Check, type DoctorSettings } from './checks.js';

/** The attributes of pgwarden's role shown beside `role` (DESIGN.md `doctor` allows extra keys there). */
export interface RoleAttributesJson {
  /** current_user: the role whose privileges count (differs from `role` only after SET ROLE). */
  readonly currentRole: string;
  readonly superuser: boolean;
  readonly createRole: boolean;
  readonly inherit: boolean;
  readonly login: boolean;
  /** -1: none. */
  readonly connectionLimit: number;
  /** ISO-8601 UTC, `infinity`, `-infinity`, or null (none). */
  readonly validUntil: string | null;
  /** Direct memberships that carry the role's privileges (or SET ROLE to it). */
  readonly memberOf: readonly string[];
  /** PostgreSQL 16+: roles it is a member of only to administer them (ADMIN OPTION, no INHERIT, no SET). */
  readonly adminOnly: number;
}

/** One target of DESIGN.md's `doctor` shape. */
export interface TargetReport {
  readonly target: string;
  /** The role pgwarden logs in as (session_user; the configured user when unreachable). */
  readonly role: string;
  /** server_version, or null when unreachable. */
  readonly server: string | null;
  readonly attributes: RoleAttributesJson | null;
  readonly checks: readonly Check[];
}

function validUntilText(value: ValidUntil): string | null {
  return typeof value === 'number' ? new Date(value * 1000).toISOString() : value;
}

function attributesOf(facts: CapabilityFacts): RoleAttributesJson {
  const r = facts.currentRole;
  return {
    currentRole: r.name,
    superuser: r.superuser,
    createRole: r.createRole,
    inherit: r.inherit,
    login: facts.sessionRole.canLogin,
    connectionLimit: facts.sessionRole.connectionLimit,
    validUntil: validUntilText(facts.sessionRole.validUntil),
    memberOf: facts.memberOf.filter((r) => !facts.adminOnlyMemberOf.includes(r)),
    adminOnly: facts.adminOnlyMemberOf.length,
  };
}

/** The report of one target: its facts judged, or one `connect` check when they could not be read. */
export async function examineTarget(db: TargetDb, settings: DoctorSettings): Promise<TargetReport> {
  let facts: CapabilityFacts;
  try {
    facts = await fetchCapabilities(db);
  } catch (err) {
    return {
      target: db.name,
      role: db.where.user,
      server: null,
      attributes: null,
      checks: [connectCheck(redactText(coerceError(err).message), settings)],
    };
  }
  return {
    target: db.name,
    role: facts.sessionRole.name,
    server: facts.serverVersion,
    attributes: attributesOf(facts),
    checks: assess(facts, settings),
  };
}

/**
 * For `pgwarden run` at start: each failing check of `db` once at warn level (name, who needs it,
 * the fix), then one info line. Never rejects: a target that hangs or fails is logged and left to
 * the snapshot's own reporting.
 */
export async function logCapabilities(db: TargetDb, config: Config, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'doctor', target: db.name });
  try {
    const settings = doctorSettings(config, db.name);
    const report = await examineTarget(db, settings);
    const failing = report.checks.filter((c) => !c.ok);
    const policies = new Set(settings.policies.map((p) => p.name));
    for (const c of failing) {
      // A gap a configured policy hits is a warning; one only a command would hit is worth knowing, no more.
      const level = c.name === 'connect' || c.neededBy.some((n) => policies.has(n)) ? 'warn' : 'info';
      log[level]({ check: c.name, neededBy: c.neededBy, fix: c.fix, detail: c.detail }, `pgwarden's role lacks what ${c.name} needs`);
    }
    const stopped = policiesStopped(report.checks, settings);
    log.info(
      { role: report.role, server: report.server, missing: failing.map((c) => c.name), policiesStopped: stopped },
      stopped.length === 0
        ? `every configured policy can do its job${failing.length > 0 ? ` (${failing.length} gap(s) only commands would hit)` : ''}`
        : `${stopped.length} configured polic${stopped.length === 1 ? 'y' : 'ies'} cannot do all of their job: ${stopped.join(', ')} (pgwarden doctor shows the fixes)`,
    );
  } catch (err) {
    log.warn({ err: coerceError(err) }, 'could not check what pgwarden may do');
  }
}
