/**
 * Secrets never reach a log or the terminal: a connection string keeps its user, host and
 * database but its password (in the authority or as `?password=`) becomes `***`.
 */

export const REDACTED = '***';

/** The URL with any password replaced by `***`; text that is not a URL is returned unchanged. */
export function redactUrl(url: string): string {
  // Authority form: scheme://user:password@host — the password may itself contain ':' or '@'
  // when unencoded, so take everything up to the last '@' before the path.
  let out = url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):([^/?#]*)@/i, `$1:${REDACTED}@`);
  out = out.replace(/([?&]password=)[^&#]*/gi, `$1${REDACTED}`);
  return out;
}

/** Replaces every postgres URL's password inside free text (error messages, stack traces). */
export function redactText(text: string): string {
  return text
    .replace(/(postgres(?:ql)?:\/\/[^:/?#@\s]*):([^\s/?#]*)@/gi, `$1:${REDACTED}@`)
    .replace(/([?&]password=)[^&#\s]*/gi, `$1${REDACTED}`)
    .replace(/(password\s*=\s*)('[^']*'|\S+)/gi, `$1${REDACTED}`);
}
