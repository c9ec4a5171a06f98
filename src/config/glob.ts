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
    else source += ch.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

/** True when `name` matches any of `globs`. */
export function compileGlobs(globs: readonly string[]): GlobMatcher {
  const patterns = globs.map(globToRegExp);
  return (name) => name != null && patterns.some((p) => p.test(name));
}

/** Why a glob is unusable, or undefined when it is fine. */
export function globProblem(glob: unknown): string | undefined {
  if (typeof glob !== 'string') return `${JSON.stringify(glob)} is not a string`;
  if (glob.length === 0) return 'an empty pattern matches nothing; remove it';
  if (glob.length > 1024) return 'pattern is longer than 1024 characters';
  return undefined;
}
