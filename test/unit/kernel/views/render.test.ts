/**
 * What the compiled views show: PROBLEM.md grouping, ordering, marks, owners and blockers;
 * README counts and links; the Mermaid graph and its escaping; need pages.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  parseHeader,
  renderProblemFile,
  renderView,
  renderWorkspace,
  type ViewFile,
} from '../../../../src/kernel/views/index.js';
import type { ManualClock, Store } from '../../../../src/store/index.js';
import { defaultWorkspace, IDENTITY, openStore, startTask } from './fixture.js';

let store: Store;
let clock: ManualClock;

beforeEach(() => {
  ({ store, clock } = openStore());
});

afterEach(() => store.close());

function files(workspace = 'default'): Map<string, ViewFile> {
  return new Map(renderWorkspace(store, store.workspaces.require(workspace)).map((f) => [f.path, f]));
}

function body(file: ViewFile | undefined): string {
  if (!file) throw new Error('file not compiled');
  return file.content.slice(file.content.indexOf('\n') + 1);
}

/** The lines of PROBLEM.md that list needs, in order. */
function needLines(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('- '));
}

describe('PROBLEM.md', () => {
  it('groups open and active needs by scope, by priority then age then id, orphaned first', () => {
    const b1 = store.needs.create({ title: 'B one', scope: 'Sprint_B', priority: 2 });
    clock.advance(1000);
    const b3 = store.needs.create({ title: 'B three', scope: 'Sprint_B', priority: 1 });
    clock.advance(1000);
    const b2 = store.needs.create({ title: 'B two', scope: 'Sprint_B', priority: 1 });
    // Same priority, same millisecond: the id breaks the tie.
    const t1 = store.needs.create({ title: 'Tie one', scope: 'Sprint_B', priority: 3 });
    const t2 = store.needs.create({ title: 'Tie two', scope: 'Sprint_B', priority: 3 });
    const a1 = store.needs.create({ title: 'A one', scope: 'Sprint_A', priority: 4 });
    const orphan = store.needs.create({ title: 'Forgotten', scope: 'Sprint_B', priority: 4 });
    const unmet = store.needs.create({ title: 'Waiting', scope: 'Sprint_A', priority: 0 });
    const resolved = store.needs.resolve(store.needs.create({ title: 'Done', scope: 'Sprint_A' }).id);
    const dropped = store.needs.drop(store.needs.create({ title: 'Gone', scope: 'Sprint_A' }).id);
    clock.advance(5000);
    store.needs.setFlags(orphan.id, { orphaned: true, unmetSince: clock.now() - 4000 });
    store.needs.setFlags(unmet.id, { unmetSince: clock.now() - 1000 });
    expect(store.events.forNeed(orphan.id, 1)[0]?.kind).toBe('need.flagged');

    const text = body(files().get('PROBLEM.md'));
    const ties = [t1, t2].sort((x, y) => (x.id < y.id ? -1 : 1));
    const order = needLines(text).map((l) => /\(needs\/(need_\w+)\.md\)/.exec(l)?.[1]);
    expect(order).toEqual([orphan.id, unmet.id, a1.id, b3.id, b2.id, b1.id, ties[0]!.id, ties[1]!.id]);
    expect(text).not.toContain(resolved.id);
    expect(text).not.toContain(dropped.id);

    const headings = text.split('\n').filter((l) => l.startsWith('## '));
    expect(headings).toEqual(['## Orphaned (1)', '## `Sprint_A` (2)', '## `Sprint_B` (5)']);
    expect(text).toContain('8 open and 0 active needs');

    const orphanLine = needLines(text)[0]!;
    expect(orphanLine).toContain('**orphaned**');
    expect(orphanLine).toContain('scope `Sprint_B`');
    expect(orphanLine).toContain('**unmet** since 2026-01-01T00:00:03.000Z');
    const unmetLine = needLines(text)[1]!;
    expect(unmetLine).toContain('**unmet** since 2026-01-01T00:00:06.000Z');
    expect(unmetLine).not.toContain('orphaned');
  });

  it('shows the lease holder as owner and unresolved dependencies as blockers', () => {
    const base = store.needs.create({ title: 'Base', priority: 1 });
    const done = store.needs.resolve(store.needs.create({ title: 'Done' }).id);
    const gone = store.needs.drop(store.needs.create({ title: 'Gone' }).id);
    store.needs.create({ title: 'Top', dependsOn: [base.id, done.id, gone.id] });
    const task = startTask(store, base.id, clock);

    const text = body(files().get('PROBLEM.md'));
    const [baseLine, topLine] = needLines(text);
    expect(baseLine).toContain(`· active · owner ${IDENTITY} (\`${task.id}\`)`);
    expect(topLine).toContain(`blocked by [\`${base.id}\`](needs/${base.id}.md) (active)`);
    // A dropped dependency never resolves, so it still blocks; it is not shown, so no link.
    expect(topLine).toContain(`\`${gone.id}\` (dropped)`);
    expect(topLine).not.toContain(done.id);
    expect(topLine).not.toContain('owner');

    // The task ends: the lease is released and the owner disappears.
    store.tasks.transition(task.id, 'failed', { error: 'boom' });
    expect(needLines(body(files().get('PROBLEM.md')))[0]).not.toContain('owner');
  });

  it('names the seq of the latest event about a shown need or its dependencies', () => {
    const dep = store.needs.create({ title: 'Dep' });
    store.needs.create({ title: 'Top', dependsOn: [dep.id] });
    store.needs.resolve(dep.id);
    const resolvedSeq = store.events.headSeq();
    // An event about another workspace is not an input of this one.
    store.workspaces.add({ name: 'other', outDir: 'other', tagsAny: ['x'] });
    const problem = files().get('PROBLEM.md')!;
    // `dep` is no longer shown, but `Top` depends on it: its resolution is reflected.
    expect(problem.seq).toBe(resolvedSeq);
    expect(parseHeader(problem.content)?.seq).toBe(resolvedSeq);
  });

  it('never names an earlier seq when a shown need closes: it leaves the file with that event', () => {
    const problemSeq = (ws = defaultWorkspace(store)) => renderProblemFile(store, ws).seq;
    store.needs.create({ title: 'Stays', tags: ['kernel'] });
    const leaving = store.needs.create({ title: 'Leaves', tags: ['kernel'] });
    store.workspaces.add({ name: 'kernel', outDir: 'kernel', tagsAny: ['kernel'] });
    const kernel = () => store.workspaces.require('kernel');
    const before = { all: problemSeq(), kernel: problemSeq(kernel()) };
    store.needs.resolve(leaving.id);
    const resolved = store.events.headSeq();
    expect(problemSeq()).toBe(resolved);
    expect(problemSeq(kernel())).toBe(resolved);
    expect(resolved).toBeGreaterThan(Math.max(before.all, before.kernel));
    // A need of other tags is not an input of the kernel workspace's file.
    store.needs.drop(store.needs.create({ title: 'Elsewhere', tags: ['docs'] }).id);
    expect(problemSeq(kernel())).toBe(resolved);
    expect(problemSeq()).toBe(store.events.headSeq());
    // Both paths name it alike.
    expect(files('kernel').get('PROBLEM.md')?.seq).toBe(resolved);
  });

  it('is the same file whether compiled alone or with the whole workspace', () => {
    const a = store.needs.create({ title: 'A', tags: ['kernel'] });
    store.needs.create({ title: 'B', dependsOn: [a.id], scope: 'S' });
    store.needs.setFlags(a.id, { orphaned: true });
    startTask(store, a.id, clock);
    const ws = defaultWorkspace(store);
    expect(renderProblemFile(store, ws)).toEqual(files().get('PROBLEM.md'));
  });

  it('does not change when only a heartbeat renews a lease (heartbeats write no events)', () => {
    const need = store.needs.create({ title: 'Busy' });
    const task = startTask(store, need.id, clock);
    const before = renderWorkspace(store, defaultWorkspace(store));
    const head = store.events.headSeq();
    clock.advance(30_000);
    store.leases.renew(need.id, { taskId: task.id, token: task.fencingToken }, clock.now() + 60_000);
    expect(store.events.headSeq()).toBe(head);
    expect(renderWorkspace(store, defaultWorkspace(store))).toEqual(before);
  });

  it('says so when nothing is open, and what became of the needs', () => {
    const problem = () => files().get('PROBLEM.md')!;
    expect(body(problem())).toContain('No open or active needs: the workspace has no needs yet.');
    const a = store.needs.create({ title: 'A' });
    const b = store.needs.create({ title: 'B' });
    store.needs.resolve(a.id);
    store.needs.resolve(b.id);
    expect(body(problem())).toContain('No open or active needs: all 2 needs are resolved.');
    // The header names the last event it reflects: the last resolution, not the workspace's.
    expect(parseHeader(problem().content)?.seq).toBe(store.events.headSeq());
    // The fast path writes the same file.
    expect(renderProblemFile(store, defaultWorkspace(store))).toEqual(problem());
    store.needs.drop(store.needs.create({ title: 'C' }).id);
    expect(body(problem())).toContain('No open or active needs: 2 needs resolved, 1 need dropped.');
    expect(renderProblemFile(store, defaultWorkspace(store))).toEqual(problem());
  });
});

describe('workspace filters', () => {
  it('compiles only the needs a workspace selects, by tags, scope and status', () => {
    const k = store.needs.create({ title: 'Kernel', tags: ['kernel', 'store'], scope: 'S1' });
    const s = store.needs.create({ title: 'Store', tags: ['store'], scope: 'S1' });
    const c = store.needs.create({ title: 'CLI', tags: ['cli'], scope: 'S2' });
    const r = store.needs.resolve(store.needs.create({ title: 'Done', tags: ['store'], scope: 'S1' }).id);
    store.workspaces.add({ name: 'any', outDir: 'a', tagsAny: ['kernel', 'cli'] });
    store.workspaces.add({ name: 'all', outDir: 'b', tagsAll: ['kernel', 'store'] });
    store.workspaces.add({ name: 'scoped', outDir: 'c', scope: 'S1', statuses: ['open'] });
    const pages = (w: string) => [...files(w).keys()].filter((p) => p.startsWith('needs/')).sort();
    const page = (id: string) => `needs/${id}.md`;
    expect(pages('any')).toEqual([page(k.id), page(c.id)].sort());
    expect(pages('all')).toEqual([page(k.id)]);
    expect(pages('scoped')).toEqual([page(k.id), page(s.id)].sort());
    expect(pages('default')).toHaveLength(4);
    expect(body(files('scoped').get('README.md'))).toContain('Filter: scope `S1`; status open.');
    expect(body(files('default').get('README.md'))).toContain(r.id);
  });
});

describe('README.md', () => {
  it('counts needs by scope and status and links every need page', () => {
    const a = store.needs.create({ title: 'A [x]', scope: 'S1' });
    store.needs.create({ title: 'B', scope: 'S1' });
    const c = store.needs.create({ title: 'C', scope: 'S2' });
    store.needs.resolve(c.id);
    startTask(store, a.id, clock);
    const text = body(files().get('README.md'));
    expect(text).toContain('| scope | open | active | resolved | dropped | total |');
    expect(text).toContain('| `S1` | 1 | 1 | 0 | 0 | 2 |');
    expect(text).toContain('| `S2` | 0 | 0 | 1 | 0 | 1 |');
    expect(text).toContain('| **all** | 1 | 1 | 1 | 0 | 3 |');
    expect(text).toContain(`[A \\[x\\]](needs/${a.id}.md) · active · P2`);
    expect(text).toContain(`[C](needs/${c.id}.md) · resolved`);
  });
});

describe('graph.md', () => {
  it('draws depends_on edges as Mermaid with titles escaped and statuses shown', () => {
    const nasty = store.needs.create({ title: 'Say "hi" [now] | {x} `y` <b>', priority: 1 });
    const mid = store.needs.create({ title: 'Mid (a) ; b', dependsOn: [nasty.id] });
    const done = store.needs.create({ title: 'Done dep' });
    store.edges.link(mid.id, 'depends_on', done.id);
    store.needs.resolve(done.id);
    const lonely = store.needs.resolve(store.needs.create({ title: 'Lonely resolved' }).id);

    const text = body(files().get('graph.md'));
    const block = /```mermaid\n([\s\S]*?)\n```/.exec(text)?.[1];
    expect(block).toBeDefined();
    const lines = block!.split('\n');
    expect(lines[0]).toBe('graph TD');
    const nodes = lines.filter((l) => l.includes('["'));
    for (const l of nodes)
      expect(l.replace('<br/>', ' ')).toMatch(/^ {2}need_[0-9A-Z]{26}\["[^"[\]|`<>{}]*"\]$/);
    expect(nodes.map((l) => l.trim().slice(0, 31))).toEqual([nasty.id, mid.id, done.id]);
    expect(text).toContain(
      `${nasty.id}["Say #quot;hi#quot; #91;now#93; #124; #123;x#125; #96;y#96; #lt;b#gt;<br/>open · P1"]`,
    );
    expect(text).toContain(`${done.id}["Done dep<br/>resolved · P2"]`);
    expect(lines).toContain(`  ${mid.id} --> ${nasty.id}`);
    expect(lines).toContain(`  ${mid.id} --> ${done.id}`);
    expect(text).not.toContain(lonely.id);
    expect(lines.some((l) => l.startsWith('  class ') && l.endsWith(' status_resolved'))).toBe(true);
  });
});

describe('need pages', () => {
  it('show body, acceptance, edges both ways, tasks and outcomes, artifacts and recent events', () => {
    const base = store.needs.create({ title: 'Base', tags: ['store', 'kernel'] });
    const need = store.needs.create({
      title: 'The *need*',
      body: '## Detail\n\nSome `code`.\n',
      acceptance: 'Tests pass.',
      dependsOn: [base.id],
      priority: 0,
      scope: 'Sprint_X',
    });
    const child = store.needs.create({ title: 'Child', dependsOn: [need.id] });
    store.edges.link(child.id, 'child_of', need.id);
    const note = store.artifacts.add(
      { kind: 'note', title: 'Design note', content: 'SECRET CONTENT', summary: 'why we chose X' },
      { needId: need.id, tokenCount: 12 },
    ).artifact;
    const first = store.tasks.create(need.id, IDENTITY);
    store.tasks.transition(first.id, 'cancelled', { error: 'operator | stop' });
    const second = startTask(store, need.id, clock);
    clock.advance(60_000);
    store.tasks.transition(second.id, 'succeeded', { outcome: 'progressed', summary: 'half\ndone' });

    const text = body(files().get(`needs/${need.id}.md`));
    expect(text.startsWith('# The \\*need\\*\n')).toBe(true);
    expect(text).toContain(`\`${need.id}\` · **open** · P0 · scope \`Sprint_X\` · once`);
    expect(text).toContain('## Body\n\n## Detail\n\nSome `code`.\n');
    expect(text).toContain('## Acceptance\n\nTests pass.\n');
    expect(text).toContain(`## Depends on\n\n- [Base](${base.id}.md) · open · \`${base.id}\``);
    expect(text).toContain(`## Needed by\n\n- [Child](${child.id}.md) · open · \`${child.id}\``);
    expect(text).toContain(`- ← \`child_of\` from [Child](${child.id}.md) · open · \`${child.id}\``);
    expect(text).toContain(`- **attempt 1** · \`${first.id}\` · janitor · cancelled`);
    expect(text).toContain('  - error: operator \\| stop');
    expect(text).toContain(
      `- **attempt 2** · \`${second.id}\` · janitor · succeeded · outcome **progressed**`,
    );
    expect(text).toContain('finished 2026-01-01T00:01:00.000Z');
    expect(text).toContain('  - summary: half done');
    expect(text).toContain(`- **Design note** · note · \`${note.id}\` · 12 tokens\n  - why we chose X`);
    expect(text).not.toContain('SECRET CONTENT');
    expect(text).toMatch(
      /## Recent events\n\n- seq \d+ · 2026-01-01T00:01:00\.000Z · `task\.succeeded` by cli/,
    );
    expect(text).toContain('`need.created` by cli');
    expect(text).toContain('- Owner: _none_');

    const basePage = files().get(`needs/${base.id}.md`)!;
    expect(body(basePage)).toContain(`## Needed by\n\n- [The \\*need\\*](${need.id}.md) · open`);
    expect(body(basePage)).toContain('- Tags: `kernel`, `store`');
  });

  it('reflect the latest event about the need or a neighbour', () => {
    const a = store.needs.create({ title: 'A' });
    const b = store.needs.create({ title: 'B', dependsOn: [a.id] });
    const lonely = store.needs.create({ title: 'Lonely' });
    const lonelySeq = store.events.headSeq();
    store.needs.update(a.id, { title: 'A renamed' });
    const head = store.events.headSeq();
    const f = files();
    expect(f.get(`needs/${a.id}.md`)?.seq).toBe(head);
    // B shows A's title, so A's rename is an input of B's page.
    expect(f.get(`needs/${b.id}.md`)?.seq).toBe(head);
    expect(body(f.get(`needs/${b.id}.md`))).toContain('[A renamed]');
    expect(f.get(`needs/${lonely.id}.md`)?.seq).toBe(lonelySeq);
  });

  it('link only the neighbours that have a page in the workspace', () => {
    const outside = store.needs.create({ title: 'Outside', tags: ['other'] });
    const inside = store.needs.create({ title: 'Inside', tags: ['mine'], dependsOn: [outside.id] });
    store.workspaces.add({ name: 'mine', outDir: 'mine', tagsAny: ['mine'] });
    const text = body(files('mine').get(`needs/${inside.id}.md`));
    expect(text).toContain(`- Outside · open · \`${outside.id}\` (not in this workspace)`);
  });
});

describe('renderView', () => {
  it('renders one file by path, byte for byte what compile writes', () => {
    const a = store.needs.create({ title: 'A' });
    const ws = defaultWorkspace(store);
    const all = files();
    for (const path of ['PROBLEM.md', 'README.md', 'graph.md', `needs/${a.id}.md`]) {
      expect(renderView(store, ws, path)).toEqual(all.get(path));
    }
    expect(renderView(store, ws, 'needs/need_00000000000000000000000000.md')).toBeUndefined();
  });
});

describe('need flags (store.needs.setFlags)', () => {
  it('are facts: a change writes one event, a repeat writes none, a closed need refuses them', () => {
    const need = store.needs.create({ title: 'Flag me' });
    const head = store.events.headSeq();
    const flagged = store.needs.setFlags(need.id, { unmetSince: clock.now(), orphaned: true });
    expect(flagged).toMatchObject({ unmetSince: clock.now(), orphaned: true, version: need.version });
    expect(store.events.headSeq()).toBe(head + 1);
    expect(store.events.forNeed(need.id, 1)[0]?.payload).toEqual({ unmetSince: clock.now(), orphaned: true });
    store.needs.setFlags(need.id, { orphaned: true });
    expect(store.events.headSeq()).toBe(head + 1);

    // Resolving clears the flags; the need leaves PROBLEM.md and its page loses the marks.
    store.needs.resolve(need.id);
    expect(body(files().get('PROBLEM.md'))).not.toContain(need.id);
    expect(body(files().get(`needs/${need.id}.md`))).not.toContain('Orphaned');
    expect(() => store.needs.setFlags(need.id, { orphaned: true })).toThrow(
      /is resolved: only open or active/,
    );
    expect(() => store.needs.setFlags(need.id, { unmetSince: 1.5 })).toThrow(/whole milliseconds/);
  });
});
