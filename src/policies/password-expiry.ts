/**
 * `password_expiry`: login roles whose rolvaliduntil is within warnWithin (`expiring`) or past
 * (`expired`); with requireExpiry, a login role with no expiry (NULL or infinity) too
 * (`no_expiry`). Reports only, unless `action: nologin`: then a role expired longer than `grace`
 * is made NOLOGIN. rolvaliduntil only limits password logins: an expired role may still be
 * connected, and may log in by certificate or trust — the reason says so when it has sessions.
 */
import type { PolicyCommon } from '../config/reader.js';
import { formatSeconds } from '../config/duration.js';
import type { RoleKindModule } from './kind.js';
import { matches } from './match.js';
import type { RoleSnapshot } from '../db/snapshot.js';
import { roleMatcher } from './match.js';
import { sortByRole, type RoleViolation } from './types.js';

export interface PasswordExpiryPolicy extends PolicyCommon {
  readonly kind: 'password_expiry';
  readonly warnWithinSeconds: number;
  readonly requireExpiry: boolean;
  readonly action: 'report' | 'nologin';
  /** With action nologin: how long past expiry before the role is disabled. */
  readonly graceSeconds: number;
}

function sessionsNote(sessions: number): string {
  if (sessions === 0) return '';
  return `; it still has ${sessions} session${sessions > 1 ? 's' : ''}: rolvaliduntil only limits password logins, so open sessions stay and certificate or trust logins still work`;
}

export function passwordExpiry(snapshot: RoleSnapshot, policy: PasswordExpiryPolicy): RoleViolation[] {
  const out: RoleViolation[] = [];
  const inScope = roleMatcher(policy.match);
  for (const role of snapshot.roles) {
    if (!role.login) continue;
    const left = role.validSeconds;
    // Most roles are far from expiry: decided before any name is looked at.
    if (left !== null && left > policy.warnWithinSeconds) continue;
    if (left === null && !policy.requireExpiry) continue;
    if (role.role.startsWith('pg_') || !inScope(role.role)) continue;
    const base = { target: snapshot.target, policy: policy.name, kind: policy.kind, role };
    if (left === null) {
      if (policy.requireExpiry) {
        out.push({ ...base, condition: 'no_expiry', reason: 'login role with no password expiry (VALID UNTIL unset or infinity)', actions: [] });
      }
      continue;
    }
    if (left === -Infinity) {
      // -infinity: password logins are refused for good, longer ago than any grace; there is no age.
      const disable = policy.action === 'nologin';
      out.push({
        ...base,
        condition: 'expired',
        reason: `VALID UNTIL -infinity: password logins are refused for good${sessionsNote(role.sessions)}`,
        actions: disable ? ['nologin'] : [],
      });
    } else if (left < 0) {
      const past = -left;
      const disable = policy.action === 'nologin' && past > policy.graceSeconds;
      out.push({
        ...base,
        condition: 'expired',
        seconds: past,
        ...(policy.action === 'nologin' ? { overSeconds: past - policy.graceSeconds } : {}),
        reason: `password expired ${formatSeconds(past)} ago${disable ? `, past the grace of ${formatSeconds(policy.graceSeconds)}` : ''}${sessionsNote(role.sessions)}`,
        actions: disable ? ['nologin'] : [],
      });
    } else if (left <= policy.warnWithinSeconds) {
      out.push({ ...base, condition: 'expiring', seconds: left, reason: `password expires in ${formatSeconds(left)}`, actions: [] });
    }
  }
  return sortByRole(out);
}

export const passwordExpiryKind: RoleKindModule<PasswordExpiryPolicy> = {
  kind: 'password_expiry',
  on: 'roles',
  read: (item, common) => {
    const action = item.oneOf('action', ['report', 'nologin'], 'report');
    const grace = item.optionalSeconds('grace');
    if (grace !== undefined && action !== 'nologin') item.fail('grace', 'only makes sense with action: nologin');
    return {
      ...common,
      kind: 'password_expiry',
      warnWithinSeconds: item.seconds('warnWithin', '14d'),
      requireExpiry: item.boolean('requireExpiry', false),
      action,
      graceSeconds: grace ?? 0,
    };
  },
  evaluate: (roles, policy) => ({ violations: passwordExpiry(roles, policy), directories: [] }),
  actions: (policy) => (policy.action === 'nologin' ? ['nologin'] : []),
  needs: (policy) => ({ readsSessions: false, signals: false, altersRoles: policy.action === 'nologin', revokesConnect: false, revokesPrivileges: false }),
  initMetrics: (metrics, target, policy) => metrics.rolesExpiring.set({ target, policy: policy.name }, 0),
  record: (metrics, target, policy, violations) => {
    const expiring = violations.filter((v) => v.condition === 'expiring' || v.condition === 'expired').length;
    metrics.rolesExpiring.set({ target, policy: policy.name }, expiring);
  },
  requiresExpiry: (policy, role) => policy.requireExpiry && matches(policy.match, { role }),
};
