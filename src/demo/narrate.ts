/**
 * Narration of the daemon at work: the demo hands the daemon a logger whose destination is
 * `NarratingSink`, which reads the same JSON lines a deployment's log collector would (the audit
 * log of DESIGN.md: one line per action, `audit: true`) and turns each into one sentence.
 */
import type { TextSink } from '../cli/io.js';

/** The fields of an audit line the narration uses (session and role actions alike). */
export interface AuditLine {
  readonly audit: true;
  readonly time?: string;
  readonly policy: string;
  readonly kind: string;
  readonly action: string;
  readonly result: string;
  readonly role?: string;
  readonly pid?: number;
  readonly database?: string;
  readonly application?: string;
  readonly reason?: string;
  readonly detail?: string;
  readonly effective?: boolean;
}

/** `HH:MM:SS` of local time: the clock the person watching reads. */
export function clockTime(date: Date): string {
  return date.toTimeString().slice(0, 8);
}

function who(line: AuditLine): string {
  const where = [line.database && `${line.role ?? '?'}@${line.database}`, line.application && `app ${line.application}`].filter(Boolean).join(', ');
  return `pid ${line.pid ?? '?'}${where ? ` (${where})` : ''}`;
}

/** One sentence for one audit line. */
export function describeAction(line: AuditLine): string {
  const role = line.role ?? '?';
  const target =
    line.action === 'nologin'
      ? `role ${role}`
      : line.action === 'revoke_connect'
        ? `CONNECT on ${line.database ?? '?'} from ${role}`
        : line.kind === 'disabled_role'
          ? `${who(line)} of disabled role ${role}`
          : who(line);
  if (line.result !== 'done') {
    const why = line.detail ?? line.reason;
    return `${line.action} ${target}: ${line.result}${why ? ` (${why})` : ''}`;
  }
  switch (line.action) {
    case 'terminate':
      return `terminated ${target}${line.reason ? `: ${line.reason}` : ''}`;
    case 'cancel':
      return `cancelled the query of ${target}${line.reason ? `: ${line.reason}` : ''}`;
    case 'nologin':
      return line.kind === 'password_expiry'
        ? `locked out ${target} (NOLOGIN): its password expired longer ago than the grace`
        : `locked out ${target} (NOLOGIN) before ending its sessions, so it cannot come back`;
    case 'revoke_connect':
      return `revoked ${target}${line.effective === false && line.detail ? `, but ${line.detail}` : ''}`;
    default:
      return `${line.action} ${target}: done`;
  }
}

/** One pino line as the narration sees it. */
interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly audit?: boolean;
}

/**
 * A pino destination: audit lines become `HH:MM:SS  policy  sentence`, warnings and errors are
 * shown as they are, the rest (start-up, leader election) is left out.
 */
export class NarratingSink implements TextSink {
  readonly #out: TextSink;
  readonly #onAction: (line: AuditLine) => void;
  #buffered = '';

  constructor(out: TextSink, onAction: (line: AuditLine) => void) {
    this.#out = out;
    this.#onAction = onAction;
  }

  write(text: string): boolean {
    this.#buffered += text;
    let newline: number;
    while ((newline = this.#buffered.indexOf('\n')) >= 0) {
      const raw = this.#buffered.slice(0, newline);
      this.#buffered = this.#buffered.slice(newline + 1);
      this.#line(raw);
    }
    return true;
  }

  #line(raw: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(raw) as LogLine;
    } catch {
      this.#out.write(`${raw}\n`);
      return;
    }
    if (line.audit === true) {
      const action = line as unknown as AuditLine;
      const at = action.time ? new Date(action.time) : new Date();
      this.#out.write(`  ${clockTime(at)}  ${action.policy.padEnd(15)}  ${describeAction(action)}\n`);
      this.#onAction(action);
      return;
    }
    if (line.level === 'warn' || line.level === 'error' || line.level === 'fatal') {
      this.#out.write(`  pgwarden ${line.level}: ${line.msg ?? raw}\n`);
    }
  }
}
