/**
 * Searching one directory (I/O, through ldapts): connect to the first URL that answers, bind,
 * read the people under `userFilter` page by page (Active Directory returns at most 1,000 entries
 * a page, OpenLDAP its size limit), then the disabled among them and the members of each group a
 * policy asks about. The whole search is bounded by the directory's `timeout`. The password is
 * read at each search and never put in an error.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { Client, Entry } from 'ldapts';
import { passwordOrigin, readBindPassword, type DirectoryConfig } from '../config/directories.js';
import { ldapts } from '../lazy.js';
import { isGroupFilter, normalizeDn, type DirectoryPerson, type SearchResult } from './answer.js';

/** Entries asked for per page: under Active Directory's MaxPageSize (1,000) and OpenLDAP's default size limit (500). */
export const PAGE_SIZE = 500;

/** A search that failed, with a message fit for a log line and a metric's reason (no secret in it). */
export class DirectorySearchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectorySearchError';
  }
}

/** One URL ran out of its share of the timeout: the next URL is tried. */
class SearchTimeout extends Error {}

function values(entry: Entry, attribute: string): string[] {
  // ldapts returns attribute names as the server spells them: find it case-insensitively.
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const value = key === undefined ? undefined : entry[key];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
}

function tlsOptions(config: DirectoryConfig): ConnectionOptions {
  return {
    ...(config.tls.caFile !== '' ? { ca: readFileSync(config.tls.caFile) } : {}),
    rejectUnauthorized: !config.tls.insecureSkipVerify,
    minVersion: 'TLSv1.2',
  };
}

/** Why an LDAP call failed, in words, for `url`. */
function describe(url: string, err: unknown): string {
  if (err instanceof ldapts().InvalidCredentialsError) return `${url}: bind refused (invalid credentials)`;
  if (err instanceof ldapts().NoSuchObjectError) return `${url}: no such entry (${err.message})`;
  const e = err as NodeJS.ErrnoException & { code?: unknown };
  const message = e.message ?? String(err);
  const code = typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ` : '';
  return `${url}: ${code}${message}`;
}

/** True for errors where the next URL may do better (the server is not there or not talking). */
function isConnectionError(err: unknown): boolean {
  if (err instanceof ldapts().InvalidCredentialsError || err instanceof ldapts().NoSuchObjectError) return false;
  const e = err as { code?: unknown; name?: string; message?: string };
  return typeof e.code === 'string' || /timeout|timed out|connection|socket|ECONN|closed/i.test(`${e.name ?? ''} ${e.message ?? ''}`);
}

async function searchOn(client: Client, config: DirectoryConfig, groups: readonly string[]): Promise<Omit<SearchResult, 'failedOver'>> {
  if (config.bindDN !== '') {
    try {
      await client.bind(config.bindDN, readBindPassword(config.bindPasswordSource));
    } catch (err) {
      if (err instanceof ldapts().InvalidCredentialsError) {
        throw new DirectorySearchError(`bind as ${JSON.stringify(config.bindDN)} refused (invalid credentials; the password from ${passwordOrigin(config.bindPasswordSource)})`);
      }
      throw err;
    }
  }
  const paged = { pageSize: PAGE_SIZE };
  let found;
  try {
    found = await client.search(config.baseDN, {
      scope: 'sub',
      filter: config.userFilter,
      attributes: [...new Set([config.roleAttribute, 'uid', 'memberOf'])],
      paged,
    });
  } catch (err) {
    if (err instanceof ldapts().NoSuchObjectError) {
      const who = config.bindDN === '' ? 'an anonymous bind' : JSON.stringify(config.bindDN);
      throw new DirectorySearchError(`baseDN ${JSON.stringify(config.baseDN)} does not exist, or ${who} may not see it`);
    }
    throw err;
  }
  const people: DirectoryPerson[] = found.searchEntries.map((e) => ({
    dn: e.dn,
    names: values(e, config.roleAttribute),
    uids: values(e, 'uid'),
    memberOf: values(e, 'memberOf'),
  }));
  const peopleDns = new Set(people.map((p) => normalizeDn(p.dn)));
  const dnsOf = async (filter: string) =>
    new Set((await client.search(config.baseDN, { scope: 'sub', filter, attributes: ['1.1'], paged })).searchEntries.map((e) => normalizeDn(e.dn)));
  const disabled = config.disabledFilter !== '' ? await dnsOf(`(&${config.userFilter}${config.disabledFilter})`) : new Set<string>();
  const members = new Map<string, { dns: ReadonlySet<string>; names: ReadonlySet<string> }>();
  for (const group of groups) {
    if (isGroupFilter(group)) {
      // Written as a filter (e.g. AD's LDAP_MATCHING_RULE_IN_CHAIN for nested groups): its people are the members.
      members.set(group, { dns: await dnsOf(`(&${config.userFilter}${group})`), names: new Set() });
      continue;
    }
    let entry: Entry | undefined;
    try {
      entry = (await client.search(group, { scope: 'base', filter: '(objectClass=*)', attributes: ['member', 'uniqueMember', 'memberUid'] })).searchEntries[0];
    } catch (err) {
      // A group that is not there would make everybody "not in group": a failed search, not a verdict.
      if (err instanceof ldapts().NoSuchObjectError) throw new DirectorySearchError(`group ${JSON.stringify(group)} (notInGroup) does not exist`);
      throw err;
    }
    if (!entry) throw new DirectorySearchError(`group ${JSON.stringify(group)} (notInGroup) cannot be read`);
    members.set(group, {
      dns: new Set([...values(entry, 'member'), ...values(entry, 'uniqueMember')].map(normalizeDn)),
      names: new Set(values(entry, 'memberUid').map((n) => n.toLowerCase())),
    });
  }
  // No people: the entry count says so (minEntries), not every group in turn.
  for (const [group, { dns, names }] of people.length > 0 ? members : new Map<string, { dns: ReadonlySet<string>; names: ReadonlySet<string> }>()) {
    // A group with none of the people in it — emptied, mistyped in a filter, its `member` hidden by
    // an ACL or returned in ranges — would put everyone "not in group": an outage, not a verdict.
    const uids = new Set(people.flatMap((p) => p.uids.map((u) => u.toLowerCase())));
    const memberOf = isGroupFilter(group) ? false : people.some((p) => p.memberOf.some((m) => normalizeDn(m) === normalizeDn(group)));
    if (!memberOf && ![...dns].some((dn) => peopleDns.has(dn)) && ![...names].some((n) => uids.has(n))) {
      throw new DirectorySearchError(`group ${JSON.stringify(group)} (notInGroup) has none of the ${people.length} people found as a member`);
    }
  }
  return { people, disabled, groups: members, references: found.searchReferences.length };
}

/**
 * Searches `config`'s directory: its URLs in order until one answers (a refused bind or a failed
 * search is not retried elsewhere), the whole bounded by `config.timeoutMs`, each URL by its
 * share of what is left. `groups` are the
 * `notInGroup` values the policies ask about (a DN, or a filter). Throws DirectorySearchError.
 */
export async function searchDirectory(config: DirectoryConfig, groups: readonly string[], signal?: AbortSignal): Promise<SearchResult> {
  const deadline = Date.now() + config.timeoutMs;
  const failures: string[] = [];
  for (const [i, url] of config.urls.entries()) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    if (signal?.aborted) throw new DirectorySearchError('stopped');
    // Each URL gets its share of what is left: a host that drops packets, or accepts and never
    // answers, must not use up the time of the URLs after it.
    const budget = Math.ceil(left / (config.urls.length - i));
    // ldapts speaks TLS on any URL given TLS options: only ldaps:// gets them.
    const secure = url.toLowerCase().startsWith('ldaps://');
    const client = new (ldapts().Client)({ url, timeout: budget, connectTimeout: budget, ...(secure ? { tlsOptions: tlsOptions(config) } : {}), strictDN: false });
    let timer: NodeJS.Timeout | undefined;
    try {
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SearchTimeout(`timed out after ${(budget / 1000).toFixed(1)}s`)), budget);
        // A stop does not wait for a hung server: the socket is closed below.
        signal?.addEventListener('abort', () => reject(new DirectorySearchError('stopped')), { once: true });
      });
      return { ...(await Promise.race([searchOn(client, config, groups), expired])), failedOver: [...failures] };
    } catch (err) {
      if (err instanceof SearchTimeout) {
        failures.push(`${url}: ${err.message}`);
        continue;
      }
      if (err instanceof DirectorySearchError) {
        failures.push(`${url}: ${err.message}`);
        throw new DirectorySearchError(failures.join('; '));
      }
      failures.push(describe(url, err));
      if (!isConnectionError(err)) throw new DirectorySearchError(failures.join('; '));
    } finally {
      clearTimeout(timer);
      // Not awaited: on a hung server the unbind would hang too; it closes the socket either way.
      client.unbind().catch(() => undefined);
    }
  }
  throw new DirectorySearchError(failures.length > 0 ? failures.join('; ') : `timed out after ${config.timeoutMs / 1000}s`);
}
