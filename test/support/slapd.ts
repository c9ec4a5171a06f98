/**
 * A throwaway OpenLDAP server for the directory tests: its own configuration, data and TLS
 * material under a temporary directory, ldap:// and ldaps:// on free loopback ports, a service
 * account pgwarden binds as, and Active Directory's page limit (at most 1,000 entries a page, no
 * more than that without paging). People and groups are added with the real `ldapadd` and
 * `ldapmodify` (Debian's ldap-utils; `.ci/run` installs them with slapd).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import { freePort } from './net.js';

const run = promisify(execFile);

export const BASE_DN = 'dc=corp,dc=example';
export const PEOPLE_DN = `ou=people,${BASE_DN}`;
export const GROUPS_DN = `ou=groups,${BASE_DN}`;
export const ADMIN_DN = `cn=admin,${BASE_DN}`;
export const SERVICE_DN = `cn=pgwarden,ou=services,${BASE_DN}`;
/** Test-only secrets: the admin's and the service account's. */
export const ADMIN_PASSWORD = 'admin-secret';
export const SERVICE_PASSWORD = 'svc-Pa55:word@/?';

export interface Slapd {
  readonly url: string;
  readonly ldapsUrl: string;
  /** The CA that signed the server's certificate, and one that did not. */
  readonly caFile: string;
  readonly wrongCaFile: string;
  readonly dir: string;
  /** Runs `ldapadd` (as the admin) with this LDIF. */
  add(ldif: string): Promise<void>;
  /** Runs `ldapmodify` (as the admin) with this LDIF. */
  modify(ldif: string): Promise<void>;
  /** Stops the server (the data stays: `start` brings it back on the same ports). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes everything. */
  destroy(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A CA and a server certificate for 127.0.0.1 signed by it; and another CA. */
async function makeCertificates(dir: string): Promise<void> {
  for (const ca of ['ca', 'wrong-ca']) {
    await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=pgwarden test ${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`], dir);
  }
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr'], dir);
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.cnf', '-out', 'server.pem'], dir);
}

function slapdConf(dir: string): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile ${dir}/ca.pem
TLSCertificateFile ${dir}/server.pem
TLSCertificateKeyFile ${dir}/server.key
database mdb
maxsize 268435456
suffix "${BASE_DN}"
rootdn "${ADMIN_DN}"
rootpw ${ADMIN_PASSWORD}
directory ${dir}/data
# Active Directory's MaxPageSize: 1,000 entries a page, and no more than that without paging.
limits users size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`slapd did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

const SEED = `dn: ${BASE_DN}
objectClass: dcObject
objectClass: organization
dc: corp
o: Example

dn: ou=people,${BASE_DN}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${BASE_DN}
objectClass: organizationalUnit
ou: groups

dn: ou=services,${BASE_DN}
objectClass: organizationalUnit
ou: services

dn: ${SERVICE_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: pgwarden
userPassword: ${SERVICE_PASSWORD}
`;

/** Starts a fresh server with the base entries and the service account. Throws when slapd is not installed. */
export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-slapd-'));
  mkdirSync(join(dir, 'data'));
  await makeCertificates(dir);
  writeFileSync(join(dir, 'slapd.conf'), slapdConf(dir));
  const [port, tlsPort] = [await freePort(), await freePort()];
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${tlsPort}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn('/usr/sbin/slapd', ['-f', join(dir, 'slapd.conf'), '-h', `${url}/ ${ldapsUrl}/`, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child = proc;
    try {
      await waitForPort(port, 10_000);
      await waitForPort(tlsPort, 10_000);
    } catch (err) {
      proc.kill('SIGKILL');
      throw new Error(`${(err as Error).message}: ${stderr}`);
    }
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const ldap = async (tool: 'ldapadd' | 'ldapmodify', ldif: string) => {
    const file = join(dir, `change-${Date.now()}-${Math.random().toString(36).slice(2)}.ldif`);
    writeFileSync(file, ldif);
    try {
      await run(tool, ['-x', '-H', url, '-D', ADMIN_DN, '-w', ADMIN_PASSWORD, '-f', file], { maxBuffer: 64 * 1024 * 1024 });
    } finally {
      rmSync(file, { force: true });
    }
  };
  await start();
  await ldap('ldapadd', SEED);
  return {
    url,
    ldapsUrl,
    caFile: join(dir, 'ca.pem'),
    wrongCaFile: join(dir, 'wrong-ca.pem'),
    dir,
    add: (ldif) => ldap('ldapadd', ldif),
    modify: (ldif) => ldap('ldapmodify', ldif),
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** LDIF of a person under ou=people (inetOrgPerson), `disabled` as employeeType, `department` as departmentNumber. */
export function personLdif(uid: string, options: { disabled?: boolean; department?: string } = {}): string {
  return `dn: uid=${uid},${PEOPLE_DN}
objectClass: inetOrgPerson
uid: ${uid}
cn: ${uid}
sn: ${uid}
${options.disabled ? 'employeeType: disabled\n' : ''}${options.department ? `departmentNumber: ${options.department}\n` : ''}`;
}

/** LDIF of a groupOfNames under ou=groups holding these uids (a groupOfNames needs one member at least). */
export function groupLdif(cn: string, uids: readonly string[]): string {
  const members = uids.length > 0 ? uids.map((u) => `member: uid=${u},${PEOPLE_DN}`) : [`member: ${SERVICE_DN}`];
  return `dn: cn=${cn},${GROUPS_DN}\nobjectClass: groupOfNames\ncn: ${cn}\n${members.join('\n')}\n`;
}
