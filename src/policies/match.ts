/**
 * `match`: which sessions a policy looks at, by role, database and application globs, minus
 * `exclude`. Empty lists mean no filter. Compiled once per policy and cached.
 */
import { compileGlobs, type GlobMatcher } from '../config/glob.js';
import type { Match } from '../config/policies.js';

interface CompiledMatch {
  readonly roles: GlobMatcher | undefined;
  readonly databases: GlobMatcher | undefined;
  readonly applications: GlobMatcher | undefined;
  readonly excludeRoles: GlobMatcher | undefined;
  readonly excludeDatabases: GlobMatcher | undefined;
  readonly excludeApplications: GlobMatcher | undefined;
}

const cache = new WeakMap<Match, CompiledMatch>();

const orNone = (globs: readonly string[]) => (globs.length > 0 ? compileGlobs(globs) : undefined);

function compile(match: Match): CompiledMatch {
  let compiled = cache.get(match);
  if (!compiled) {
    compiled = {
      roles: orNone(match.roles),
      databases: orNone(match.databases),
      applications: orNone(match.applications),
      excludeRoles: orNone(match.exclude.roles),
      excludeDatabases: orNone(match.exclude.databases),
      excludeApplications: orNone(match.exclude.applications),
    };
    cache.set(match, compiled);
  }
  return compiled;
}

/** True when a session (or role, with database and application left undefined) is in scope. */
export function matches(match: Match, subject: { role: string | null; database?: string | null; application?: string | null }): boolean {
  const m = compile(match);
  if (m.roles && !m.roles(subject.role)) return false;
  if (m.databases && subject.database !== undefined && !m.databases(subject.database)) return false;
  if (m.applications && subject.application !== undefined && !m.applications(subject.application)) return false;
  if (m.excludeRoles?.(subject.role)) return false;
  if (m.excludeDatabases && subject.database !== undefined && m.excludeDatabases(subject.database)) return false;
  if (m.excludeApplications && subject.application !== undefined && m.excludeApplications(subject.application)) return false;
  return true;
}

/**
 * `matches` for roles alone, compiled once: a role policy asks it for every role (10,000 on a
 * large server), so it skips the per-call subject object and cache lookup.
 */
export function roleMatcher(match: Match): (role: string) => boolean {
  const m = compile(match);
  const { roles, excludeRoles } = m;
  if (!roles && !excludeRoles) return () => true;
  return (role) => (!roles || roles(role)) && !excludeRoles?.(role);
}
