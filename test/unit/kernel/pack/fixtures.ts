import type { ManualClock, Need, Store } from '../../../../src/store/index.js';
import { hex } from '../../../helpers/world.js';

/** A need graph that gives a pack every kind of item. */
export interface PackWorld {
  /** The need the pack is for: tagged cleanup and schema, depends on `dep`. */
  readonly need: Need;
  /** Depends on `deep`; resolved. */
  readonly dep: Need;
  /** Open, two levels down. */
  readonly deep: Need;
  /** Share tags with `need`. */
  readonly neighbours: readonly Need[];
  /** A failed earlier task on `need`, with a summary and an error. */
  readonly failedTask: string;
  /** A note the failed task produced (produced_by), with a transcript (pointer only). */
  readonly taskNote: string;
  readonly transcript: string;
  /** A small note the need references. */
  readonly note: string;
  /** A large file with a summary: shown by its summary. */
  readonly bigWithSummary: string;
  /** A large file without a summary: only a pointer. */
  readonly bigBare: string;
  /** A small file: shown in full. */
  readonly small: string;
}

export const IDENTITY_NAME = 'janitor';

/** Builds the pack world through the real store API. */
export function buildPackWorld(store: Store, clock: ManualClock): PackWorld {
  store.identities.pin(IDENTITY_NAME, hex('janitor v1'), 'janitor v1');
  const deep = store.needs.create({ title: 'Deep dependency', tags: ['schema'], priority: 3 });
  clock.advance(1000);
  const dep = store.needs.create({ title: 'Schema exists', tags: ['schema'], dependsOn: [deep.id] });
  clock.advance(1000);
  const need = store.needs.create({
    title: 'Clean the workspace',
    body: 'Remove duplicate needs and stale artifacts.\n\nKeep the history auditable.',
    acceptance: 'No duplicate needs remain.',
    tags: ['cleanup', 'schema'],
    priority: 1,
    dependsOn: [dep.id],
  });
  const neighbours: Need[] = [];
  for (let i = 0; i < 4; i++) {
    clock.advance(1000);
    neighbours.push(
      store.needs.create({ title: `Neighbour ${i}`, tags: i % 2 ? ['cleanup', 'schema'] : ['cleanup'] }),
    );
  }
  store.needs.resolve(dep.id);

  const task = store.tasks.create(need.id, IDENTITY_NAME);
  store.tasks.start(task.id, { leaseUntil: clock.now() + 60_000 });
  clock.advance(5000);
  const transcript = store.artifacts.add({
    kind: 'transcript',
    title: 'session transcript',
    content: 'assistant: looking at duplicates…\n'.repeat(200),
  }).artifact.id;
  const taskNote = store.artifacts.add({
    kind: 'note',
    title: 'what I tried',
    content: 'Merged two duplicates; the third one is referenced by an open task, left it.',
  }).artifact.id;
  store.edges.link(taskNote, 'produced_by', task.id);
  store.edges.link(transcript, 'produced_by', task.id);
  store.edges.link(taskNote, 'source_transcript', transcript);
  store.tasks.transition(task.id, 'failed', {
    outcome: 'failed',
    summary: 'Merged two of three duplicates.',
    error: 'ran out of budget before the third',
  });

  const note = store.artifacts.add(
    { kind: 'note', title: 'operator note', content: 'Do not drop needs tagged keep.' },
    { needId: need.id },
  ).artifact.id;
  const bigWithSummary = store.artifacts.add(
    {
      kind: 'file',
      uri: '/repo/docs/schema.md',
      title: 'schema reference',
      content: 'The schema has tables for needs, tasks, artifacts and edges. '.repeat(300),
      summary: 'The schema reference: tables, constraints and triggers.',
    },
    { needId: need.id },
  ).artifact.id;
  const bigBare = store.artifacts.add(
    { kind: 'file', uri: '/repo/dump.txt', title: 'raw dump', content: 'row 1 2 3 4 5 6 7 8\n'.repeat(600) },
    { needId: need.id },
  ).artifact.id;
  const small = store.artifacts.add(
    { kind: 'file', uri: '/repo/cleanup.sh', title: 'cleanup script', content: '#!/bin/sh\necho cleaning\n' },
    { needId: need.id },
  ).artifact.id;
  return {
    need: store.needs.require(need.id),
    dep: store.needs.require(dep.id),
    deep,
    neighbours,
    failedTask: task.id,
    taskNote,
    transcript,
    note,
    bigWithSummary,
    bigBare,
    small,
  };
}

/** The numbers a pack header states, read back from its text. */
export function headerNumbers(text: string): {
  budget: number;
  included: number;
  includedTokens: number;
  leftOut: number;
  leftOutTokens: number;
  pointers: number;
  pointerTokens: number;
  dropped: number;
  droppedTokens: number;
} {
  const num = (s: string | undefined) => Number((s ?? '0').replace(/,/g, ''));
  const budget = /\(budget ([\d,]+) tokens/.exec(text);
  const included = /^Included: ([\d,]+) items?, ([\d,]+) tokens/m.exec(text);
  const left = /^Left out: ([\d,]+) items?, ([\d,]+) tokens/m.exec(text);
  const pointers = /([\d,]+) as pointers below \(([\d,]+) tokens\)/.exec(text);
  const dropped = /([\d,]+) dropped without a pointer \(([\d,]+) tokens/.exec(text);
  return {
    budget: num(budget?.[1]),
    included: num(included?.[1]),
    includedTokens: num(included?.[2]),
    leftOut: num(left?.[1]),
    leftOutTokens: num(left?.[2]),
    pointers: num(pointers?.[1]),
    pointerTokens: num(pointers?.[2]),
    dropped: num(dropped?.[1]),
    droppedTokens: num(dropped?.[2]),
  };
}

/** The pointer lines of a pack: id and stated size. */
export function pointerLines(text: string): { id: string; tokens: number }[] {
  return [...text.matchAll(/^\[pointer (ptr:\S+)\] .* — ([\d,]+) tokens; expand with expand_pointer$/gm)].map(
    (m) => ({ id: m[1]!, tokens: Number(m[2]!.replace(/,/g, '')) }),
  );
}
