/** How `mlos identity` shows identities, their states, syncs and accepts: text and JSON. */
import {
  type AcceptResult,
  formatDurationMs,
  type Identity,
  type IdentityStatus,
  type SyncReport,
  shortHash,
} from '../../kernel/identity/index.js';

export function showText(
  i: Identity,
  s: IdentityStatus,
  origin: 'file' | 'pin',
  explicit: ReadonlySet<string>,
): string {
  const d = (field: string) => (explicit.has(field) ? '' : ' (default)');
  const t = i.takeover;
  const lines = [
    `${i.name} — ${origin === 'file' ? (s.file ?? '') : 'pinned bytes'}`,
    row('state', `${stateText(s)}; ${s.runnable ? 'runnable' : 'not runnable'}`),
    row('hash', i.hash),
    row('objective', i.objective),
    row('model', `${i.model.spec}${d('model')}`),
    row(
      'capacity',
      `${i.capacity} concurrent ${i.capacity === 1 ? 'task' : 'tasks'} per worker${d('capacity')}`,
    ),
    row('scope', `primary: ${i.scope.primary.join(', ')}`),
    row('', `peripheral: ${i.scope.peripheral.join(', ') || '(none)'}${d('scope.peripheral')}`),
    row('tools', `${i.tools.join(', ')}${d('tools')}`),
    row(
      'budgets',
      `${tokens(i.budgets.perTask)} tokens per task${d('budgets.per_task')}, ${tokens(i.budgets.perDay)} per day${d('budgets.per_day')}`,
    ),
    row(
      'takeover',
      `grace ${formatDurationMs(t.grace)}${d('takeover.grace')}, peripheral delay ${formatDurationMs(t.peripheralDelay)}${d('takeover.peripheral_delay')}`,
    ),
    row(
      '',
      `cooldown ${formatDurationMs(t.cooldown)}${d('takeover.cooldown')}, escalation ${formatDurationMs(t.escalation)}${d('takeover.escalation')}`,
    ),
    ...(i.invariants.length === 0
      ? [row('invariants', '(none)')]
      : i.invariants.map((inv, n) => row(n === 0 ? 'invariants' : '', `- ${inv}`))),
    row('prompt', `${i.prompt.split('\n').length} lines, ${tokens(Buffer.byteLength(i.prompt))} bytes`),
  ];
  return lines.join('\n');
}

function row(label: string, value: string): string {
  return `${label.padEnd(12)} ${value}`;
}

function tokens(n: number): string {
  return n.toLocaleString('en-US');
}

function stateText(s: IdentityStatus): string {
  switch (s.state) {
    case 'new':
      return 'new: not pinned yet (mlos identity sync)';
    case 'invalid':
      return 'invalid: does not lint, cannot be pinned (mlos identity lint)';
    case 'pinned':
      return 'pinned';
    case 'paused':
      return `paused (mlos identity resume ${s.name})`;
    case 'held':
      return `held until ${new Date(s.heldUntil ?? 0).toISOString()}: its model was unavailable (mlos identity resume ${s.name} ends the hold)`;
    case 'missing-file':
      return 'missing-file: the file is gone; the pin stays in force';
    case 'drifted':
      if (s.fileHash === s.pinnedHash)
        return 'drifted: the file is back to its pin (mlos identity sync clears it)';
      return `drifted: file ${shortHash(s.fileHash ?? '')} ≠ pin (review, then mlos identity accept ${s.name})${s.driftRecorded ? '' : '; not recorded yet (mlos identity sync)'}`;
  }
}

export function table(statuses: readonly IdentityStatus[]): string {
  const head = ['NAME', 'STATE', 'HASH', 'RUNNABLE', 'FILE'];
  const rows = statuses.map((s) => [
    s.name,
    s.state,
    shortHash(s.pinnedHash ?? s.fileHash ?? ''),
    s.runnable ? 'yes' : 'no',
    s.file ?? '-',
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const fmt = (r: readonly string[]) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  const notes = statuses.filter((s) => s.state !== 'pinned').map((s) => `  ${s.name}: ${stateText(s)}`);
  return [fmt(head), ...rows.map(fmt), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

export function statusJson(s: IdentityStatus): Record<string, unknown> {
  return { ...s, error: s.error ? s.error.issues.map((i) => i.message) : null };
}

export function changeLines(report: SyncReport): string[] {
  return report.changes.map((c) => {
    if (c.kind === 'pinned') return `pinned    ${c.name} ${shortHash(c.fileHash)}`;
    if (c.kind === 'restored')
      return `restored  ${c.name}: the file is back to its pinned bytes ${shortHash(c.fileHash)}`;
    const drift = report.drift.find((d) => d.name === c.name);
    return `drifted   ${c.name}: ${drift?.error.message ?? `file ${shortHash(c.fileHash)} ≠ pin ${shortHash(c.pinnedHash ?? '')}`}`;
  });
}

export function syncText(report: SyncReport): string[] {
  const changed = new Set(report.changes.map((c) => c.name));
  const lines = changeLines(report);
  for (const d of report.drift)
    if (!changed.has(d.name)) lines.push(`drifted   ${d.name}: ${d.error.message}`);
  for (const name of report.missing) {
    lines.push(
      `missing   ${name}: its file is gone; the pin stays in force (mlos identity pause ${name} to stop it)`,
    );
  }
  for (const e of report.errors) for (const i of e.issues) lines.push(`invalid   ${i.message}`);
  const pinned = report.statuses.filter((s) => s.state === 'pinned' || s.state === 'paused').length;
  if (report.drift.length === 0 && report.errors.length === 0) {
    lines.push(`ok: ${plural(pinned, 'identity', 'identities')} pinned`);
  }
  return lines;
}

export function syncJson(report: SyncReport): Record<string, unknown> {
  return {
    changes: report.changes,
    drift: report.drift.map((d) => ({ ...d, error: d.error.message })),
    errors: report.errors.flatMap((e) => e.issues.map((i) => i.message)),
    missing: report.missing,
    statuses: report.statuses.map(statusJson),
  };
}

export function acceptText(r: AcceptResult): string {
  switch (r.outcome) {
    case 'pinned':
      return `pinned ${r.name} at ${shortHash(r.newHash)} (first pin)`;
    case 'accepted':
      return `accepted ${r.name}: ${shortHash(r.oldHash ?? '')} → ${shortHash(r.newHash)}${r.changedFields.length ? ` (changed: ${r.changedFields.join(', ')})` : ''}`;
    case 'restored':
      return `${r.name}: the file is back to its pinned bytes ${shortHash(r.newHash)}; drift cleared`;
    case 'unchanged':
      return `${r.name} is already pinned at ${shortHash(r.newHash)}: nothing to accept`;
  }
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
