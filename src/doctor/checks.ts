/**
 * `pgwarden doctor`'s judgement, pure: from the capability facts of one target (db/capabilities.ts)
 * and the configuration, one check per capability that a configured policy or a command needs,
 * each with who needs it and the exact statement that grants what is missing. A check that
 * nothing configured and no command needs is left out.
 *
 * What each capability takes is the server's rule, cited where it is decided:
 * - reading every session: pg_read_all_stats (monitoring-stats.html, pg_stat_activity);
 * - signalling: pg_signal_backend, never a superuser's backend (functions-admin.html#FUNCTIONS-ADMIN-SIGNAL);
 * - altering roles: CREATEROLE; from PostgreSQL 16 only on roles held WITH ADMIN OPTION (sql-createrole.html);
 * - entering a database: CONNECT and datallowconn;
 * - REVOKE: removes only what the current role, or a role whose privileges it has, granted
 *   (sql-revoke.html): revoking CONNECT is done as the database's owner, revoking a role's
 *   privileges as each grantor.
 */
import { compileGlobs } from '../config/glob.js';
import type { Config } from '../config/load.js';
import type { Policy } from '../config/policies.js';
import type { PolicyNeeds } from '../policies/kind.js';
import { needsOf } from '../policies/registry.js';
import type { Exemptions } from '../actions/planner.js';
import type { CapabilityFacts, DatabaseFacts, GrantPair } from '../db/capabilities.js';
import { alterRoleFix, grantConnectFix, grantRoleFix, validUntilOption } from '../db/fixes.js';
import { roleMatcher } from '../policies/match.js';

/** The stable names of doctor's checks (DESIGN.md `doctor`: `check.name`). */
export const CHECK_NAMES = [
  'connect',
  'read_all_sessions',
  'signal_backends',
  'signal_superusers',
  'alter_roles',
  'admin_option',
  'enter_databases',
  'revoke_connect',
  'revoke_others_grants',
  'own_login',
  'directory',
] as const;
/** One of CHECK_NAMES. */
export type CheckName = (typeof CHECK_NAMES)[number];

/** One capability: whether pgwarden has it, who needs it, and the statement that grants it. */
export interface Check {
  readonly name: CheckName;
  readonly ok: boolean;
  /**
   * Configured policy names first (config order), then commands (`logout --lock`). For a failing
   * check: those the gap stops; for a passing one: every one that relies on it.
   */
  readonly neededBy: readonly string[];
  readonly detail: string;
  /** The statement(s) to run as a superuser (or the objects' owner), `; `-separated; null when no grant helps. */
  readonly fix: string | null;
}

/** What of the configuration the checks read, for one target. */
export interface DoctorSettings {
  /** The policies configured on this target, in config order. */
  readonly policies: readonly Policy[];
  readonly exempt: Exemptions;
  /** database.poolSize: pgwarden's own role needs that many connections and a few more. */
  readonly poolSize: number;
}

/** The settings of `target` in `config`: only the policies that run there. */
export function doctorSettings(config: Config, target: string): DoctorSettings {
  return {
    policies: config.policies.filter((p) => p.targets === undefined || p.targets.includes(target)),
    exempt: config.settings.exempt,
    poolSize: config.settings.database.poolSize,
  };
}

/** Commands (DESIGN.md CLI) by what they need. */
export const COMMAND_NEEDS = {
  readAllSessions: ['sessions', 'locks', 'roles', 'logout', 'offboard', 'plan'],
  signalBackends: ['logout', 'offboard'],
  alterRoles: ['logout --lock', 'offboard', 'passwd', 'adduser'],
  adminOption: ['logout --lock', 'offboard', 'passwd'],
  enterDatabases: ['owned', 'offboard', 'revoke', 'access'],
  revokeConnect: ['logout --database --lock'],
  revokeOthersGrants: ['offboard', 'revoke'],
  everything: ['sessions', 'locks', 'roles', 'owned', 'logout', 'offboard', 'revoke', 'passwd', 'adduser', 'access', 'plan'],
} as const satisfies Record<string, readonly string[]>;

/** How soon before its password expires pgwarden's own role is reported. */
export const OWN_EXPIRY_WARN_SECONDS = 14 * 86_400;
/** Connections beyond the pool: the leader lock's own session and one client per database visited. */
export const EXTRA_CONNECTIONS = 2;
/** Statements of a long fix shown at once (doctor again shows the next ones). */
export const FIX_LIMIT = 5;
/** Names listed in a detail before "and N more". */
const NAME_LIMIT = 10;

/** The configured policies that need `what` of pgwarden's role, as each kind says (policies/registry.ts). */
const needing = (policies: readonly Policy[], what: keyof PolicyNeeds) => policies.filter((p) => needsOf(p)[what]);

function listNames(names: readonly string[], limit = NAME_LIMIT): string {
  const shown = names.slice(0, limit).map((n) => JSON.stringify(n)).join(', ');
  return names.length > limit ? `${shown} and ${names.length - limit} more` : shown;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Joins statements, each once, in order; null when there are none. */
function joinFix(statements: readonly string[]): string | null {
  const unique = [...new Set(statements.filter((s) => s !== ''))];
  return unique.length > 0 ? unique.join('; ') : null;
}

/**
 * The statements that give pgwarden's current role the privileges of `role` (membership with
 * inheritance). On 16+ inheritance is a property of each grant (its default the member's
 * INHERIT attribute), so a NOINHERIT role or an existing non-inheriting grant needs `WITH INHERIT
 * TRUE`; before 16 it is the member's INHERIT attribute.
 */
export function grantPrivilegesOf(role: string, facts: CapabilityFacts): string[] {
  const me = facts.currentRole.name;
  // A grant already there (say CREATEROLE's own ADMIN-only one) keeps its options when granted
  // again by the same grantor: only an explicit INHERIT TRUE changes it.
  const member = facts.memberOf.includes(role);
  if (facts.serverVersionNum >= 160000) {
    return [grantRoleFix(role, me, !facts.currentRole.inherit || member ? 'INHERIT TRUE' : undefined)];
  }
  const out: string[] = [];
  if (!member || facts.currentRole.inherit) out.push(grantRoleFix(role, me));
  if (!facts.currentRole.inherit) out.push(alterRoleFix(me, ['INHERIT']));
  return out;
}

/** Why a member of `role` still lacks its privileges, when it is a direct member. */
function inheritNote(role: string, facts: CapabilityFacts): string {
  return facts.memberOf.includes(role) ? ` (member of ${role}, but without inheriting its privileges)` : '';
}

/** Roles no policy ever acts on (DESIGN.md Safety rules), given the exemptions. */
function protectedFrom(facts: CapabilityFacts, settings: DoctorSettings): (role: string, superuser: boolean) => boolean {
  const exemptRole = settings.exempt.roles.length > 0 ? compileGlobs(settings.exempt.roles) : () => false;
  return (role, superuser) =>
    role.startsWith('pg_') ||
    role === facts.sessionRole.name ||
    role === facts.currentRole.name ||
    role === facts.bootstrapRole ||
    (settings.exempt.superusers && superuser) ||
    exemptRole(role);
}

/** Roles a command may be pointed at: all but pg_* roles, pgwarden's own and the bootstrap superuser. */
function commandReach(facts: CapabilityFacts): (role: string) => boolean {
  return (role) => !role.startsWith('pg_') && role !== facts.sessionRole.name && role !== facts.currentRole.name && role !== facts.bootstrapRole;
}

/** Policy names, then commands. */
function needers(policies: readonly Policy[], commands: readonly string[]): string[] {
  return [...policies.map((p) => p.name), ...commands];
}

interface Context {
  readonly facts: CapabilityFacts;
  readonly settings: DoctorSettings;
  readonly superuser: boolean;
  /** pgwarden's current role, by name (the fixes quote it). */
  readonly me: string;
  readonly isProtected: (role: string, superuser: boolean) => boolean;
}

function readAllSessions(c: Context): Check {
  const policies = needing(c.settings.policies, 'readsSessions');
  const ok = c.superuser || c.facts.readAllStats;
  return {
    name: 'read_all_sessions',
    ok,
    neededBy: needers(policies, COMMAND_NEEDS.readAllSessions),
    detail: ok
      ? c.superuser
        ? 'superuser: sees the state, query and timestamps of every session'
        : 'has the privileges of pg_read_all_stats: sees the state, query and timestamps of every session'
      : `no privileges of pg_read_all_stats${inheritNote('pg_read_all_stats', c.facts)}: other roles' sessions show no state, query or timestamps, so they are never judged, only counted as hidden (pgwarden_sessions_hidden)`,
    fix: ok ? null : joinFix(grantPrivilegesOf('pg_read_all_stats', c.facts)),
  };
}

function signalBackends(c: Context): Check {
  const policies = needing(c.settings.policies, 'signals');
  const ok = c.superuser || c.facts.signalBackend;
  return {
    name: 'signal_backends',
    ok,
    neededBy: needers(policies, COMMAND_NEEDS.signalBackends),
    detail: ok
      ? c.superuser
        ? "superuser: may cancel and terminate any role's sessions"
        : "has the privileges of pg_signal_backend: may cancel and terminate other roles' sessions (not superusers')"
      : `no privileges of pg_signal_backend${inheritNote('pg_signal_backend', c.facts)}: may cancel or terminate only sessions of roles whose privileges it has`,
    fix: ok ? null : joinFix(grantPrivilegesOf('pg_signal_backend', c.facts)),
  };
}

/** Superuser login roles a policy may reach (exempt.superusers false): only a superuser may signal them. */
function signalSuperusers(c: Context): Check | null {
  if (c.superuser || c.settings.exempt.superusers) return null;
  const policies = needing(c.settings.policies, 'signals');
  if (policies.length === 0) return null;
  const reachOf = (p: Policy) => {
    const inScope = roleMatcher(p.match);
    return c.facts.superuserLogins.filter((r) => !c.isProtected(r, true) && inScope(r));
  };
  const hit = policies.filter((p) => reachOf(p).length > 0);
  const reached = [...new Set(hit.flatMap(reachOf))].sort();
  const ok = reached.length === 0;
  return {
    name: 'signal_superusers',
    ok,
    neededBy: needers(ok ? policies : hit, []),
    detail: ok
      ? 'exempt.superusers is false, but no superuser role other than the bootstrap superuser is in reach of a policy'
      : `exempt.superusers is false, and only a superuser may signal a superuser's session: ${plural(reached.length, 'superuser role')} in reach (${listNames(reached)}) cannot be cancelled or terminated; set exempt.superusers: true, or run pgwarden as a superuser`,
    fix: null,
  };
}

function alterRoles(c: Context): Check {
  const policies = needing(c.settings.policies, 'altersRoles');
  const createRole = c.superuser || c.facts.currentRole.createRole;
  // A non-superuser can never alter a superuser role: with exempt.superusers false a policy may try.
  const superusersOf = (p: Policy) => {
    if (c.superuser || c.settings.exempt.superusers) return [];
    const inScope = roleMatcher(p.match);
    return c.facts.superuserLogins.filter((r) => !c.isProtected(r, true) && inScope(r));
  };
  const hitBySuperusers = policies.filter((p) => superusersOf(p).length > 0);
  const superusers = [...new Set(hitBySuperusers.flatMap(superusersOf))].sort();
  const ok = createRole && superusers.length === 0;
  const v16 = c.facts.serverVersionNum >= 160000;
  const parts: string[] = [];
  if (c.superuser) parts.push('superuser: may alter any role');
  else if (createRole) parts.push(`CREATEROLE: may alter non-superuser roles${v16 ? ' it holds WITH ADMIN OPTION (PostgreSQL 16+, see admin_option)' : ''}`);
  else parts.push('no CREATEROLE: cannot make a role NOLOGIN, set a password or create a role');
  if (superusers.length > 0) {
    parts.push(
      `exempt.superusers is false and only a superuser may alter a superuser role: ${plural(superusers.length, 'superuser role')} in reach (${listNames(superusers)}); set exempt.superusers: true, or run pgwarden as a superuser`,
    );
  }
  return {
    name: 'alter_roles',
    ok,
    neededBy: ok ? needers(policies, COMMAND_NEEDS.alterRoles) : createRole ? needers(hitBySuperusers, []) : needers(policies, COMMAND_NEEDS.alterRoles),
    detail: parts.join('; '),
    fix: createRole ? null : alterRoleFix(c.me, ['CREATEROLE']),
  };
}

/**
 * PostgreSQL 16+: CREATEROLE alters only roles held WITH ADMIN OPTION. The grant the fix prints
 * is the one PostgreSQL 16 makes itself when a CREATEROLE role creates a role: ADMIN without
 * INHERIT or SET, so pgwarden may manage the role without getting its privileges.
 */
function adminOption(c: Context): Check | null {
  if (c.superuser || c.facts.serverVersionNum < 160000) return null;
  const policies = needing(c.settings.policies, 'altersRoles');
  const missing = c.facts.withoutAdminOption.filter(commandReach(c.facts));
  const reachOf = (p: Policy) => {
    const inScope = roleMatcher(p.match);
    return missing.filter((r) => !c.isProtected(r, false) && inScope(r));
  };
  const hit = policies.filter((p) => reachOf(p).length > 0);
  const policyMissing = new Set(hit.flatMap(reachOf));
  const ok = missing.length === 0;
  // The roles policies reach first: theirs are the grants that let every policy do its job, so the
  // fix holds only those while there are any; the rest only commands would meet.
  const ordered = [...[...policyMissing].sort(), ...missing.filter((r) => !policyMissing.has(r))];
  const fixFor = policyMissing.size > 0 ? ordered.slice(0, policyMissing.size) : ordered;
  const byPolicies = policies.length > 0 ? `, ${policyMissing.size} of them in reach of ${hit.length > 0 ? hit.map((p) => p.name).join(', ') : 'no policy'}` : '';
  const fixes = fixFor.slice(0, FIX_LIMIT).map((r) => grantRoleFix(r, c.me, 'ADMIN OPTION, INHERIT FALSE, SET FALSE'));
  return {
    name: 'admin_option',
    ok,
    neededBy: needers(ok ? policies : hit, COMMAND_NEEDS.adminOption),
    detail: ok
      ? 'holds ADMIN OPTION on every non-superuser login role (PostgreSQL 16+: CREATEROLE alters only those)'
      : `no ADMIN OPTION on ${plural(missing.length, 'login role')}${byPolicies} (PostgreSQL 16+: CREATEROLE alters only roles held WITH ADMIN OPTION; roles it creates it holds so): ${listNames(ordered)}${ordered.length > fixes.length ? `; the fix grants ADMIN OPTION on the first ${plural(fixes.length, 'role')}${policyMissing.size > 0 ? ' policies reach' : ''}: run doctor again for the next` : ''}`,
    fix: ok ? null : joinFix(fixes),
  };
}

/** Databases visits enter: not templates, connections allowed. */
function visitable(databases: readonly DatabaseFacts[]): DatabaseFacts[] {
  return databases.filter((d) => d.allowConnections && !d.isTemplate);
}

function refusedNote(databases: readonly DatabaseFacts[]): string {
  const refused = databases.filter((d) => !d.allowConnections && !d.isTemplate).map((d) => d.name);
  return refused.length > 0 ? `; ${plural(refused.length, 'database')} refuse connections to everyone (datallowconn false) and are never entered: ${listNames(refused)}` : '';
}

function enterDatabases(c: Context): Check {
  const policies = needing(c.settings.policies, 'revokesPrivileges');
  const databases = visitable(c.facts.databases);
  const missing = databases.filter((d) => !d.canConnect);
  const ok = missing.length === 0;
  return {
    name: 'enter_databases',
    ok,
    neededBy: needers(policies, COMMAND_NEEDS.enterDatabases),
    detail:
      (ok
        ? `may connect to every database (${databases.length})`
        : `no CONNECT on ${missing.length} of ${databases.length} databases, which are reported as not visited: ${listNames(missing.map((d) => d.name))}`) + refusedNote(c.facts.databases),
    fix: ok ? null : joinFix(missing.map((d) => grantConnectFix(d.name, c.me))),
  };
}

function revokeConnect(c: Context): Check {
  const policies = needing(c.settings.policies, 'revokesConnect');
  const databases = visitable(c.facts.databases);
  const missing = databases.filter((d) => !d.ownerPrivileges);
  const grantable = missing.filter((d) => !d.ownerSuperuser);
  const superOwned = missing.filter((d) => d.ownerSuperuser);
  const ok = missing.length === 0;
  const parts: string[] = [];
  if (ok) parts.push(`has the privileges of the owner of every database (${databases.length}): a REVOKE CONNECT is made as the owner`);
  else {
    parts.push(`REVOKE CONNECT removes only what its role, or a role whose privileges it has, granted, so it is made as the database's owner`);
    if (grantable.length > 0) {
      parts.push(`no privileges of the owner of ${plural(grantable.length, 'database')}: ${grantable.map((d) => `${JSON.stringify(d.name)} (owner ${JSON.stringify(d.owner)})`).join(', ')}`);
    }
    if (superOwned.length > 0) {
      parts.push(
        `${plural(superOwned.length, 'database')} owned by a superuser, where only a superuser can revoke CONNECT: ${superOwned.map((d) => `${JSON.stringify(d.name)} (owner ${JSON.stringify(d.owner)})`).join(', ')} ` +
          `(no grant makes that possible: give those databases another owner pgwarden may act as, or leave revoke_connect out of the policy's actions — NOLOGIN is what keeps a role out)`,
      );
    }
  }
  return {
    name: 'revoke_connect',
    ok,
    neededBy: needers(policies, COMMAND_NEEDS.revokeConnect),
    detail: parts.join('; '),
    fix: joinFix([...new Set(grantable.map((d) => d.owner))].flatMap((owner) => grantPrivilegesOf(owner, c.facts))),
  };
}

interface GrantorGap {
  readonly grantor: string;
  /** The role whose privileges would let pgwarden revoke as the grantor, or null when none can be granted. */
  readonly via: string | null;
  readonly why: string;
  readonly grantees: Set<string>;
  entries: number;
}

/** What stands for grantor `g` when it is not an ordinary role. */
function grantorRoute(pair: GrantPair, facts: CapabilityFacts): { via: string | null; why: string } {
  if (pair.grantorSuperuser) return { via: null, why: 'superuser: only a superuser can revoke what it granted' };
  if (pair.grantor === 'pg_database_owner') {
    // The owner of the current database holds pg_database_owner's privileges here; it cannot be granted.
    const owner = facts.databases.find((d) => d.name === facts.database);
    if (!owner || owner.ownerSuperuser) return { via: null, why: `stands for the owner of database ${JSON.stringify(facts.database)}, a superuser` };
    return { via: owner.owner, why: `stands for the owner of database ${JSON.stringify(facts.database)}, ${JSON.stringify(owner.owner)}` };
  }
  if (pair.grantor.startsWith('pg_')) return { via: null, why: 'a predefined role, which only a superuser should be given' };
  return { via: pair.grantor, why: '' };
}

function revokeOthersGrants(c: Context): Check {
  const policies = needing(c.settings.policies, 'revokesPrivileges');
  const reachable = commandReach(c.facts);
  const gaps = c.facts.grants.filter((g) => !g.grantorPrivileges && reachable(g.grantee));
  const reachOf = (p: Policy) => {
    const inScope = roleMatcher(p.match);
    return gaps.filter((g) => !c.isProtected(g.grantee, g.granteeSuperuser) && inScope(g.grantee));
  };
  const hit = policies.filter((p) => reachOf(p).length > 0);
  const byGrantor = new Map<string, GrantorGap>();
  for (const g of gaps) {
    let gap = byGrantor.get(g.grantor);
    if (!gap) {
      gap = { grantor: g.grantor, ...grantorRoute(g, c.facts), grantees: new Set(), entries: 0 };
      byGrantor.set(g.grantor, gap);
    }
    gap.grantees.add(g.grantee);
    gap.entries += g.entries;
  }
  const list = [...byGrantor.values()];
  const ok = list.length === 0;
  const where = `in database ${JSON.stringify(c.facts.database)} and the shared catalogs (other databases are not examined)`;
  const describe = (g: GrantorGap) =>
    `${JSON.stringify(g.grantor)} (${plural(g.entries, 'privilege')} to ${plural(g.grantees.size, 'role')}${g.why ? `; ${g.why}` : ''})`;
  return {
    name: 'revoke_others_grants',
    ok,
    neededBy: needers(ok ? policies : hit, COMMAND_NEEDS.revokeOthersGrants),
    detail: ok
      ? c.superuser
        ? `superuser: may revoke what anyone granted`
        : `has the privileges of every role that granted privileges to another role ${where}`
      : `a REVOKE removes only what its role, or a role whose privileges it has, granted; privileges ${where} were granted by ${plural(list.length, 'role')} whose privileges it lacks: ${list
          .slice(0, NAME_LIMIT)
          .map(describe)
          .join(', ')}${list.length > NAME_LIMIT ? ` and ${list.length - NAME_LIMIT} more` : ''}`,
    fix: joinFix(
      [...new Set(list.map((g) => g.via).filter((v): v is string => v !== null))]
        .slice(0, FIX_LIMIT)
        .flatMap((role) => grantPrivilegesOf(role, c.facts)),
    ),
  };
}

/** An ISO date one year after `now` (epoch seconds), for a VALID UNTIL that fits. */
function oneYearFrom(now: number): string {
  return new Date((now + 365 * 86_400) * 1000).toISOString().slice(0, 10);
}

function ownLogin(c: Context): Check {
  const role = c.facts.sessionRole;
  const wanted = c.settings.poolSize + EXTRA_CONNECTIONS;
  const problems: string[] = [];
  const options: string[] = [];
  if (!role.canLogin) {
    problems.push('NOLOGIN: the next connection will be refused');
    options.push('LOGIN');
  }
  if (role.connectionLimit >= 0 && role.connectionLimit < wanted) {
    problems.push(`CONNECTION LIMIT ${role.connectionLimit}, below database.poolSize + ${EXTRA_CONNECTIONS} = ${wanted} (the pool, the leader lock's session, a client per database visited)`);
    options.push(`CONNECTION LIMIT ${wanted}`);
  }
  const until = role.validUntil;
  if (until === '-infinity') {
    problems.push('VALID UNTIL -infinity: password logins are refused for good');
  } else if (typeof until === 'number') {
    const left = until - c.facts.now;
    if (left < 0) problems.push(`password expired ${Math.floor(-left / 86_400)} days ago: password logins are refused`);
    else if (left <= OWN_EXPIRY_WARN_SECONDS) problems.push(`password expires in ${Math.floor(left / 86_400)} days: password logins are refused after that`);
  }
  if (until === '-infinity' || (typeof until === 'number' && until - c.facts.now <= OWN_EXPIRY_WARN_SECONDS)) {
    options.push(validUntilOption(oneYearFrom(c.facts.now)));
  }
  const ok = problems.length === 0;
  const limit = role.connectionLimit < 0 ? 'no connection limit' : `connection limit ${role.connectionLimit}`;
  const expiry = until === null || until === 'infinity' ? 'no password expiry' : typeof until === 'number' ? `password valid until ${new Date(until * 1000).toISOString()}` : '';
  return {
    name: 'own_login',
    ok,
    neededBy: needers(c.settings.policies, COMMAND_NEEDS.everything),
    detail: ok ? `${JSON.stringify(role.name)} may log in: ${limit}, ${expiry}` : `${JSON.stringify(role.name)}: ${problems.join('; ')}`,
    fix: ok ? null : alterRoleFix(role.name, options),
  };
}

/** Every check that a configured policy or a command needs, in a stable order. */
export function assess(facts: CapabilityFacts, settings: DoctorSettings): Check[] {
  const c: Context = {
    facts,
    settings,
    superuser: facts.currentRole.superuser,
    me: facts.currentRole.name,
    isProtected: protectedFrom(facts, settings),
  };
  return [
    readAllSessions(c),
    signalBackends(c),
    signalSuperusers(c),
    alterRoles(c),
    adminOption(c),
    enterDatabases(c),
    revokeConnect(c),
    revokeOthersGrants(c),
    ownLogin(c),
  ].filter((check): check is Check => check !== null && check.neededBy.length > 0);
}

/** What doctor found of one directory a target's policies ask: its search, and the covered roles without an entry. */
export interface DirectoryFinding {
  readonly name: string;
  /** The policies on the target that ask it. */
  readonly neededBy: readonly string[];
  /** Set when the bind or the search failed (no secret in it). */
  readonly error?: string;
  readonly entries?: number;
  readonly tookMs?: number;
  /** Login roles the directory judges (its `roles`), exemptions applied. */
  readonly covered: number;
  /** Of those, the ones no entry names. */
  readonly withoutEntry: readonly string[];
  /** Of those with an entry, how many match disabledFilter (undefined: no disabledFilter). */
  readonly disabled?: number;
  /** Per group the policies ask about: how many covered roles with an entry are not in it. */
  readonly outOfGroups?: readonly { readonly group: string; readonly count: number }[];
}

/** The `directory` check: the bind and search worked, how many entries, how long, and who has no entry. */
export function directoryCheck(f: DirectoryFinding): Check {
  if (f.error !== undefined) {
    return { name: 'directory', ok: false, neededBy: f.neededBy, detail: `directory ${f.name}: ${f.error}; it decides nothing until a search succeeds`, fix: null };
  }
  const some = f.withoutEntry.slice(0, FIX_LIMIT).map((r) => JSON.stringify(r)).join(', ');
  const more = f.withoutEntry.length > FIX_LIMIT ? ` and ${f.withoutEntry.length - FIX_LIMIT} more` : '';
  const n = f.withoutEntry.length;
  const missing = n === 0 ? 'every covered role has an entry' : `${n} ${n === 1 ? 'has' : 'have'} no entry (${some}${more})`;
  const counts = [
    ...(f.disabled !== undefined ? [`${f.disabled} disabled`] : []),
    ...(f.outOfGroups ?? []).map((g) => `${g.count} not in ${g.group}`),
  ];
  // None of several covered roles found: a wrong roleAttribute, baseDN or userFilter, not a directory of leavers.
  const noneFound = f.covered > 1 && n === f.covered;
  return {
    name: 'directory',
    ok: !noneFound,
    neededBy: f.neededBy,
    detail:
      `directory ${f.name}: bound and searched in ${f.tookMs ?? 0} ms, ${f.entries ?? 0} entries; of ${f.covered} covered login roles, ${missing}` +
      (counts.length > 0 ? `; of those with an entry, ${counts.join(', ')}` : '') +
      (noneFound ? ': no covered role has an entry — is roleAttribute right? (pgwarden refuses such an answer)' : ''),
    fix: null,
  };
}

/** The check of a target that could not be reached or read: a failure, needed by everything. */
export function connectCheck(reason: string, settings: DoctorSettings): Check {
  return { name: 'connect', ok: false, neededBy: needers(settings.policies, COMMAND_NEEDS.everything), detail: reason, fix: null };
}

/** Configured policies that some failing check stops. */
export function policiesStopped(checks: readonly Check[], settings: DoctorSettings): string[] {
  const failing = checks.filter((c) => !c.ok);
  if (failing.some((c) => c.name === 'connect')) return settings.policies.map((p) => p.name);
  const stopped = new Set(failing.flatMap((c) => c.neededBy));
  return settings.policies.map((p) => p.name).filter((n) => stopped.has(n));
}
