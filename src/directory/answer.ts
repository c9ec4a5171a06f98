/**
 * What a directory said, and what that means for one role: pure. A search (search.ts) gives the
 * people under `userFilter` with their role names, which of them match `disabledFilter`, and
 * which are members of each group a policy asks about; `indexAnswer` turns that into a lookup
 * by role name (case-insensitive: directories compare uid and sAMAccountName so), and
 * `verdictOf` says what the directory holds about a role.
 */

/** One person as a search returned it. */
export interface DirectoryPerson {
  readonly dn: string;
  /** Values of roleAttribute (it may be multi-valued). */
  readonly names: readonly string[];
  /** Values of `uid`: what a posixGroup's `memberUid` names, whatever roleAttribute is. */
  readonly uids: readonly string[];
  /** The entry's own `memberOf` values (Active Directory, OpenLDAP's memberof overlay). */
  readonly memberOf: readonly string[];
}

/** The raw result of one search: people, the disabled among them, and the groups' members. */
export interface SearchResult {
  readonly people: readonly DirectoryPerson[];
  /** Normalised DNs (normalizeDn) of the people matching disabledFilter. */
  readonly disabled: ReadonlySet<string>;
  /**
   * Per group a policy asks about (its `notInGroup` as written): the normalised DNs of its
   * members, and for posixGroup the memberUid names (lower-cased).
   */
  readonly groups: ReadonlyMap<string, { readonly dns: ReadonlySet<string>; readonly names: ReadonlySet<string> }>;
  /** Search continuation references the server returned (referrals are not followed). */
  readonly references: number;
  /** The URLs tried before the one that answered, with why each failed. */
  readonly failedOver: readonly string[];
}

/** What the directory holds about one person, indexed by role name. */
export interface DirectoryEntry {
  readonly dn: string;
  readonly disabled: boolean;
  /** The groups (as the policies write them) this person belongs to. */
  readonly groups: ReadonlySet<string>;
}

/** The answer of one successful search. */
export interface DirectoryAnswer {
  readonly directory: string;
  /** When the search finished, ms since epoch. */
  readonly searchedAt: number;
  /** How long it took, ms. */
  readonly tookMs: number;
  /** Entries found under userFilter that hold a role name (pgwarden_directory_entries). */
  readonly entries: number;
  /** Lower-cased role name → entry. */
  readonly byRole: ReadonlyMap<string, DirectoryEntry>;
}

/**
 * What the directory says about one role (`pgwarden roles`' DIRECTORY column); `unknown` when
 * its last answer may not be used (failed, stale, refused).
 */
export type DirectoryVerdict = 'active' | 'disabled' | 'missing' | 'not_in_group' | 'unknown';

/**
 * A DN compared as directories compare them, for the common case: attribute types and values
 * case-insensitive, no spaces around `,`, `=` and `+` (RFC 4514 escapes kept as written).
 */
export function normalizeDn(dn: string): string {
  return dn
    .trim()
    .replace(/\s*(?<!\\)([,=+])\s*/g, '$1')
    .toLowerCase();
}

/** True when `notInGroup` is written as a filter (nested AD groups), not as a group's DN. */
export function isGroupFilter(group: string): boolean {
  return group.startsWith('(');
}

/**
 * Indexes a search result by role name. Two entries with the same name (a misconfigured
 * directory) make one that is disabled only when both are, and in a group when either is: the
 * ambiguity never locks anyone out.
 */
export function indexAnswer(directory: string, result: SearchResult, searchedAt: number, tookMs: number): DirectoryAnswer {
  const byRole = new Map<string, DirectoryEntry>();
  for (const person of result.people) {
    const dn = normalizeDn(person.dn);
    const memberOf = new Set(person.memberOf.map(normalizeDn));
    const lowerNames = person.names.map((n) => n.toLowerCase());
    if (lowerNames.length === 0) continue;
    const uids = person.uids.map((n) => n.toLowerCase());
    const groups = new Set<string>();
    for (const [group, members] of result.groups) {
      const inGroup = members.dns.has(dn) || (!isGroupFilter(group) && memberOf.has(normalizeDn(group))) || uids.some((n) => members.names.has(n));
      if (inGroup) groups.add(group);
    }
    const entry: DirectoryEntry = { dn: person.dn, disabled: result.disabled.has(dn), groups };
    for (const name of lowerNames) {
      const earlier = byRole.get(name);
      byRole.set(
        name,
        earlier
          ? { dn: earlier.dn, disabled: earlier.disabled && entry.disabled, groups: new Set([...earlier.groups, ...entry.groups]) }
          : entry,
      );
    }
  }
  return { directory, searchedAt, tookMs, entries: namedEntries(result), byRole };
}

/** The people of a result that hold a role name (those without one speak for no role). */
export function namedEntries(result: SearchResult): number {
  let count = 0;
  for (const person of result.people) if (person.names.length > 0) count += 1;
  return count;
}

/** The entry of `role` in `answer` (names compared case-insensitively), or undefined: the role is missing. */
export function entryOf(answer: DirectoryAnswer, role: string): DirectoryEntry | undefined {
  return answer.byRole.get(role.toLowerCase());
}

/**
 * What `answer` says about `role`, for display: `missing` (no entry), `disabled` (the entry
 * matches disabledFilter), `not_in_group` (not a member of `group`, when given), else `active`.
 * A policy tests each of its conditions on the entry itself (a disabled person out of the group
 * is both).
 */
export function verdictOf(answer: DirectoryAnswer, role: string, group?: string): Exclude<DirectoryVerdict, 'unknown'> {
  const entry = entryOf(answer, role);
  if (!entry) return 'missing';
  if (entry.disabled) return 'disabled';
  if (group !== undefined && !entry.groups.has(group)) return 'not_in_group';
  return 'active';
}
