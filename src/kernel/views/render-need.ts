import type { Edge, Need, NodeLabel } from '../../store/index.js';
import { needPageSeq, type WorkspaceInput } from './data.js';
import { type ViewFile, viewFile } from './header.js';
import { code, duration, inline, iso, link, priority } from './markdown.js';

export const NEEDS_DIR = 'needs';

export function needPagePath(id: string): string {
  return `${NEEDS_DIR}/${id}.md`;
}

/**
 * needs/<id>.md: one need with its body, acceptance, edges both ways, tasks and outcomes,
 * artifacts (title, kind and summary; never the content) and its latest events.
 *
 * The seq is the latest event about the need, about a need it shares an edge with, or about the
 * workspace (see needPageSeq). Heartbeats, lease renewals and token counters write no events and
 * are not shown.
 */
export function renderNeedPage(need: Need, input: WorkspaceInput, members: ReadonlySet<string>): ViewFile {
  const edges = input.edges.get(need.id) ?? [];
  const seq = needPageSeq(need.id, input);

  const out: string[] = [`# ${inline(need.title)}`, ''];
  let facts = `${code(need.id)} · **${need.status}** · ${priority(need.priority)} · scope ${code(need.scope)} · `;
  facts +=
    need.mode === 'standing' && need.cadenceMs !== null
      ? `standing, every ${duration(need.cadenceMs)}`
      : 'once';
  out.push(facts, '');
  out.push(`- Tags: ${need.tags.length ? need.tags.map(code).join(', ') : '_none_'}`);
  out.push(`- Created ${iso(need.createdAt)}; updated ${iso(need.updatedAt)}; version ${need.version}`);
  if (need.notBefore !== null) out.push(`- Not before ${iso(need.notBefore)}`);
  if (need.orphaned) out.push('- **Orphaned**: unmet past the escalation time with no agent taking it');
  if (need.unmetSince !== null) out.push(`- **Unmet** since ${iso(need.unmetSince)}`);
  const holder = input.holders.get(need.id);
  out.push(
    `- Owner: ${holder ? `${holder.identity} (task ${code(holder.taskId)}${holder.agentId ? `, agent ${code(holder.agentId)}` : ''})` : '_none_'}`,
  );
  out.push('', '## Body', '', need.body.trim() === '' ? '_empty_' : need.body.replace(/\s+$/, ''), '');
  out.push(
    '## Acceptance',
    '',
    need.acceptance.trim() === '' ? '_not stated_' : need.acceptance.replace(/\s+$/, ''),
    '',
  );

  const ref = (id: string) => nodeRef(id, input.labels.get(id), members);
  const dependsOn = edges.filter((e) => e.rel === 'depends_on' && e.from === need.id);
  const neededBy = edges.filter((e) => e.rel === 'depends_on' && e.to === need.id);
  const other = edges.filter(
    (e) =>
      e.rel !== 'depends_on' &&
      !(e.rel === 'references' && e.from === need.id && input.labels.get(e.to)?.kind === 'artifact'),
  );
  section(
    out,
    'Depends on',
    dependsOn.map((e) => `- ${ref(e.to)}`),
  );
  section(
    out,
    'Needed by',
    neededBy.map((e) => `- ${ref(e.from)}`),
  );
  section(
    out,
    'Other edges',
    other.map((e) => otherEdge(e, need.id, ref)),
  );

  const tasks = input.tasks.get(need.id) ?? [];
  const taskLines: string[] = [];
  for (const t of tasks) {
    let s = `- **attempt ${t.attempt}** · ${code(t.id)} · ${t.identity} · ${t.status}`;
    if (t.outcome) s += ` · outcome **${t.outcome}**`;
    s += ` · created ${iso(t.createdAt)}`;
    if (t.startedAt !== null) s += ` · started ${iso(t.startedAt)}`;
    if (t.finishedAt !== null) s += ` · finished ${iso(t.finishedAt)}`;
    if (t.agentId) s += ` · agent ${code(t.agentId)}`;
    taskLines.push(s);
    if (t.summary) taskLines.push(`  - summary: ${inline(t.summary)}`);
    if (t.error) taskLines.push(`  - error: ${inline(t.error)}`);
  }
  section(out, 'Tasks', taskLines);

  const artifactLines: string[] = [];
  for (const a of input.artifacts.get(need.id) ?? []) {
    let s = `- **${inline(a.title)}** · ${a.kind} · ${code(a.id)}`;
    if (a.tokenCount > 0) s += ` · ${a.tokenCount} tokens`;
    if (a.uri) s += ` · ${inline(a.uri)}`;
    artifactLines.push(s);
    if (a.summary) artifactLines.push(`  - ${inline(a.summary)}`);
  }
  section(out, 'Artifacts', artifactLines);

  const events = input.events.get(need.id) ?? [];
  section(
    out,
    'Recent events',
    events.map(
      (e) =>
        `- seq ${e.seq} · ${iso(e.at)} · ${code(e.kind)} by ${inline(e.actor)}${e.entity === need.id ? '' : ` · ${code(e.entity)}`}`,
    ),
  );
  return viewFile(needPagePath(need.id), seq, out.join('\n'));
}

function section(out: string[], title: string, lines: readonly string[]): void {
  out.push(`## ${title}`, '', ...(lines.length ? lines : ['_none_']), '');
}

function nodeRef(id: string, label: NodeLabel | undefined, members: ReadonlySet<string>): string {
  if (!label) return code(id);
  switch (label.kind) {
    case 'need':
      return members.has(id)
        ? `${link(label.title, `${id}.md`)} · ${label.status} · ${code(id)}`
        : `${inline(label.title)} · ${label.status} · ${code(id)} (not in this workspace)`;
    case 'task':
      return `task ${code(id)} (${label.title}, ${label.status})`;
    case 'artifact':
      return `**${inline(label.title)}** · ${label.status} · ${code(id)}`;
  }
}

function otherEdge(e: Edge, self: string, ref: (id: string) => string): string {
  return e.from === self ? `- ${code(e.rel)} → ${ref(e.to)}` : `- ← ${code(e.rel)} from ${ref(e.from)}`;
}
