/**
 * The roles pgwarden is tested as, besides the superuser the fixture connects with:
 * - the **cloud-admin** role, as managed services hand it out (RDS's rds_superuser, Cloud SQL's
 *   cloudsqlsuperuser, Azure's azure_pg_admin): LOGIN, CREATEROLE, pg_signal_backend and
 *   pg_read_all_stats, not superuser, and no membership in the roles it manages unless a test
 *   grants it (`grantAdminOn`);
 * - the **bare** role: LOGIN and nothing else (what a new user tries first).
 * Both are created under the fixture's prefix and dropped with it.
 */
import { quoteIdent } from '../../src/db/quote.js';
import { ROLE_PASSWORD, urlFor, type Fixture } from './fixture.js';

/** A role pgwarden connects as in a test: its name and the URL to give `--database-url`. */
export interface TestLogin {
  readonly role: string;
  /** URL of `database` (default the connection database `postgres`) as this role. */
  url(database?: string): string;
}

function loginOf(role: string): TestLogin {
  return { role, url: (database = 'postgres') => urlFor(database, { name: role, password: ROLE_PASSWORD }) };
}

/** LOGIN, CREATEROLE, pg_signal_backend, pg_read_all_stats; not superuser, member of nothing else. */
export async function createCloudAdmin(f: Fixture, suffix = 'cloudadmin'): Promise<TestLogin> {
  const role = await f.createRole(f.name(suffix), 'createrole');
  await f.sql(`grant pg_signal_backend, pg_read_all_stats to ${quoteIdent(role)}`);
  return loginOf(role);
}

/** LOGIN only. */
export async function createBareRole(f: Fixture, suffix = 'bare'): Promise<TestLogin> {
  return loginOf(await f.createRole(f.name(suffix)));
}

/** PostgreSQL 16+ lets CREATEROLE alter only roles it has ADMIN OPTION on: grants it on `roles`. */
export async function grantAdminOn(f: Fixture, admin: TestLogin, roles: readonly string[]): Promise<void> {
  // As PostgreSQL 16 grants it to a CREATEROLE role on the roles it creates: ADMIN, not their privileges.
  for (const r of roles) await f.sql(`grant ${quoteIdent(r)} to ${quoteIdent(admin.role)} with admin option, inherit false, set false`);
}

/** server_version_num of the test server. */
export async function serverVersionNum(f: Fixture): Promise<number> {
  const { rows } = await f.sql<{ v: number }>("select current_setting('server_version_num')::int as v");
  return rows[0]?.v ?? 0;
}

/** Whether `role` may log in now (rolcanlogin). */
export async function canLogIn(f: Fixture, role: string): Promise<boolean> {
  const { rows } = await f.sql<{ rolcanlogin: boolean }>('select rolcanlogin from pg_roles where rolname = $1', [role]);
  return rows[0]?.rolcanlogin === true;
}
