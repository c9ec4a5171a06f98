/**
 * `pgwarden access`, the deciding half: from the catalog facts to answers in plain words — which
 * membership gives each right, and why a right on a table cannot be used. Pure: no I/O.
 *
 * A table privilege is usable only when every gate on the way holds: the role can log in (LOGIN,
 * expiry for password logins), the database accepts connections and the role has CONNECT, the
 * schema gives USAGE, and the relation gives the privilege. Ask a DBA why a SELECT fails and they
 * walk the same gates in the same order; so does this.
 */
import type { AclSource, DatabaseFacts, RightFacts, RoleFacts, TableFacts } from '../db/access.js';

/** Predefined roles that give table privileges without any ACL item (PostgreSQL 14+). */
const PREDEFINED_TABLE_RIGHTS: Readonly<Record<string, readonly string[]>> = {
  pg_read_all_data: ['SELECT', 'USAGE'],
  pg_write_all_data: ['INSERT', 'UPDATE', 'DELETE', 'USAGE'],
};

/** Marker in `via` for a right a superuser has whatever the ACLs say. */
export const SUPERUSER_VIA = '(superuser)';

/** A right as reported: granted or not, and through whom (the role's own name: granted to it directly). */
export interface RightReport {
  readonly granted: boolean;
  readonly via: string[];
}

/** Who gives the role a right it has: grantees of ACL items that reach it, or what else explains it. */
export function viaOf(right: RightFacts, role: RoleFacts, privilege?: string): string[] {
  if (role.superuser) return [SUPERUSER_VIA];
  if (!right.granted) return [];
  const via = right.sources.filter((s) => s.how !== 'member_only').map((s) => s.grantee);
  if (via.length === 0 && privilege) {
    // No ACL item explains it: a predefined role (pg_read_all_data…) does.
    for (const m of role.memberOf) if (m.inherits && PREDEFINED_TABLE_RIGHTS[m.role]?.includes(privilege)) via.push(m.role);
  }
  return [...new Set(via)];
}

export function rightReport(right: RightFacts, role: RoleFacts, privilege?: string): RightReport {
  return { granted: role.superuser || right.granted, via: viaOf(right, role, privilege) };
}

/** The groups that hold `privilege` but whose privileges the role does not inherit. */
function notInherited(sources: readonly AclSource[], privilege: string): string[] {
  return sources.filter((s) => s.privilege === privilege && s.how === 'member_only').map((s) => s.grantee);
}

/** What the role can do about a group it belongs to without inheriting: SET ROLE, if the grant allows it (16+). */
function setRoleHint(role: RoleFacts, groups: readonly string[]): string {
  const settable = groups.filter((g) => role.memberOf.find((m) => m.role === g)?.canSet);
  return settable.length > 0
    ? `SET ROLE ${quoted(settable[0] as string)} first`
    : 'and the grant does not allow SET ROLE to it either';
}

/** A name as a DBA would type it: bare when SQL would read it back unchanged, else in double quotes. */
export function quoted(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** Why the role cannot be connected at all, in words (empty: it can log in). */
export function loginProblems(role: RoleFacts): string[] {
  const problems: string[] = [];
  if (!role.login) problems.push(`the role is NOLOGIN: it cannot log in (members can still use its rights through SET ROLE)`);
  if (role.expired) {
    problems.push(
      role.validUntil === '-infinity' || role.validUntil === null
        ? 'rolvaliduntil is -infinity: password logins are refused for good (certificate or trust logins are not)'
        : `rolvaliduntil passed on ${role.validUntil.slice(0, 10)}: password logins are refused (certificate or trust logins are not)`,
    );
  }
  if (role.connLimit === 0) problems.push('the role has CONNECTION LIMIT 0: no session can be opened');
  return problems;
}

/** Why the role cannot enter `database`, in words (empty: it can). */
export function databaseProblems(database: DatabaseFacts, role: RoleFacts): string[] {
  const problems: string[] = [];
  const name = quoted(database.database);
  if (!database.allowConnections) problems.push(`database ${name} does not allow connections (ALLOW_CONNECTIONS false)`);
  if (database.connLimit === 0 && !role.superuser) problems.push(`database ${name} has CONNECTION LIMIT 0: only superusers can connect`);
  if (!role.superuser && !database.connect.granted) {
    const groups = notInherited(database.connect.sources, 'CONNECT');
    const why = database.publicConnect ? '' : " (PUBLIC's CONNECT was revoked)";
    problems.push(
      groups.length > 0
        ? `no CONNECT on database ${name}: it is granted to ${groups.map(quoted).join(', ')}, but ${quoted(role.role)} does not inherit that membership's privileges${why}; a session cannot SET ROLE before it connects`
        : `no CONNECT on database ${name}${why}: grant it to ${quoted(role.role)} or one of its groups`,
    );
  }
  return problems;
}

/** One privilege on the table, judged. */
export interface TablePrivilegeReport {
  readonly privilege: string;
  /** The relation itself grants it (table level). */
  readonly granted: boolean;
  /** It works end to end: login, CONNECT, schema USAGE and the grant. */
  readonly usable: boolean;
  readonly via: string[];
  /** Why it does not work, gate by gate; empty when usable. */
  readonly reasons: string[];
  /** Columns it holds the privilege on, when it does not hold it on the whole relation. */
  readonly columns?: readonly string[];
}

export interface TableReport {
  readonly database: string;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
  readonly owner: string;
  readonly privileges: TablePrivilegeReport[];
  /** Things that limit what the role sees without denying it (row-level security). */
  readonly notes: string[];
}

/** Explains every privilege of one relation for the role. */
export function explainTable(role: RoleFacts, database: DatabaseFacts, table: TableFacts): TableReport {
  const relation = `${quoted(table.schema)}.${quoted(table.name)}`;
  const gates = [...loginProblems(role), ...databaseProblems(database, role)];
  const schemaUsage = role.superuser || table.schemaUsage.granted;
  const privileges = Object.keys(table.privileges).map((privilege): TablePrivilegeReport => {
    const granted = role.superuser || table.privileges[privilege] === true;
    const via = role.superuser ? [SUPERUSER_VIA] : viaOf({ granted, sources: table.sources.filter((s) => s.privilege === privilege) }, role, privilege);
    const reasons = [...gates];
    const columns = table.columns[privilege];
    if (!schemaUsage) {
      const groups = notInherited(table.schemaUsage.sources, 'USAGE');
      const held = granted ? `${privilege} on ${relation} is granted, but no` : 'no';
      reasons.push(
        groups.length > 0
          ? `${held} USAGE on schema ${quoted(table.schema)}: it is granted to ${groups.map(quoted).join(', ')}, whose privileges ${quoted(role.role)} does not inherit (${setRoleHint(role, groups)})`
          : `${held} USAGE on schema ${quoted(table.schema)}`,
      );
    }
    if (!granted) {
      const groups = notInherited(table.sources, privilege);
      if (groups.length > 0) {
        reasons.push(`${privilege} on ${relation} is granted to ${groups.map(quoted).join(', ')}, but ${quoted(role.role)} does not inherit that membership's privileges (${setRoleHint(role, groups)})`);
      } else if (columns && columns.length > 0) {
        reasons.push(`no ${privilege} on ${relation} as a whole, only on columns ${columns.map(quoted).join(', ')}`);
      } else reasons.push(`no ${privilege} on ${relation}: not granted to ${quoted(role.role)}, its groups or PUBLIC`);
    }
    if (granted && privilege === 'INSERT' && !role.superuser) {
      for (const seq of table.defaultSequencesDenied) {
        reasons.push(
          `INSERT on ${relation} is granted, but a column default calls nextval() of sequence ${quoted(seq.schema)}.${quoted(seq.name)}, ` +
            `on which ${quoted(role.role)} has no USAGE (an INSERT that gives that column a value works)`,
        );
      }
    }
    return {
      privilege,
      granted,
      usable: reasons.length === 0,
      via,
      reasons,
      ...(columns && columns.length > 0 ? { columns } : {}),
    };
  });
  const notes: string[] = [];
  if (table.kind === 'view' && !role.superuser) {
    notes.push(
      table.securityInvoker
        ? `${relation} is a security_invoker view: ${quoted(role.role)} also needs the privilege on every table it reads`
        : `${relation} is a view: it reads its tables with the rights of its owner ${quoted(table.owner)}, who needs the privilege on them`,
    );
  }
  if (table.rowSecurity && !role.superuser && !role.bypassRls && (!table.ownedByRole || table.forceRowSecurity)) {
    notes.push(`row-level security is enabled on ${relation}: its policies filter the rows ${quoted(role.role)} sees and changes`);
  }
  return { database: database.database, schema: table.schema, name: table.name, kind: table.kind, owner: table.owner, privileges, notes };
}
