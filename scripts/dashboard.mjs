#!/usr/bin/env node
// Generates deploy/grafana/pgwarden.json and the Helm chart's copy (helm/pgwarden/files/) from
// this one description, so the dashboard stays readable and consistent. `--check` exits 1 when a
// committed copy differs from what this script generates.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const outputs = ['../deploy/grafana/pgwarden.json', '../helm/pgwarden/files/pgwarden.json'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
const ds = { type: 'prometheus', uid: '${datasource}' };
const sel = 'target=~"$target"';
const sessionSel = `${sel}, database=~"$database", role=~"$role"`;

let nextId = 1;
let y = 0;

function row(title) {
  const panel = { type: 'row', title, id: nextId++, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] };
  y += 1;
  return panel;
}

// `id` pins a panel's id: a panel added between others takes the next free one (after the last
// panel's), so the ids of those after it, and links to them (?viewPanel=), stay as they were.
function panel(type, title, description, targets, { id, w = 12, h = 8, x = 0, unit, options = {}, fieldConfig = {}, overrides = [] } = {}) {
  const p = {
    type,
    title,
    description,
    id: id ?? nextId++,
    datasource: ds,
    gridPos: { h, w, x, y },
    targets: targets.map((t, i) => ({
      datasource: ds,
      refId: String.fromCharCode(65 + i),
      expr: t.expr,
      legendFormat: t.legend ?? '__auto',
      ...(t.instant ? { instant: true, range: false, format: 'table' } : { range: true }),
    })),
    fieldConfig: { defaults: { ...(unit ? { unit } : {}), ...fieldConfig }, overrides },
    options,
  };
  if (x + w >= 24) y += h;
  return p;
}

const panels = [
  row('Sessions'),
  panel('timeseries', 'Client sessions by state', 'pgwarden_sessions, summed by state (filtered by target, database, role).', [
    { expr: `sum by (state) (pgwarden_sessions{${sessionSel}})`, legend: '{{state}}' },
  ]),
  panel(
    'timeseries',
    'Oldest session and transaction',
    'Age of the oldest idle, idle-in-transaction and active session, and of the oldest open transaction.',
    [
      { expr: `max by (state) (pgwarden_session_oldest_seconds{${sel}, state=~"idle|idle in transaction.*|active"})`, legend: '{{state}}' },
      { expr: `max(pgwarden_transaction_oldest_seconds{${sel}})`, legend: 'oldest transaction' },
    ],
    { x: 12, unit: 's' },
  ),
  // Connection slots are the server's: the database and role filters do not apply. max by (target):
  // every replica exports both gauges from its own snapshot.
  panel(
    'timeseries',
    'Connection slots',
    'Per target (the highest of the replicas): pgwarden_connections, the client backends (pgwarden\'s own and those it cannot see included), ' +
      'against pgwarden_connections_usable, max_connections minus superuser_reserved_connections and (16+) reserved_connections. ' +
      'The dashed lines: usable, and each connection_pressure policy\'s above and target (pgwarden_connection_limit). ' +
      'When used reaches usable, new logins fail with "sorry, too many clients already". `pgwarden sessions --summary` lists the slots ' +
      'and the groups holding the most idle sessions. The database and role filters do not apply: the slots are the server\'s.',
    [
      { expr: `max by (target) (pgwarden_connections{${sel}})`, legend: '{{target}} used' },
      { expr: `max by (target) (pgwarden_connections_usable{${sel}})`, legend: '{{target}} usable' },
      // Each connection_pressure policy's own above and target, in client backends.
      { expr: `max by (target, policy, bound) (pgwarden_connection_limit{${sel}})`, legend: '{{target}} {{policy}} {{bound}}' },
    ],
    {
      id: 24,
      fieldConfig: { min: 0, decimals: 0 },
      overrides: [
        {
          matcher: { id: 'byRegexp', options: '.* (usable|above|target)$' },
          properties: [
            { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
            { id: 'custom.fillOpacity', value: 0 },
          ],
        },
      ],
    },
  ),
  panel(
    'timeseries',
    'Connection slots used (%)',
    'pgwarden_connections / pgwarden_connections_usable per target, in percent: what PgwardenConnectionsNearLimit alerts on (above 90 ' +
      'for 2 minutes). The lines at 80 and 90 mirror the example configuration\'s connection_pressure target (80%) and above (90%): ' +
      'set them to your policy\'s (Edit, Thresholds). Above 100: superusers (16+: members of pg_use_reserved_connections too) hold reserved slots.',
    [{ expr: `max by (target) (100 * pgwarden_connections{${sel}} / (pgwarden_connections_usable{${sel}} > 0))`, legend: '{{target}}' }],
    {
      id: 25,
      x: 12,
      unit: 'percent',
      fieldConfig: {
        min: 0,
        softMax: 100,
        custom: { thresholdsStyle: { mode: 'line' } },
        thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 80 }, { color: 'red', value: 90 }] },
      },
    },
  ),
  panel('stat', 'Targets up', 'pgwarden_up: 1 when the last snapshot of the target succeeded.', [{ expr: `pgwarden_up{${sel}}`, legend: '{{target}}' }], {
    w: 6,
    h: 4,
    options: { colorMode: 'background', graphMode: 'none', reduceOptions: { calcs: ['lastNotNull'] } },
    fieldConfig: { thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] } },
  }),
  panel(
    'stat',
    'Sessions hidden from pgwarden',
    'pgwarden_sessions_hidden, per target: client backends whose state pgwarden cannot read, because its role lacks pg_read_all_stats ' +
      '(PostgreSQL then shows only its own sessions\' state). Hidden sessions are counted but never judged nor acted on by any policy. ' +
      'Above 0: `pgwarden doctor` names the missing grant (GRANT pg_read_all_stats or pg_monitor to pgwarden\'s role).',
    [{ expr: `max by (target) (pgwarden_sessions_hidden{${sel}})`, legend: '{{target}}' }],
    {
      w: 6,
      h: 4,
      x: 6,
      options: { colorMode: 'background', graphMode: 'area', reduceOptions: { calcs: ['lastNotNull'] } },
      fieldConfig: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1 }] } },
    },
  ),
  panel('stat', 'Sessions per role (top 10)', 'The roles with the most client sessions now.', [
    { expr: `topk(10, sum by (role) (pgwarden_sessions{${sessionSel}}))`, legend: '{{role}}' },
  ], { w: 12, h: 4, x: 12, options: { reduceOptions: { calcs: ['lastNotNull'] }, graphMode: 'none' } }),
  panel('timeseries', 'Sessions waiting on locks', 'pgwarden_blocked_sessions by database, and the longest lock wait.', [
    { expr: `sum by (database) (pgwarden_blocked_sessions{${sel}, database=~"$database"})`, legend: 'waiting in {{database}}' },
  ], { w: 8 }),
  panel('timeseries', 'Longest lock wait and oldest prepared transaction', 'Lock waits (pg_locks.waitstart) and prepared transactions, which hold locks and block vacuum.', [
    { expr: `max by (database) (pgwarden_lock_wait_oldest_seconds{${sel}, database=~"$database"})`, legend: 'lock wait {{database}}' },
    { expr: `max by (database) (pgwarden_prepared_xact_oldest_seconds{${sel}, database=~"$database"})`, legend: 'prepared {{database}}' },
  ], { w: 8, x: 8, unit: 's' }),
  panel(
    'timeseries',
    'Lock pile-up roots reported (lock_blocker)',
    'pgwarden_policy_violations of lock_blocker policies: roots of lock pile-ups past maxBlocked, from the last run. An enforced root is ended ' +
      'by the run that reports it; one still reported after a minute (alert PgwardenLockPileUpUnresolved) is a prepared transaction, ' +
      'a root pgwarden could not signal, or a dry-run policy. `pgwarden locks` shows it.',
    [{ expr: `max by (target, policy) (pgwarden_policy_violations{${sel}, kind="lock_blocker"})`, legend: '{{policy}} on {{target}}' }],
    { w: 8, x: 16, options: { legend: { displayMode: 'list', placement: 'bottom' } } },
  ),
  row('Policies'),
  panel('timeseries', 'Violations by policy', 'Violations found by the last run of each policy.', [
    { expr: `sum by (policy) (pgwarden_policy_violations{${sel}})`, legend: '{{policy}}' },
  ]),
  panel('timeseries', 'Actions by policy and result', 'Every action pgwarden planned or took, by result.', [
    { expr: `sum by (policy, action, result) (increase(pgwarden_actions_total{${sel}}[$__rate_interval]))`, legend: '{{policy}} {{action}} {{result}}' },
  ], { x: 12 }),
  panel('timeseries', 'Run duration (p95) by policy', 'Policy runs, snapshot included.', [
    {
      expr: `histogram_quantile(0.95, sum by (le, policy) (rate(pgwarden_policy_run_duration_seconds_bucket{${sel}}[$__rate_interval])))`,
      legend: '{{policy}}',
    },
  ], { unit: 's' }),
  panel('timeseries', 'Errors by policy', 'Failed policy runs.', [
    { expr: `sum by (policy) (increase(pgwarden_policy_errors_total{${sel}}[$__rate_interval]))`, legend: '{{policy}}' },
  ], { x: 12 }),
  panel('table', 'Policies', 'Configured policies with their kind and mode, and seconds since their last successful run.', [
    { expr: `pgwarden_policy_info{${sel}}`, instant: true },
    { expr: `time() - pgwarden_policy_last_success_timestamp_seconds{${sel}}`, instant: true },
  ], { w: 24, options: { showHeader: true } }),
  row('Roles'),
  panel('table', 'Login roles by days until expiry', 'Login roles with a finite password expiry, soonest first (negative: expired).', [
    { expr: `sort(pgwarden_role_valid_until_seconds{${sel}, role=~"$role"} / 86400)`, instant: true },
  ], { unit: 'none', options: { showHeader: true, sortBy: [{ displayName: 'Value', desc: false }] } }),
  panel('table', 'Disabled roles with sessions', 'Disabled roles that still have client sessions: NOLOGIN does not end them.', [
    { expr: `pgwarden_disabled_role_sessions{${sel}} > 0`, instant: true },
  ], { x: 12, options: { showHeader: true } }),
  panel('stat', 'Passwords expiring or expired', 'Login roles within the password_expiry window, per policy.', [
    { expr: `sum by (policy) (pgwarden_roles_expiring{${sel}})`, legend: '{{policy}}' },
  ], { w: 24, h: 4, options: { reduceOptions: { calcs: ['lastNotNull'] }, graphMode: 'none' } }),
  // Directories have no target label: the target, database and role variables do not apply.
  row('Directories'),
  panel(
    'stat',
    'Directories up',
    'pgwarden_directory_up, per directory (the lowest of the replicas): 1 when its last search succeeded, is younger than three refresh ' +
      'periods and no policy refused its answer; 0 otherwise, and then disabled_role\'s directory conditions act on nothing ' +
      '(alert PgwardenDirectoryDown after 15 minutes). 0 at start until the first search succeeds. `pgwarden doctor` binds and searches.',
    [{ expr: 'min by (directory) (pgwarden_directory_up)', legend: '{{directory}}' }],
    {
      w: 8,
      options: { colorMode: 'background', graphMode: 'none', reduceOptions: { calcs: ['lastNotNull'] } },
      fieldConfig: { thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] } },
    },
  ),
  panel('timeseries', 'Directory entries', 'pgwarden_directory_entries: entries under userFilter found by the last good search. A sudden drop is a directory or filter change; fewer than minEntries is taken for an outage.', [
    { expr: 'max by (directory) (pgwarden_directory_entries)', legend: '{{directory}}' },
  ], { w: 8, x: 8 }),
  panel(
    'timeseries',
    'Age of the last good search',
    'Seconds since the last good search of each directory (the freshest replica). It rises while searches fail; past three refresh periods ' +
      'the answer is no longer acted on. Low while the directory is down: its answer was refused (it would disable more than safety.maxFraction at once).',
    [{ expr: 'time() - max by (directory) (pgwarden_directory_last_success_timestamp_seconds)', legend: '{{directory}}' }],
    { w: 8, x: 16, unit: 's' },
  ),
];

function variable(name, label, query) {
  return {
    name,
    label,
    type: 'query',
    datasource: ds,
    query: { query, refId: `${name}-query` },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
  };
}

const dashboard = {
  title: 'pgwarden',
  uid: 'pgwarden',
  description: 'Sessions, policies, actions and roles of the PostgreSQL servers pgwarden watches.',
  tags: ['postgresql', 'pgwarden'],
  timezone: 'browser',
  editable: true,
  graphTooltip: 1,
  schemaVersion: 39,
  version: 1,
  refresh: '30s',
  time: { from: 'now-6h', to: 'now' },
  annotations: { list: [] },
  links: [],
  templating: {
    list: [
      { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1 },
      variable('target', 'Target', 'label_values(pgwarden_up, target)'),
      variable('database', 'Database', 'label_values(pgwarden_sessions{target=~"$target"}, database)'),
      variable('role', 'Role', 'label_values(pgwarden_sessions{target=~"$target"}, role)'),
    ],
  },
  panels,
};

// Unique ids, and no two panels on the same cells.
const ids = new Set();
for (const [i, p] of panels.entries()) {
  if (ids.has(p.id)) throw new Error(`panel id ${p.id} (${p.title}) is taken: pin a free one`);
  ids.add(p.id);
  const a = p.gridPos;
  if (a.x + a.w > 24) throw new Error(`${p.title} is wider than the dashboard`);
  for (const q of panels.slice(0, i)) {
    const b = q.gridPos;
    if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) throw new Error(`${p.title} overlaps ${q.title}`);
  }
}

const text = `${JSON.stringify(dashboard, null, 2)}\n`;
for (const out of outputs) {
  if (process.argv.includes('--check')) {
    const current = existsSync(out) ? readFileSync(out, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${out} is not what scripts/dashboard.mjs generates: run node scripts/dashboard.mjs\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(out, text);
  }
}
