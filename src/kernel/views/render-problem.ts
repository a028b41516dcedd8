import type { NeedHead } from '../../store/index.js';
import type { ProblemInput } from './data.js';
import { type ViewFile, viewFile } from './header.js';
import { code, compareText, iso, link, priority } from './markdown.js';

export const PROBLEM_FILE = 'PROBLEM.md';

/**
 * PROBLEM.md: the open and active needs of a workspace. Orphaned needs head the file; the rest
 * are grouped by scope (scopes in byte order), each group by priority, then age, then id. A line
 * shows the status, the owner (the task holding the lease and its identity), the unresolved
 * dependencies, and the unmet and orphaned marks the supervisor stored.
 *
 * The seq is the latest event about a shown need or one it depends on, or about the workspace
 * (computed by the loader: ProblemInput.seq).
 */
export function renderProblem(input: ProblemInput): ViewFile {
  const { needs, seq } = input;
  const shown = new Set<string>();
  let open = 0;
  let active = 0;
  for (const n of needs) {
    shown.add(n.id);
    if (n.status === 'open') open++;
    else if (n.status === 'active') active++;
  }

  const out: string[] = [`# Problem: workspace ${code(input.workspace.name)}`, ''];
  if (needs.length === 0) {
    out.push(nothingOpen(input.closed), '');
    return viewFile(PROBLEM_FILE, seq, out.join('\n'));
  }
  out.push(
    `${open} open and ${active} active ${needs.length === 1 ? 'need' : 'needs'}, grouped by scope and ordered by priority, then age. Orphaned needs come first.`,
    '',
  );

  const orphaned: NeedHead[] = [];
  const byScope = new Map<string, NeedHead[]>();
  for (const n of needs) {
    if (n.orphaned) {
      orphaned.push(n);
      continue;
    }
    const group = byScope.get(n.scope);
    if (group) group.push(n);
    else byScope.set(n.scope, [n]);
  }

  if (orphaned.length) {
    out.push(`## Orphaned (${orphaned.length})`, '');
    for (const n of orphaned) out.push(line(n, input, shown, true));
    out.push('');
  }
  for (const scope of [...byScope.keys()].sort(compareText)) {
    const group = byScope.get(scope)!;
    out.push(`## ${code(scope)} (${group.length})`, '');
    for (const n of group) out.push(line(n, input, shown, false));
    out.push('');
  }
  return viewFile(PROBLEM_FILE, seq, out.join('\n'));
}

function line(n: NeedHead, input: ProblemInput, shown: ReadonlySet<string>, withScope: boolean): string {
  let s = `- **${priority(n.priority)}** ${link(n.title, `needs/${n.id}.md`)} · ${n.status}`;
  if (withScope) s += ` · scope ${code(n.scope)}`;
  if (n.orphaned) s += ' · **orphaned**';
  if (n.unmetSince !== null) s += ` · **unmet** since ${iso(n.unmetSince)}`;
  const holder = input.holders.get(n.id);
  if (holder) s += ` · owner ${holder.identity} (${code(holder.taskId)})`;
  const deps = input.dependencies.get(n.id);
  if (deps) {
    const blockers: string[] = [];
    for (const d of deps) {
      if (d.toStatus === 'resolved') continue;
      const target = shown.has(d.to) ? `[${code(d.to)}](needs/${d.to}.md)` : code(d.to);
      blockers.push(`${target} (${d.toStatus})`);
    }
    if (blockers.length) s += ` · blocked by ${blockers.join(', ')}`;
  }
  return s;
}

/** The line of a workspace with nothing open or active: what became of its needs. */
function nothingOpen(closed: ProblemInput['closed']): string {
  const resolved = closed?.resolved ?? 0;
  const dropped = closed?.dropped ?? 0;
  const all = (n: number) => (n === 1 ? 'its one need is' : `all ${n} needs are`);
  const needs = (n: number) => (n === 1 ? '1 need' : `${n} needs`);
  if (resolved + dropped === 0) return 'No open or active needs: the workspace has no needs yet.';
  if (dropped === 0) return `No open or active needs: ${all(resolved)} resolved.`;
  if (resolved === 0) return `No open or active needs: ${all(dropped)} dropped.`;
  return `No open or active needs: ${needs(resolved)} resolved, ${needs(dropped)} dropped.`;
}
