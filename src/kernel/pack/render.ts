import type { Artifact, Need, StoredEvent, Task } from '../../store/index.js';
import { canonicalJson } from '../../store/index.js';
import { formatDurationMs } from '../identity/duration.js';
import { formatCount } from '../tokens.js';
import type { DependencyEntry, NeighbourEntry } from './source.js';

/**
 * Renderers for the blocks of a context pack. Every block starts with a character that is neither
 * whitespace nor `/` and ends without trailing whitespace; the pack joins blocks with one newline.
 * o200k's pre-tokenizer then never merges across a block boundary, so a pack's token count is
 * exactly the sum of its blocks' counts (each counted with its newline). Every value rendered is a
 * stored fact (no wall clock), so the same state renders the same bytes.
 */

/** How a pointer names what it stands for: `ptr:art_…`, `ptr:need_…`, `ptr:task_…`. */
export function pointerId(ref: string): string {
  return `ptr:${ref}`;
}

/** A UTC timestamp without milliseconds when they are zero. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** One line of text: whitespace runs collapsed, at most `max` characters. */
export function oneLine(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** Text that must not end in whitespace (a block's last line). */
function body(text: string): string {
  return text.replace(/\s+$/u, '');
}

/** A fence longer than any backtick run inside `text`, so content can never close it. */
function fence(text: string): string {
  let longest = 0;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  return '`'.repeat(Math.max(3, longest + 1));
}

function needMeta(need: Need): string[] {
  const lines = [
    `status ${need.status} · priority p${need.priority} · scope ${need.scope} · mode ${need.mode} · version ${need.version}`,
    `tags: ${need.tags.length ? need.tags.join(', ') : '(none)'}`,
  ];
  if (need.cadenceMs !== null) lines.push(`cadence: every ${formatDurationMs(need.cadenceMs)}`);
  if (need.notBefore !== null) lines.push(`not before: ${isoTime(need.notBefore)}`);
  const flags: string[] = [];
  if (need.unmetSince !== null) flags.push(`unmet since ${isoTime(need.unmetSince)}`);
  if (need.orphaned) flags.push('orphaned');
  if (flags.length) lines.push(`flags: ${flags.join(', ')}`);
  return lines;
}

/** The need in full: every field an agent acts on, acceptance and body. */
export function renderNeedFull(need: Need): string {
  const lines = [`### ${need.id} — ${oneLine(need.title, 300)}`, ...needMeta(need)];
  lines.push('acceptance:', need.acceptance.trim() ? body(need.acceptance) : '(none stated)');
  lines.push('body:', need.body.trim() ? body(need.body) : '(empty)');
  return body(lines.join('\n'));
}

/** The need without its body, for when the body does not fit: the body is behind a pointer. */
export function renderNeedHead(need: Need, fullTokens: number): string {
  const lines = [`### ${need.id} — ${oneLine(need.title, 300)}`, ...needMeta(need)];
  lines.push('acceptance:', need.acceptance.trim() ? oneLine(need.acceptance, 600) : '(none stated)');
  lines.push(
    `body: not shown — the need in full is ${formatCount(fullTokens)} tokens; expand ${pointerId(need.id)} with expand_pointer`,
  );
  return lines.join('\n');
}

function artifactTitle(a: Artifact): string {
  return `### ${a.id} — ${a.kind} "${oneLine(a.title, 200)}"`;
}

/** An artifact in full: its content fenced, or where it lives when the content is not stored. */
export function renderArtifactFull(a: Artifact, producedBy?: string): string {
  const lines = [artifactTitle(a)];
  if (producedBy) lines.push(`produced by ${producedBy}`);
  if (a.uri) lines.push(`uri: ${oneLine(a.uri, 500)}`);
  if (a.summary) lines.push(`summary: ${oneLine(a.summary, 1000)}`);
  if (a.content === null) {
    lines.push('content: not stored (open the uri)');
  } else {
    const content = body(a.content);
    const f = fence(content);
    lines.push(f, content, f);
  }
  return lines.join('\n');
}

/** A large artifact by its summary; the content is behind a pointer. */
export function renderArtifactSummary(a: Artifact, fullTokens: number, producedBy?: string): string {
  const lines = [artifactTitle(a)];
  if (producedBy) lines.push(`produced by ${producedBy}`);
  if (a.uri) lines.push(`uri: ${oneLine(a.uri, 500)}`);
  lines.push(`summary: ${oneLine(a.summary ?? '', 1000)}`);
  lines.push(
    `content: ${formatCount(fullTokens)} tokens, not shown; expand ${pointerId(a.id)} with expand_pointer`,
  );
  return lines.join('\n');
}

/** What an earlier task on the need did: status, outcome, summary and error. */
export function renderTaskRecord(t: Task): string {
  const lines = [
    `### ${t.id} — attempt ${t.attempt}, ${t.status}${t.outcome ? ` (outcome ${t.outcome})` : ''}, identity ${t.identity}`,
  ];
  const times = [`created ${isoTime(t.createdAt)}`];
  if (t.startedAt !== null) times.push(`started ${isoTime(t.startedAt)}`);
  if (t.finishedAt !== null) times.push(`finished ${isoTime(t.finishedAt)}`);
  lines.push(times.join(' · '));
  lines.push(`summary: ${t.summary?.trim() ? body(t.summary) : '(none)'}`);
  if (t.error?.trim()) lines.push(`error: ${body(t.error)}`);
  return body(lines.join('\n'));
}

export function renderDependencyLine(d: DependencyEntry): string {
  const via = d.depth > 1 ? ` via ${d.via}` : '';
  return `- ${d.id} [${d.status} p${d.priority}] ${oneLine(d.title)} (depth ${d.depth}${via})`;
}

export function renderNeighbourLine(n: NeighbourEntry): string {
  const tags = n.shared === 1 ? '1 shared tag' : `${n.shared} shared tags`;
  return `- ${n.id} [${n.status} p${n.priority}] ${oneLine(n.title)} (${tags})`;
}

export function renderEventLine(e: StoredEvent): string {
  const payload = oneLine(canonicalJson(e.payload), 200);
  return `- #${e.seq} ${isoTime(e.at)} ${e.kind} ${e.entity} by ${e.actor}: ${payload}`;
}

/** The line standing for an item that did not fit. */
export function renderPointerLine(kind: string, ref: string, title: string, tokens: number): string {
  return `[pointer ${pointerId(ref)}] ${kind} "${oneLine(title, 120)}" — ${formatCount(tokens)} tokens; expand with expand_pointer`;
}
