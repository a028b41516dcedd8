import type { Store } from '../store/index.js';

/**
 * A small need graph for `mlos run --demo`, in the words of the seed: the kernel, context
 * packs and workspace hygiene, spread over the three example identities, with dependencies so
 * that work unlocks in waves. Seeded once: a database that already has needs is left alone.
 */
export function seedDemo(store: Store): number {
  if (store.needs.list({ limit: 1 }).length > 0) return 0;
  return store.transaction(() => {
    const add = (
      title: string,
      tags: string[],
      extra: { priority?: number; dependsOn?: string[]; body?: string } = {},
    ) => store.needs.create({ title, tags, scope: 'Sprint_X', ...extra }).id;
    const schema = add(
      'The need graph schema is enforced by the database itself',
      ['schema', 'enforcement'],
      {
        priority: 0,
        body: 'CHECKs, foreign keys and triggers refuse malformed data at insertion: no linter needed.',
      },
    );
    const kernel = add('The kernel must be testable across session boundaries', ['kernel', 'architecture'], {
      priority: 1,
      dependsOn: [schema],
      body: 'Boot an agent, stop it, boot another on the same need: the second must see what the first left.',
    });
    const packs = add('Context packs never exceed their token budget', ['context', 'compilation'], {
      priority: 1,
      dependsOn: [schema],
    });
    const pointers = add('Everything left out of a pack is reachable by pointer', ['retrieval', 'context'], {
      dependsOn: [packs],
    });
    add('PROBLEM.md is compiled, never hand-written', ['compilation', 'cleanup'], { dependsOn: [schema] });
    add('Drifted identities get no new work until accepted', ['kernel', 'enforcement'], {
      dependsOn: [kernel],
    });
    add('Stale artifacts are superseded, not deleted', ['cleanup'], { priority: 3 });
    add('Dependencies point down the layers, enforced by lint', ['architecture', 'methodology'], {
      body: 'cli → mcp/scheduler/agents → roundtable/kernel → store; no cycles.',
    });
    add('Transcripts link every note back to its reasoning', ['retrieval', 'methodology'], {
      dependsOn: [pointers, kernel],
    });
    return 9;
  });
}
