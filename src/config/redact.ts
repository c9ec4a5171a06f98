/**
 * Secrets never reach a log or the terminal: a connection string keeps its user, host and
 * database but its password (in the authority or as `?password=`) becomes `***`. A database URL
 * that the connection code would read differently from what its author meant (a password with a
 * raw `/`, `@`, `?` or `#` moves the host into the password or the password into the host) is
 * refused before anything connects, without echoing it.
 */

export const REDACTED = '***';

const POSTGRES_SCHEME = /^postgres(?:ql)?:\/\//;

/**
 * `?password=` up to the next `&name=`: a raw `&` or `#` inside the value must not cut the
 * redaction short.
 */
const QUERY_PASSWORD = /([?&]password=)[^&]*(?:&(?![\w.-]*=)[^&]*)*/gi;
const QUERY_PASSWORD_IN_TEXT = /([?&]password=)[^&\s]*(?:&(?![\w.-]*=)[^&\s]*)*/gi;

/**
 * Replaces the password of one `scheme://…` token. The userinfo ends at the *last* `@`: a
 * well-formed URL has at most one, and in a malformed one every raw delimiter before it may
 * belong to the password. The password starts after the first `:` following `//`. This can
 * redact more than the password of a malformed URL (never less).
 */
function redactUserinfo(url: string): string {
  const start = url.indexOf('//') + 2;
  const at = url.lastIndexOf('@');
  if (at < start) return url;
  const colon = url.indexOf(':', start);
  if (colon === -1 || colon > at) return url;
  return `${url.slice(0, colon + 1)}${REDACTED}${url.slice(at)}`;
}

/** The URL with any password replaced by `***`; text that is not a URL is returned unchanged. */
export function redactUrl(url: string): string {
  const out = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? redactUserinfo(url) : url;
  return out.replace(QUERY_PASSWORD, `$1${REDACTED}`);
}

/** Replaces every postgres URL's password inside free text (error messages, stack traces). */
export function redactText(text: string): string {
  // A URL in text runs to the next whitespace: quotes may be part of a password.
  return text
    .replace(/postgres(?:ql)?:\/\/\S*/gi, (url) => redactUserinfo(url))
    .replace(QUERY_PASSWORD_IN_TEXT, `$1${REDACTED}`)
    .replace(/(password\s*=\s*)('[^']*'|\S+)/gi, `$1${REDACTED}`);
}

/** What the user is told when the user or password of a URL holds a raw reserved character. */
const ENCODE_USERINFO =
  'not a well-formed URL: percent-encode reserved characters in the user and password ' +
  '(/ as %2F, @ as %40, : as %3A, ? as %3F, # as %23, % as %25, a space as %20; encodeURIComponent does it)';

function decodes(text: string, decode: (s: string) => string): boolean {
  try {
    decode(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why `url` is not a database URL the connection code (pg-connection-string: WHATWG `new URL`,
 * then percent-decoding) reads as written, or undefined when it is. The answer never quotes the
 * URL, nor says which character of it is wrong: that could describe the password.
 *
 * The rule, with the authority being the text between `//` and the first `/`, `?` or `#`:
 * - no whitespace or control character, and every `%` starts a `%XX` escape (otherwise
 *   pg-connection-string re-encodes the whole string, and a correctly encoded password with it);
 * - no `#` at all (the rest would be dropped as a fragment);
 * - at most one `@`, and it is in the authority: a raw `/`, `?` or `#` in the password ends the
 *   authority early and leaves the `@` after it, making part of the password the host; two `@`
 *   are read differently by WHATWG (last) and libpq (first);
 * - at most one `:` in the user and password (the separator), whose escapes decode to UTF-8;
 * - the rest parses as pg-connection-string parses it: host, port, database.
 * A literal `%41` in a password cannot be told from an encoded `A`: it must be written `%2541`.
 */
export function databaseUrlProblem(url: string): string | undefined {
  if (!POSTGRES_SCHEME.test(url)) return 'must be a postgres:// or postgresql:// URL';
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(url) || /%(?![0-9a-f]{2})/i.test(url) || url.includes('#')) return ENCODE_USERINFO;
  const rest = url.slice(url.indexOf('//') + 2);
  const end = rest.search(/[/?]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const after = end === -1 ? '' : rest.slice(end);
  const ats = authority.split('@').length - 1;
  if (ats > 1 || after.includes('@')) return ENCODE_USERINFO;
  if (ats === 1) {
    const userinfo = authority.slice(0, authority.indexOf('@'));
    const parts = userinfo.split(':');
    if (parts.length > 2 || !parts.every((p) => decodes(p, decodeURIComponent))) return ENCODE_USERINFO;
  }
  return parseProblem(url, authority.slice(authority.indexOf('@') + 1));
}

/** What pg-connection-string does with a URL that passed the checks above (it would throw). */
function parseProblem(url: string, hostPort: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    try {
      // pg-connection-string's retry: `user@/db?host=/dir` (no host in the authority).
      parsed = new URL(url.replace('@/', '@___DUMMY___/'));
    } catch {
      if (hostPort.includes(',')) {
        return 'not a well-formed URL: several hosts (host1:port1,host2:port2) are not supported, give one host[:port]';
      }
      return 'not a well-formed URL: the host or port is not valid (one host[:port], an IPv6 address as [addr]:port, or a socket directory as ?host=/dir or %2F-encoded in place of the host)';
    }
  }
  if (!decodes(parsed.hostname, decodeURIComponent)) {
    return 'not a well-formed URL: a %XX escape in the host is not UTF-8';
  }
  if (!decodes(parsed.pathname, decodeURI)) {
    return 'not a well-formed URL: a %XX escape in the database name is not UTF-8';
  }
  return undefined;
}
