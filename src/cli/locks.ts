/** `pgwarden locks`: who blocks whom — lock chains as a tree, root blockers first, with wait times. */
import { fetchLocks } from '../db/locks.js';
import { countHidden, fetchSessions } from '../db/snapshot.js';
import { buildLockGraph, type LockGraph, type LockNode } from '../policies/lock-graph.js';
import { loadContext, warnHidden, withTargets, type GlobalOptions } from './context.js';
import type { Io, TextSink } from './io.js';
import { age, printJson } from './output.js';

function line(node: LockNode): string {
  const who = `pid ${node.pid} ${node.role ?? '?'}@${node.database ?? '?'} app=${node.application || '-'} client=${node.clientAddr ?? 'local'} ${node.state ?? ''}`;
  const held = node.xactSeconds !== null ? ` xact ${age(node.xactSeconds)}` : '';
  const waited = node.waitSeconds !== null ? ` waiting ${age(node.waitSeconds)}` : '';
  const query = node.query ? `: ${node.query.replace(/\s+/g, ' ').slice(0, 80)}` : '';
  return `${who}${held}${waited}${query}`;
}

function printTree(out: TextSink, graph: LockGraph, target: string | undefined, hidden: number): void {
  if (graph.waiting === 0 && graph.roots.length === 0) {
    // Hidden backends' waits cannot be seen: never claim that nobody waits.
    const who = hidden > 0 ? `no session pgwarden can see (${hidden} hidden from it)` : 'no session';
    out.write(`${target ? `[${target}] ` : ''}${who} is waiting on a lock\n`);
    return;
  }
  out.write(`${target ? `[${target}] ` : ''}${graph.waiting} session(s) waiting on a lock, ${graph.roots.length} root blocker(s)\n`);
  const walk = (node: LockNode, depth: number) => {
    out.write(`${'  '.repeat(depth)}└─ ${line(node)}${node.blockedBy.length > 1 ? ` (blocked by ${node.blockedBy.join(', ')})` : ''}\n`);
    for (const w of node.waiters) walk(w, depth + 1);
  };
  for (const root of graph.roots) {
    const r = root;
    if (r.pid === 0) {
      const gids = (r.prepared ?? []).map((p) => `'${p.gid}' (${p.database}, prepared ${age(p.ageSeconds)} ago by ${p.owner})`).join(', ');
      out.write(`ROOT prepared transaction — cannot be killed; COMMIT PREPARED or ROLLBACK PREPARED one of: ${gids || 'none listed'}\n`);
    } else {
      out.write(`ROOT ${line(r)}\n`);
    }
    out.write(`     blocks ${r.blocks} directly, ${r.blocksTotal} in all; oldest wait ${age(r.oldestWaitSeconds)}\n`);
    for (const w of r.waiters) walk(w, 1);
  }
}

/** `pgwarden locks`: the lock graph of each target, as a tree or as JSON. */
export async function runLocks(options: { target?: string }, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  const graphs = await withTargets(context, options.target, (dbs) =>
    Promise.all(
      dbs.map(async (db) => {
        const snapshot = await fetchSessions(db);
        warnHidden(io, snapshot);
        const sessions = snapshot.sessions.filter((s) => !db.ownPids.has(s.pid));
        return { target: db.name, hidden: countHidden(snapshot.sessions), graph: buildLockGraph(sessions, await fetchLocks(db, sessions, snapshot.clockUs)) };
      }),
    ),
  );
  if (context.json) {
    // DESIGN.md: `{waiting, roots}` (one target); with several, one such object per target.
    await printJson(io.stdout, graphs.length === 1 ? graphs[0]?.graph : graphs.map((g) => ({ target: g.target, ...g.graph })));
    return;
  }
  for (const g of graphs) printTree(io.stdout, g.graph, graphs.length > 1 ? g.target : undefined, g.hidden);
}
