/**
 * Globs on role, database and application names: `*` any run of characters, `?` one character,
 * everything else literal (names may hold any character, regex metacharacters included).
 */

/** A compiled glob list: empty means "no filter". */
export type GlobMatcher = (name: string | null | undefined) => boolean;

function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    // Only the characters that are syntax in a `u`-mode pattern may be escaped there.
    else source += ch.replace(/[\\^$.|+()[\]{}/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

const compiled = new WeakMap<readonly string[], GlobMatcher>();

/** A matcher: true when `name` matches any of `globs`. Compiled once per (frozen) list. */
export function compileGlobs(globs: readonly string[]): GlobMatcher {
  let matcher = compiled.get(globs);
  if (!matcher) {
    const patterns = globs.map(globToRegExp);
    matcher = (name) => name != null && patterns.some((p) => p.test(name));
    compiled.set(globs, matcher);
  }
  return matcher;
}

/** Why a glob is unusable, or undefined when it is fine. */
export function globProblem(glob: unknown): string | undefined {
  if (typeof glob !== 'string') return `${JSON.stringify(glob)} is not a string`;
  if (glob.length === 0) return 'an empty pattern matches nothing; remove it';
  if (glob.length > 1024) return 'pattern is longer than 1024 characters';
  return undefined;
}
