import type { Artifact, Need } from '../../store/index.js';
import type { PackBlock, PackCandidate } from './packer.js';
import {
  renderArtifactFull,
  renderArtifactSummary,
  renderDependencyLine,
  renderEventLine,
  renderNeedFull,
  renderNeedHead,
  renderNeighbourLine,
  renderTaskRecord,
} from './render.js';
import type { PackSource } from './source.js';
import type { NotConsidered } from './types.js';

/**
 * How many rows of each kind are ranked at most. Rows beyond these are not considered; the
 * pack's header says how many there were.
 */
export const CANDIDATE_LIMITS = {
  dependencies: 50,
  tasks: 20,
  taskArtifacts: 40,
  artifacts: 40,
  neighbours: 40,
  /** Neighbours are looked for among the newest needs of each of the need's tags. */
  neighbourWindow: 200,
  events: 15,
} as const;

/**
 * An artifact counts as large — shown by its summary (or only as a pointer when it has none) —
 * above this many tokens, or above a quarter of the pack's budget when that is smaller.
 */
export const LARGE_ARTIFACT_TOKENS = 2_000;

/** Counting the candidates need: raw o200k, with an early stop for "is it at most N". */
export interface CandidateMeter {
  raw(text: string): number;
  rawWithin(text: string, limit: number): number | false;
  scale(raw: number): number;
  rawBudget(budget: number): number;
}

/**
 * The ranked candidates for the pack of `need`, most relevant first: the need in full; its
 * direct dependencies; the memory of earlier attempts (task records newest first, then the
 * notes and results they produced or the need references, then transcripts as pointers); the
 * artifacts it references; deeper unresolved dependencies; neighbours sharing its tags; deeper
 * resolved dependencies; its recent events.
 *
 * Earlier attempts rank above referenced artifacts: a taking-over agent must first know what
 * was tried and why it failed, and an artifact still shows by its summary when space is short.
 */
export function buildCandidates(
  source: PackSource,
  need: Need,
  budget: number,
  meter: CandidateMeter,
): { candidates: PackCandidate[]; notConsidered: NotConsidered } {
  const L = CANDIDATE_LIMITS;
  const largeRaw = meter.rawBudget(Math.min(LARGE_ARTIFACT_TOKENS, Math.floor(budget / 4)));
  const candidates: PackCandidate[] = [];

  // The need shows in full, or without its body (behind a pointer) when the full need does not
  // fit; one too large for the whole budget is not even tried in full.
  const fullNeed = renderNeedFull(need);
  const needFits = meter.rawWithin(`${fullNeed}\n`, meter.rawBudget(budget)) !== false;
  const head = { text: renderNeedHead(need, meter.scale(meter.raw(fullNeed))), abridged: true };
  candidates.push({
    kind: 'need',
    section: 'need',
    ref: need.id,
    title: need.title,
    blocks: needFits ? [{ text: fullNeed, abridged: false }, head] : [head],
    pointer: true,
    fullRaw: () => meter.raw(fullNeed),
  });

  // Direct dependencies rank right after the need; deeper ones after the memory and the
  // artifacts — unresolved ones (blockers further down) before the neighbours, resolved ones
  // after them. All show in the dependency section, nearest first.
  const chain = source.dependencyChain(need.id, L.dependencies);
  const listed = new Set([need.id]);
  const blockers: PackCandidate[] = [];
  const settled: PackCandidate[] = [];
  for (const d of chain.rows) {
    listed.add(d.id);
    const c = lineCandidate('dependency', 'dependencies', d.id, d.title, renderDependencyLine(d), meter);
    if (d.depth === 1) candidates.push(c);
    else if (d.status !== 'resolved') blockers.push(c);
    else settled.push(c);
  }

  const tasks = source.earlierTasks(need.id, L.tasks);
  for (const t of tasks.rows) {
    const record = renderTaskRecord(t);
    candidates.push({
      kind: 'task',
      section: 'memory',
      ref: t.id,
      title: `attempt ${t.attempt} ${t.status}`,
      blocks: [{ text: record, abridged: false }],
      pointer: true,
      fullRaw: () => meter.raw(record),
    });
  }
  const produced = source.taskArtifacts(need.id, L.taskArtifacts);
  const transcripts: PackCandidate[] = [];
  const seenArtifacts = new Set<string>();
  for (const a of produced.rows) {
    seenArtifacts.add(a.id);
    // A transcript is the full reasoning of an attempt: always behind a pointer.
    if (a.kind === 'transcript')
      transcripts.push(artifactCandidate(a, 'transcript', 'memory', -1, meter, a.taskId));
    else candidates.push(artifactCandidate(a, 'note', 'memory', largeRaw, meter, a.taskId));
  }

  const referenced = source.referencedArtifacts(need.id, L.artifacts);
  const others: PackCandidate[] = [];
  for (const a of referenced.rows) {
    if (seenArtifacts.has(a.id)) continue;
    seenArtifacts.add(a.id);
    // Notes the need references are memory too; every other artifact is reference material.
    if (a.kind === 'note') candidates.push(artifactCandidate(a, 'note', 'memory', largeRaw, meter));
    else others.push(artifactCandidate(a, 'artifact', 'artifacts', largeRaw, meter));
  }
  candidates.push(...transcripts, ...others, ...blockers);

  const neighbours = source.neighbours(need.id, L.neighbours, L.neighbourWindow);
  for (const n of neighbours.rows) {
    if (listed.has(n.id)) continue;
    candidates.push(lineCandidate('neighbour', 'neighbours', n.id, n.title, renderNeighbourLine(n), meter));
  }

  candidates.push(...settled);

  const events = source.recentEvents(need.id, L.events);
  for (const e of events.rows) {
    candidates.push(lineCandidate('event', 'events', `ev_${e.seq}`, e.kind, renderEventLine(e), meter));
  }

  return {
    candidates,
    notConsidered: {
      dependencies: chain.truncated,
      memory: tasks.total - tasks.rows.length + (produced.total - produced.rows.length),
      artifacts: referenced.total - referenced.rows.length,
      neighbours: neighbours.ranked - neighbours.rows.length,
      neighbourTags: neighbours.cut,
      neighbourWindow: L.neighbourWindow,
      events: events.total - events.rows.length,
    },
  };
}

function lineCandidate(
  kind: PackCandidate['kind'],
  section: PackCandidate['section'],
  ref: string,
  title: string,
  line: string,
  meter: CandidateMeter,
): PackCandidate {
  const blocks = [{ text: line, abridged: false }];
  return { kind, section, ref, title, blocks, pointer: false, fullRaw: () => meter.raw(line) };
}

/**
 * A small artifact shows in full (its summary when even that does not fit); a large one shows by
 * its summary, or only as a pointer when it has none. `largeRaw` -1 makes it pointer-only.
 */
function artifactCandidate(
  a: Artifact,
  kind: 'note' | 'transcript' | 'artifact',
  section: 'memory' | 'artifacts',
  largeRaw: number,
  meter: CandidateMeter,
  taskId?: string,
): PackCandidate {
  // Sizes are those of what expand_pointer returns: the artifact without the pack's task line.
  const expansion = renderArtifactFull(a);
  const fullRaw = () => meter.raw(expansion);
  if (largeRaw < 0) return { kind, section, ref: a.id, title: a.title, blocks: [], pointer: true, fullRaw };
  const large = a.content !== null && meter.rawWithin(a.content, largeRaw) === false;
  const blocks: PackBlock[] = large
    ? []
    : [{ text: taskId ? renderArtifactFull(a, taskId) : expansion, abridged: false }];
  if (a.summary)
    blocks.push({ text: renderArtifactSummary(a, meter.scale(fullRaw()), taskId), abridged: true });
  return { kind, section, ref: a.id, title: a.title, blocks, pointer: true, fullRaw };
}
