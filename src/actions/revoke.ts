/**
 * `revoke ROLE`: every privilege the role holds — in every database, one database, or one schema
 * of it — revoked one ACL item at a time as its grantor (a superuser's plain REVOKE acts as the
 * owner and would leave other grantors' items in place). Pure: what is in scope, what blocks the
 * revoke before its first change, the plan and its restore SQL. Memberships are not privileges
 * on objects: they are left alone (NOLOGIN and offboard deal with them).
 */
import type { DatabaseFootprint } from '../db/footprint.js';
import { restoreSql, revokeSql, type Grant } from '../db/grants.js';
import type { GrantorRights } from '../db/grantors.js';
import type { UnvisitedDatabase } from '../db/owned.js';
import type { GrantTo } from '../db/privileges.js';
import { allowConnectionsFix, grantConnectFix } from '../db/fixes.js';
import { quoteIdent } from '../db/quote.js';
import type { Blocker } from './offboard.js';
import { revokePrivilegePlans, type RoleActionPlan } from './role-actions.js';

export const REVOKE_POLICY = 'revoke';

/** Where the revoke acts: everywhere, one database, or one schema of one database. */
export interface RevokeScope {
  readonly database?: string;
  /** Only with `database`. */
  readonly schema?: string;
}

/** The leading identifier of `text` as the server's quote_ident wrote it, and what follows. */
function leadingIdent(text: string): { name: string; rest: string } {
  if (!text.startsWith('"')) {
    const end = text.search(/[.(]/);
    return end < 0 ? { name: text, rest: '' } : { name: text.slice(0, end), rest: text.slice(end) };
  }
  let name = '';
  for (let i = 1; i < text.length; i++) {
    if (text[i] !== '"') name += text[i];
    else if (text[i + 1] === '"') {
      name += '"';
      i++;
    } else return { name, rest: text.slice(i + 1) };
  }
  return { name, rest: '' };
}

const IN_SCHEMA = /^(?:TABLE|SEQUENCE|FUNCTION|PROCEDURE|TYPE|DOMAIN) (.+)$/;

/**
 * The schema a grant's object lives in (for a schema, the schema itself; for default
 * privileges, the schema they are defined for), or null for objects outside schemas (databases,
 * languages, large objects, foreign-data wrappers and servers, parameters, global defaults).
 */
export function schemaOf(grant: Grant): string | null {
  if (grant.membership) return null;
  if (grant.defaults) return grant.defaults.schema;
  const schema = /^SCHEMA (.+)$/.exec(grant.object);
  if (schema) return leadingIdent(schema[1] as string).name;
  const qualified = IN_SCHEMA.exec(grant.object);
  return qualified ? leadingIdent(qualified[1] as string).name : null;
}

/** For a grant on a database (`DATABASE name`, shared), the database's name; else null. */
export function databaseOf(grant: Grant): string | null {
  const m = /^DATABASE (.+)$/.exec(grant.object);
  return grant.database === null && !grant.membership && m ? leadingIdent(m[1] as string).name : null;
}

/**
 * Whether a grant is in scope: everywhere; with a database, the grants in it and those on the
 * database itself (parameters, shared by the whole server, are left out); with a schema too,
 * only objects in that schema, the schema itself and default privileges for it.
 */
export function inScope(grant: Grant, scope: RevokeScope): boolean {
  if (scope.database === undefined) return true;
  if (grant.database === null) return scope.schema === undefined && databaseOf(grant) === scope.database;
  if (grant.database !== scope.database) return false;
  return scope.schema === undefined || schemaOf(grant) === scope.schema;
}

/** The footprint entries a scoped revoke must enter (the shared one needs no entering). */
export function scopeFootprint(footprint: readonly DatabaseFootprint[], scope: RevokeScope): DatabaseFootprint[] {
  return footprint.filter((f) => scope.database === undefined || f.database === null || f.database === scope.database);
}

/**
 * The ACL items `role` holds in scope: memberships left out, and the role's own entries on
 * default privileges it defined for itself (the owner's defaults, not a grant to it).
 */
export function revocableGrants(grants: readonly GrantTo[], role: string, scope: RevokeScope): Grant[] {
  return grants.map((g) => g.grant).filter((g) => g.grantee === role && g.grantor !== role && !g.membership && inScope(g, scope));
}

/** How a grant reads in a blocker: `SELECT on TABLE s.t`, or the default privileges it is. */
export function describeGrant(grant: Grant): string {
  const d = grant.defaults;
  if (d) return `default privileges ${grant.privileges.join(', ')} on ${d.objects} FOR ROLE ${quoteIdent(d.forRole)}${d.schema !== null ? ` IN SCHEMA ${quoteIdent(d.schema)}` : ''}`;
  return `${grant.privileges.join(', ')} on ${grant.object}`;
}

/** Everything the blockers are decided from, read before any change. */
export interface RevokeFacts {
  readonly role: string;
  /** Databases holding ACL entries of the role (in scope) that could not be entered. */
  readonly unvisited: readonly UnvisitedDatabase[];
  /** pg_shdepend's counts, for the fix of an unenterable database. */
  readonly footprint: readonly DatabaseFootprint[];
  /** The grants to revoke. */
  readonly grants: readonly Grant[];
  readonly rights: GrantorRights;
}

/**
 * Every blocker, found before the first change (pure): a database holding ACL entries of the
 * role that cannot be entered (its grants are unknown, so the revoke would be partial), and each
 * grant made by a grantor pgwarden's role cannot act as (its REVOKE would fail). None for a
 * superuser but the first.
 */
export function findRevokeBlockers(f: RevokeFacts): Blocker[] {
  const blockers: Blocker[] = [];
  for (const u of f.unvisited) {
    const d = f.footprint.find((x) => x.database === u.database);
    const fix = d && !d.allowConnections ? allowConnectionsFix(u.database) : d && !d.canConnect ? grantConnectFix(u.database, f.rights.me) : null;
    blockers.push({
      kind: 'unenterable_database',
      database: u.database,
      detail: `holds ${u.objects} ACL entr${u.objects === 1 ? 'y' : 'ies'} naming ${JSON.stringify(f.role)} that can only be read and revoked from inside it, but ${u.reason}`,
      fix,
    });
  }
  if (f.rights.superuser) return blockers;
  for (const g of f.grants) {
    const asRole = g.defaults ? g.defaults.forRole : g.grantor;
    const right = f.rights.grantors.get(asRole);
    if (g.defaults ? right?.forRole : right?.setRole) continue;
    const how = g.defaults ? `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(asRole)}` : `SET ROLE ${quoteIdent(asRole)}`;
    blockers.push({
      kind: 'foreign_grant',
      ...(g.database !== null ? { database: g.database } : {}),
      object: g.defaults ? `${g.defaults.objects}${g.defaults.schema !== null ? ` IN SCHEMA ${quoteIdent(g.defaults.schema)}` : ''}` : g.object,
      detail:
        `${describeGrant(g)} was granted by ${JSON.stringify(g.grantor)}, and only it (or a superuser) can revoke it; pgwarden's role may not ${how}. ` +
        `Run the fix as a superuser or as ${JSON.stringify(g.grantor)}${g.database !== null ? ` in database ${JSON.stringify(g.database)}` : ''}`,
      fix: revokeSql(g),
    });
  }
  return blockers;
}

/** One statement of the restore SQL, and the database it must run in (null: any). */
export interface RestoreStatement {
  readonly database: string | null;
  readonly sql: string;
}

export interface RevokePlan {
  /** One revoke_privileges action per ACL item, in order: shared ones first, then per database. */
  readonly actions: RoleActionPlan[];
  /** The GRANTs that give back everything the actions remove, in an order that replays as printed. */
  readonly restore: RestoreStatement[];
}

const sameObject = (a: Grant, b: Grant) => a.database === b.database && a.object === b.object;

/**
 * Plans the revoke (pure): one REVOKE … CASCADE per ACL item in `grants`, as its grantor. `handedOn`
 * are the grants that cascade away with them (what the role passed on with its grant option, and
 * what those grantees passed on in turn), in the order they were handed on: they ride on the
 * revoke of their object and are restored after it.
 */
export function planRevoke(target: string, role: string, grants: readonly Grant[], handedOn: readonly Grant[] = []): RevokePlan {
  const ordered = [...grants.filter((g) => g.database === null), ...grants.filter((g) => g.database !== null)];
  const actions = revokePrivilegePlans(target, REVOKE_POLICY, role, ordered).map((a) => ({
    ...a,
    cascades: a.grant?.grantable ? handedOn.filter((h) => sameObject(h, a.grant as Grant)) : [],
  }));
  const restore: RestoreStatement[] = [];
  const seen = new Set<string>();
  const add = (g: Grant) => {
    const sql = restoreSql(g);
    const key = `${g.database ?? ''}\u0000${sql}`;
    if (seen.has(key)) return;
    seen.add(key);
    restore.push({ database: g.database, sql });
  };
  for (const a of actions) {
    if (a.grant) add(a.grant);
    for (const c of a.cascades) add(c);
  }
  // Grouped by database (shared ones first) so that a replay connects once to each.
  const databases = [...new Set(restore.map((r) => r.database))];
  return { actions, restore: databases.flatMap((d) => restore.filter((r) => r.database === d)) };
}
