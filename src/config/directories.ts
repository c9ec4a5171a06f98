/**
 * Item-by-item validation of `directories` (DESIGN.md): the LDAP servers a role policy may ask
 * whether a person is disabled, gone, or out of a group. Every error names its key. The bind
 * password comes from the environment (`PGWARDEN_DIRECTORY_<NAME>_BIND_PASSWORD`), a file
 * (`bindPasswordFile`, a mounted Kubernetes Secret) or the key itself, and is never echoed.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { ldapts } from '../lazy.js';
import { ItemReader } from './reader.js';

/** One directory, compiled: durations in milliseconds, URLs split, the password resolved. */
export interface DirectoryConfig {
  readonly name: string;
  /** ldap:// or ldaps:// URLs, tried in order (failover). */
  readonly urls: readonly string[];
  /** Empty: an anonymous bind. */
  readonly bindDN: string;
  /** Where the password is read from at each search (a rotated Secret needs no restart). */
  readonly bindPasswordSource: PasswordSource;
  readonly baseDN: string;
  /** Who is a person the directory speaks for (an LDAP filter, RFC 4515). */
  readonly userFilter: string;
  /** Which of them are disabled; empty when no policy asks. */
  readonly disabledFilter: string;
  /** The attribute that holds the role name (uid; sAMAccountName on Active Directory). */
  readonly roleAttribute: string;
  /** Globs of the role names this directory judges. */
  readonly roles: readonly string[];
  readonly refreshMs: number;
  /** Fewer entries under userFilter than this is an outage, not a mass departure (at least 1). */
  readonly minEntries: number;
  readonly tls: { readonly caFile: string; readonly insecureSkipVerify: boolean };
  /** Bound on one whole search (connect, bind, every page, the groups), milliseconds. */
  readonly timeoutMs: number;
}

/** Where a bind password comes from (never the password itself in anything printed). */
export type PasswordSource =
  | { readonly from: 'none' }
  | { readonly from: 'env'; readonly variable: string; readonly value: string }
  | { readonly from: 'file'; readonly path: string }
  | { readonly from: 'config'; readonly value: string };

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/** The environment variable holding directory `name`'s bind password. */
export function bindPasswordVariable(name: string): string {
  return `PGWARDEN_DIRECTORY_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_BIND_PASSWORD`;
}

/** Where a bind password comes from, in words for messages (never the password). */
export function passwordOrigin(source: PasswordSource): string {
  switch (source.from) {
    case 'env':
      return `env ${source.variable}`;
    case 'file':
      return `bindPasswordFile ${source.path}`;
    case 'config':
      return 'bindPassword';
    case 'none':
      return 'none (anonymous bind)';
  }
}

/**
 * The bind password of `source`, read now (a file is read at every search). Throws an Error
 * naming the file (never its content) when it cannot be read.
 */
export function readBindPassword(source: PasswordSource): string {
  switch (source.from) {
    case 'none':
      return '';
    case 'env':
    case 'config':
      return source.value;
    case 'file':
      // A Secret file usually ends with a newline nobody meant as part of the password.
      return readFileSync(source.path, 'utf8').replace(/\r?\n$/, '');
  }
}

/** Why `filter` is not an LDAP filter (RFC 4515), or undefined: parsed as the search will parse it. */
export function filterProblem(filter: string): string | undefined {
  if (!filter.startsWith('(')) return 'must be an LDAP filter in parentheses, e.g. (objectClass=person)';
  // The parser forgives an unclosed "(&(a=b)": count them first (a `\` escapes the next two hex digits).
  let depth = 0;
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i];
    if (ch === '\\') i += 2;
    else if (ch === '(') depth += 1;
    else if (ch === ')' && --depth === 0 && i !== filter.length - 1) return 'must be one LDAP filter (combine several with (&…) or (|…))';
  }
  if (depth !== 0 || !filter.endsWith(')')) return 'has unbalanced parentheses';
  try {
    ldapts().FilterParser.parseString(filter);
    return undefined;
  } catch (err) {
    return `is not an LDAP filter (${(err as Error).message.replace(/\.? *Full string:.*$/s, '')})`;
  }
}

/**
 * Why `dn` is not a distinguished name (RFC 4514: `attr=value` parts separated by commas), or
 * undefined. A light check — the server has the last word — that catches `bindDN: pgwarden` and
 * `ou=people dc=corp` at load instead of at the first search.
 */
export function dnProblem(dn: string): string | undefined {
  const parts = dn.replace(/\\./g, 'x').split(/(?<!\\)[,;]/);
  for (const part of parts) {
    if (!/^\s*[A-Za-z][A-Za-z0-9-]*\s*=[^=]*$|^\s*[0-9.]+\s*=[^=]*$/.test(part)) return `is not a DN (attr=value parts separated by commas, e.g. cn=pgwarden,ou=services,dc=corp,dc=example)`;
  }
  return undefined;
}

/** Why `url` is not a usable ldap:// or ldaps:// URL, or undefined. */
function urlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL with a host (and an optional port)';
  }
  if (parsed.protocol !== 'ldap:' && parsed.protocol !== 'ldaps:') return 'is not an ldap:// or ldaps:// URL';
  if (parsed.hostname === '') return 'has no host';
  if ((parsed.pathname !== '' && parsed.pathname !== '/') || parsed.search !== '' || parsed.hash !== '') {
    return 'holds a path or query: give the base DN as baseDN, the URL only as ldap(s)://host:port';
  }
  return undefined;
}

function readFilter(item: ItemReader, name: string, fallback?: string): string {
  const value = item.string(name, fallback);
  const problem = filterProblem(value);
  if (problem) item.fail(name, `${JSON.stringify(value)} ${problem}`);
  return value;
}

function readPassword(item: ItemReader, name: string, env: NodeJS.ProcessEnv): PasswordSource {
  const variable = bindPasswordVariable(name);
  const inConfig = item.has('bindPassword') ? item.raw('bindPassword') : (item.raw('bindPassword'), '');
  if (typeof inConfig !== 'string') item.fail('bindPassword', 'must be a string (better: the environment or bindPasswordFile)');
  const file = item.has('bindPasswordFile') ? item.string('bindPasswordFile') : (item.raw('bindPasswordFile'), '');
  if (file !== '' && inConfig !== '') item.fail('bindPasswordFile', 'set either bindPassword or bindPasswordFile, not both');
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv !== '') return { from: 'env', variable, value: fromEnv };
  if (file !== '') {
    const source: PasswordSource = { from: 'file', path: file };
    try {
      readBindPassword(source);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      item.fail('bindPasswordFile', `${JSON.stringify(file)} cannot be read (${code})`);
    }
    return source;
  }
  return inConfig !== '' ? { from: 'config', value: inConfig } : { from: 'none' };
}

function readDirectory(doc: unknown, path: string, env: NodeJS.ProcessEnv): DirectoryConfig {
  const item = new ItemReader(doc, path);
  const name = item.string('name');
  if (!NAME.test(name)) item.fail('name', `${JSON.stringify(name)} must start with a letter and hold only letters, digits, '_', '-' (at most 63)`);
  const urls = item.string('url').split(/\s+/).filter(Boolean);
  urls.forEach((url) => {
    // Never echoed when it holds an `@`: it may carry a user and password, which belong in bindDN and a Secret.
    if (url.includes('@')) item.fail('url', 'must not hold a user or password (give bindDN, and the password from the environment or bindPasswordFile)');
    const problem = urlProblem(url);
    if (problem) item.fail('url', `${JSON.stringify(url)} ${problem} (several URLs are separated by spaces)`);
  });
  const bindDN = item.has('bindDN') ? item.string('bindDN') : (item.raw('bindDN'), '');
  const bindDnProblem = bindDN === '' ? undefined : dnProblem(bindDN);
  if (bindDnProblem) item.fail('bindDN', `${JSON.stringify(bindDN)} ${bindDnProblem}`);
  const bindPasswordSource = readPassword(item, name, env);
  if (bindDN === '' && bindPasswordSource.from !== 'none') item.fail('bindDN', 'is required when a bind password is given');
  if (bindDN !== '' && bindPasswordSource.from === 'none') {
    // An empty password with a DN is an "unauthenticated bind" (RFC 4513 5.1.2): servers accept
    // it as anonymous, which would hide a missing Secret until the search finds nothing.
    const empty = env[bindPasswordVariable(name)] === '' ? ` (${bindPasswordVariable(name)} is set but empty)` : '';
    item.fail('bindPassword', `is required with bindDN (set ${bindPasswordVariable(name)}, bindPasswordFile or bindPassword)${empty}`);
  }
  const baseDN = item.string('baseDN');
  const baseDnProblem = dnProblem(baseDN);
  if (baseDnProblem) item.fail('baseDN', `${JSON.stringify(baseDN)} ${baseDnProblem}`);
  const userFilter = readFilter(item, 'userFilter', '(objectClass=person)');
  const disabledFilter = item.has('disabledFilter') ? readFilter(item, 'disabledFilter') : (item.raw('disabledFilter'), '');
  const roleAttribute = item.string('roleAttribute', 'uid');
  if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(roleAttribute)) item.fail('roleAttribute', `${JSON.stringify(roleAttribute)} is not an attribute name`);
  const roles = item.has('roles') ? item.globs('roles') : (item.raw('roles'), ['*']);
  if (roles.length === 0) item.fail('roles', 'an empty list judges no role; remove the directory or list role patterns');
  const refreshMs = Math.round(item.seconds('refresh', '5m') * 1000);
  if (refreshMs < 1000) item.fail('refresh', 'must be at least 1s');
  const minEntries = item.positiveInt('minEntries', 1);
  const tlsItem = item.child('tls');
  const tls = {
    caFile: tlsItem?.has('caFile') ? tlsItem.string('caFile') : (tlsItem?.raw('caFile'), ''),
    insecureSkipVerify: tlsItem?.boolean('insecureSkipVerify', false) ?? false,
  };
  tlsItem?.rejectUnknown();
  if (tls.caFile !== '') {
    try {
      readFileSync(tls.caFile);
    } catch (err) {
      tlsItem?.fail('caFile', `${JSON.stringify(tls.caFile)} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  }
  const timeoutMs = Math.round(item.seconds('timeout', '10s') * 1000);
  item.rejectUnknown();
  return { name, urls, bindDN, bindPasswordSource, baseDN, userFilter, disabledFilter, roleAttribute, roles, refreshMs, minEntries, tls, timeoutMs };
}

/** Validates and compiles `directories`; names must be unique. Throws ConfigError naming the key. */
export function compileDirectories(docs: readonly unknown[], env: NodeJS.ProcessEnv): DirectoryConfig[] {
  // Two names with one password variable (corp-a, corp_a) would share a password unseen.
  const seen = new Map<string, number>();
  return docs.map((doc, i) => {
    const directory = readDirectory(doc, `directories[${i}]`, env);
    const variable = bindPasswordVariable(directory.name);
    const earlier = seen.get(variable);
    if (earlier !== undefined) {
      throw new ConfigError(`directories[${i}].name: ${JSON.stringify(directory.name)} takes its password from ${variable}, as directories[${earlier}] does: choose another name`);
    }
    seen.set(variable, i);
    return directory;
  });
}
