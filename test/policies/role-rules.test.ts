import { describe, expect, it } from 'vitest';
import type { Match } from '../../src/config/policies.js';
import type { DisabledRolePolicy } from '../../src/policies/disabled-role.js';
import type { PasswordExpiryPolicy } from '../../src/policies/password-expiry.js';
import type { RoleInfo, RoleSnapshot } from '../../src/db/snapshot.js';
import { planRoleActions } from '../../src/actions/role-actions.js';
import { disabledRole } from '../../src/policies/disabled-role.js';
import { passwordExpiry } from '../../src/policies/password-expiry.js';
import { session } from '../support/sessions.js';
import { indexAnswer, type DirectoryAnswer } from '../../src/directory/answer.js';
import type { RoleSources } from '../../src/policies/kind.js';

const NO_DIRECTORIES: RoleSources = {
  directory: (name) => ({ name, roles: [], roleAttribute: 'uid', answer: undefined, problem: 'not configured' }),
  directories: [],
  exempt: { superusers: true, roles: [], applications: [] },
  safety: { maxFraction: 0.5, minActions: 5 },
  now: 0,
};

const noMatch: Match = { roles: [], databases: [], applications: [], exclude: { roles: [], databases: [], applications: [] } };
const common = { schedule: '* * * * *', mode: undefined, match: noMatch, maxActionsPerRun: 50, targets: undefined };
const DAY = 86_400;

function role(name: string, overrides: Partial<RoleInfo> = {}): RoleInfo {
  return { role: name, login: true, superuser: false, connLimit: -1, validUntil: null, validSeconds: null, memberOf: [], sessions: 0, ...overrides };
}
const SELF = { role: 'pgwarden', currentRole: 'pgwarden', bootstrapRole: 'postgres', superuser: false };
const roles = (...list: RoleInfo[]): RoleSnapshot => ({ target: 'default', takenAt: new Date(), self: SELF, roles: list });

describe('password_expiry', () => {
  const policy: PasswordExpiryPolicy = { ...common, name: 'pe', kind: 'password_expiry', warnWithinSeconds: 14 * DAY, requireExpiry: false, action: 'report', graceSeconds: 0 };

  it('flags expiring and expired login roles with their seconds; not later ones, nologin roles or pg_* roles', () => {
    const v = passwordExpiry(
      roles(
        role('soon', { validSeconds: 3 * DAY }),
        role('past', { validSeconds: -2 * DAY, sessions: 2 }),
        role('later', { validSeconds: 30 * DAY }),
        role('never'),
        role('group', { login: false, validSeconds: -DAY }),
        role('pg_monitor', { validSeconds: -DAY }),
      ),
      policy,
    );
    // in role-name order, whatever the snapshot's (catalog) order
    expect(v.map((x) => [x.role.role, x.condition, x.seconds])).toEqual([
      ['past', 'expired', 2 * DAY],
      ['soon', 'expiring', 3 * DAY],
    ]);
    expect(v.every((x) => x.actions.length === 0)).toBe(true);
    // -infinity: refused for good, with no age to report
    const locked = passwordExpiry(roles(role('locked', { validSeconds: -Infinity })), { ...policy, action: 'nologin', graceSeconds: 7 * DAY });
    expect(locked.map((x) => [x.condition, x.seconds, x.actions, x.reason])).toEqual([
      ['expired', undefined, ['nologin'], 'VALID UNTIL -infinity: password logins are refused for good'],
    ]);
    // an expired role with sessions: the reason says the expiry does not end them
    expect(v[0]?.reason).toMatch(/still has 2 sessions: rolvaliduntil only limits password logins/);
  });

  it('with requireExpiry flags login roles without an expiry', () => {
    const v = passwordExpiry(roles(role('never'), role('soon', { validSeconds: DAY })), { ...policy, requireExpiry: true });
    expect(v.map((x) => [x.role.role, x.condition])).toEqual([
      ['never', 'no_expiry'],
      ['soon', 'expiring'],
    ]);
  });

  it('with action nologin disables only roles expired longer than the grace', () => {
    const v = passwordExpiry(
      roles(role('long', { validSeconds: -10 * DAY }), role('recent', { validSeconds: -DAY })),
      { ...policy, action: 'nologin', graceSeconds: 7 * DAY },
    );
    expect(v.map((x) => [x.role.role, x.actions, x.overSeconds])).toEqual([
      ['long', ['nologin'], 3 * DAY],
      ['recent', [], -6 * DAY],
    ]);
  });
});

/** disabled_role's violations with no directory configured. */
function disabledRoles(snapshot: RoleSnapshot, policy: DisabledRolePolicy) {
  return disabledRole(snapshot, policy, NO_DIRECTORIES).violations;
}

describe('disabled_role', () => {
  const policy: DisabledRolePolicy = {
    ...common,
    name: 'dr',
    kind: 'disabled_role',
    disabledWhen: { nologin: true, expired: true, memberOf: 'pgwarden_disabled', roles: ['leaver_*'], directory: undefined },
    actions: ['nologin', 'terminate', 'revoke_connect'],
  };

  it('finds each condition, inherited membership included; never pg_* roles or the marker itself', () => {
    const v = disabledRoles(
      roles(
        role('pgwarden_disabled', { login: false, sessions: 1 }),
        role('offboarding', { login: false, memberOf: ['pgwarden_disabled'] }),
        role('alice', { memberOf: ['offboarding'] }),
        role('leaver_bob'),
        role('gone_nologin', { login: false, sessions: 2 }),
        role('quiet_nologin', { login: false }),
        role('expired', { validSeconds: -DAY }),
        role('ok'),
        role('pg_read_all_data', { login: false, sessions: 1 }),
      ),
      policy,
    );
    // in role-name order, whatever the snapshot's (catalog) order
    expect(v.map((x) => [x.role.role, x.condition])).toEqual([
      ['alice', 'memberOf'],
      ['expired', 'expired'],
      ['gone_nologin', 'nologin'],
      ['leaver_bob', 'listed'],
      ['offboarding', 'memberOf'],
    ]);
    expect(v[0]?.actions).toEqual(['nologin', 'terminate', 'revoke_connect']);
  });

  it('plans only what changes something, NOLOGIN first, and honours exemptions, the cap and the breaker', () => {
    const alice = role('alice', { memberOf: ['pgwarden_disabled'], sessions: 2 });
    const locked = role('locked', { login: false, memberOf: ['pgwarden_disabled'] });
    const boss = role('boss', { superuser: true, memberOf: ['pgwarden_disabled'] });
    const violations = disabledRoles(roles(role('pgwarden_disabled', { login: false }), alice, locked, boss), policy);
    const sessions = [session({ role: 'alice', pid: 501 }), session({ role: 'alice', pid: 502 }), session({ role: 'bob', pid: 503 })];
    const input = {
      violations,
      sessions,
      connectable: new Map([['alice', ['postgres', 'shop']]]),
      maxActionsPerRun: 50,
      exempt: { superusers: true, roles: [], applications: [] },
      safety: { maxFraction: 0.5, minActions: 5 },
      ownPids: new Set<number>(),
      self: SELF,
      loginRoles: 100,
    };
    const plan = planRoleActions(input);
    expect(plan.actions.map((a) => [a.action, a.role, a.session?.pid ?? a.database ?? null, a.result])).toEqual([
      ['nologin', 'alice', null, 'planned'],
      ['terminate', 'alice', 501, 'planned'],
      ['terminate', 'alice', 502, 'planned'],
      ['revoke_connect', 'alice', 'postgres', 'planned'],
      ['revoke_connect', 'alice', 'shop', 'planned'],
    ]);
    expect(plan.actions[0]?.sql).toBe('alter role "alice" nologin');
    expect(plan.actions[3]?.sql).toBe('revoke connect on database "postgres" from "alice"');

    // An exempt application's session is never touched, even for a disabled role.
    const withDump = planRoleActions({
      ...input,
      sessions: [...sessions, session({ role: 'alice', pid: 504, application: 'pg_dump' })],
      exempt: { superusers: true, roles: [], applications: ['pg_dump'] },
    });
    expect(withDump.actions.filter((a) => a.action === 'terminate').map((a) => a.session?.pid)).toEqual([501, 502]);

    const capped = planRoleActions({ ...input, maxActionsPerRun: 2 });
    expect(capped.actions.map((a) => a.result)).toEqual(['planned', 'planned', 'skipped', 'skipped', 'skipped']);

    const tripped = planRoleActions({ ...input, safety: { maxFraction: 0.01, minActions: 0 }, loginRoles: 2 });
    expect(tripped.breaker).toMatch(/^circuit breaker/);
    expect(tripped.actions.every((a) => a.result === 'skipped')).toBe(true);
  });
});

describe('disabled_role with a directory (pure: an answer as a search would give it)', () => {
  const policy: DisabledRolePolicy = {
    ...common,
    name: 'ldap',
    kind: 'disabled_role',
    disabledWhen: { nologin: false, expired: false, memberOf: undefined, roles: [], directory: { name: 'corp', disabled: true, missing: true, notInGroup: 'cn=db,ou=groups,dc=x' } },
    actions: ['nologin', 'terminate'],
  };
  const person = (uid: string, memberOf: string[] = ['CN=db, OU=groups, DC=x']) => ({ dn: `uid=${uid},ou=people,dc=x`, names: [uid], uids: [uid], memberOf });
  function sources(answer: DirectoryAnswer | undefined, now = 65_000): RoleSources {
    return {
      ...NO_DIRECTORIES,
      now,
      directory: (name) => ({ name, roles: ['app_*'], roleAttribute: 'uid', answer, problem: answer ? undefined : 'the last search failed (down)' }),
    };
  }
  const answer = indexAnswer(
    'corp',
    {
      people: [person('app_alice'), person('APP_Bob'), person('app_carol', []), person('app_erin')],
      disabled: new Set(['uid=app_bob,ou=people,dc=x']),
      groups: new Map([['cn=db,ou=groups,dc=x', { dns: new Set<string>(), names: new Set<string>() }]]),
      references: 0,
      failedOver: [],
    },
    5_000,
    12,
  );

  it('names the condition and the entry, compares names case-insensitively, judges only the roles it covers and never group roles', () => {
    const snap = roles(role('app_alice'), role('app_bob'), role('app_carol'), role('app_dave'), role('app_readers', { login: false }), role('other_zed'), role('app_erin'));
    const out = disabledRole(snap, policy, sources(answer));
    expect(out.violations.map((v) => [v.role.role, v.condition, v.reason])).toEqual([
      ['app_bob', 'directory_disabled', 'directory corp: uid=APP_Bob,ou=people,dc=x matches disabledFilter (answer 1m0s old)'],
      ['app_carol', 'directory_not_in_group', 'directory corp: uid=app_carol,ou=people,dc=x is not a member of cn=db,ou=groups,dc=x (answer 1m0s old)'],
      ['app_dave', 'directory_missing', 'directory corp: no entry under userFilter has uid=app_dave (answer 1m0s old)'],
    ]);
    expect(out.directories).toEqual([{ directory: 'corp', answer }]);
  });

  it('decides nothing without a usable answer, and refuses one that disables more than the breaker allows at once', () => {
    const snap = roles(...Array.from({ length: 10 }, (_, i) => role(`app_gone${i}`)), role('app_alice'), role('app_erin'));
    expect(disabledRole(snap, policy, sources(undefined))).toEqual({ violations: [], directories: [] });
    const out = disabledRole(snap, policy, sources(answer));
    expect(out.violations).toEqual([]);
    expect(out.directories[0]?.refused).toBe(
      'on target default, policy ldap would disable 10 of the 12 covered roles at once (more than safety.maxFraction 0.5 and safety.minActions 5)',
    );
    // Every one of a few (fewer than minActions): a wrong roleAttribute looks like this, not a team leaving.
    const few = roles(role('app_x'), role('app_y'), role('app_z'));
    expect(disabledRole(few, policy, sources(answer)).directories[0]?.refused).toBe(
      'on target default, policy ldap would disable 3 of the 3 covered roles at once (every one of them: a wrong roleAttribute, baseDN or filter looks like this)',
    );
    // One of one is allowed: the last person of a small team may leave.
    expect(disabledRole(roles(role('app_x')), policy, sources(answer)).violations.map((v) => v.condition)).toEqual(['directory_missing']);
    // Exempt roles are not covered, and other conditions still act.
    const listed = { ...policy, disabledWhen: { ...policy.disabledWhen, roles: ['app_gone0'] } };
    expect(disabledRole(snap, listed, sources(answer)).violations.map((v) => [v.role.role, v.condition])).toEqual([['app_gone0', 'listed']]);
  });
});
