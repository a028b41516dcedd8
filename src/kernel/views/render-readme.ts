import { NEED_STATUSES, type Need, type NeedStatus, type Workspace } from '../../store/index.js';
import type { WorkspaceInput } from './data.js';
import { type ViewFile, viewFile } from './header.js';
import { code, compareText, link, priority } from './markdown.js';

export const README_FILE = 'README.md';

/**
 * README.md: the workspace's filter, counts of its needs by scope and status, and a link to the
 * page of every need, grouped by scope and ordered by priority, age, id.
 *
 * The seq is that of workspaceSeq: the latest event about any need of the workspace, about one
 * its tags and scope match in a status it does not show or that left them, or about the workspace.
 */
export function renderReadme(input: WorkspaceInput): ViewFile {
  const { workspace, needs } = input;
  const counts = new Map<string, Record<NeedStatus, number>>();
  const byScope = new Map<string, Need[]>();
  const total = zero();
  for (const n of needs) {
    let row = counts.get(n.scope);
    if (!row) {
      row = zero();
      counts.set(n.scope, row);
      byScope.set(n.scope, []);
    }
    row[n.status]++;
    total[n.status]++;
    byScope.get(n.scope)!.push(n);
  }
  const scopes = [...counts.keys()].sort(compareText);

  const out: string[] = [
    `# Workspace ${code(workspace.name)}`,
    '',
    `Filter: ${describe(workspace)}. ${needs.length} ${needs.length === 1 ? 'need' : 'needs'}.`,
    '',
    `- [PROBLEM.md](PROBLEM.md): the open and active needs, orphaned ones first.`,
    `- [graph.md](graph.md): the dependency graph.`,
    '',
    '## Counts',
    '',
    `| scope | ${NEED_STATUSES.join(' | ')} | total |`,
    `| --- | ${NEED_STATUSES.map(() => '---:').join(' | ')} | ---: |`,
  ];
  for (const scope of scopes) out.push(countRow(code(scope), counts.get(scope)!));
  out.push(countRow('**all**', total), '', '## Needs', '');
  if (needs.length === 0) out.push('No needs match this workspace.', '');
  for (const scope of scopes) {
    out.push(`### ${code(scope)}`, '');
    for (const n of byScope.get(scope)!) {
      out.push(
        `- ${link(n.title, `needs/${n.id}.md`)} · ${n.status} · ${priority(n.priority)} · ${code(n.id)}`,
      );
    }
    out.push('');
  }
  return viewFile(README_FILE, workspaceSeq(input), out.join('\n'));
}

/**
 * The latest event about any need of the workspace, about one of its tags and scope in another
 * status or that a retag or move took out of them (selectionSeq: so the seq never goes back when a
 * need leaves; such a need's later events still count for a workspace that filters by status), or
 * about the workspace itself.
 */
export function workspaceSeq(input: WorkspaceInput): number {
  let seq = Math.max(input.workspaceSeq, input.selectionSeq);
  for (const n of input.needs) seq = Math.max(seq, input.seqs.get(n.id) ?? 0);
  return seq;
}

function countRow(label: string, row: Record<NeedStatus, number>): string {
  const sum = NEED_STATUSES.reduce((acc, s) => acc + row[s], 0);
  return `| ${label} | ${NEED_STATUSES.map((s) => row[s]).join(' | ')} | ${sum} |`;
}

function zero(): Record<NeedStatus, number> {
  return { open: 0, active: 0, resolved: 0, dropped: 0 };
}

/** The workspace's filter in words. */
export function describe(w: Workspace): string {
  const parts: string[] = [];
  if (w.tagsAny.length) parts.push(`tags any of ${w.tagsAny.map(code).join(', ')}`);
  if (w.tagsAll.length) parts.push(`tags all of ${w.tagsAll.map(code).join(', ')}`);
  if (w.scope !== null) parts.push(`scope ${code(w.scope)}`);
  if (w.statuses.length) parts.push(`status ${w.statuses.join(', ')}`);
  return parts.length ? parts.join('; ') : 'every need';
}
