/**
 * Writing views: the same state gives the same bytes, only changed files are rewritten, pages of
 * needs that left a workspace are removed, and a check names every missing, stale or hand-edited file.
 */
import { existsSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadWorkspaceInput, needPageSeq } from '../../../../src/kernel/views/data.js';
import { compileWorkspace, type WorkspaceReport } from '../../../../src/kernel/views/index.js';
import { type ManualClock, type Need, type Store, UserError } from '../../../../src/store/index.js';
import { defaultWorkspace, openStore, read, startTask, tempDir } from './fixture.js';

const AGGREGATES = ['PROBLEM.md', 'README.md', 'graph.md'];

let store: Store;
let clock: ManualClock;
let dir: string;
let cleanup: () => void;

beforeEach(() => {
  ({ store, clock } = openStore());
  ({ dir, cleanup } = tempDir());
});

afterEach(() => {
  store.close();
  cleanup();
});

/** A small graph touching every section of the views. */
function seed(s: Store, c: ManualClock): { a: Need; b: Need; lonely: Need } {
  const a = s.needs.create({ title: 'A "quoted" [x]', tags: ['kernel'], priority: 1, body: 'Body of A.' });
  c.advance(1000);
  const b = s.needs.create({ title: 'B', dependsOn: [a.id], scope: 'Sprint_X', acceptance: 'B works' });
  c.advance(1000);
  const lonely = s.needs.create({ title: 'Lonely', scope: 'Sprint_X' });
  startTask(s, a.id, c);
  s.artifacts.add({ kind: 'note', title: 'Note', content: 'hello', summary: 'a note' }, { needId: a.id });
  s.needs.setFlags(lonely.id, { unmetSince: c.now(), orphaned: true });
  return { a, b, lonely };
}

function compile(out = dir, options: { check?: boolean; force?: boolean } = {}): WorkspaceReport {
  return compileWorkspace(store, defaultWorkspace(store), { outDir: out, ...options });
}

/** Every file under `root`, relative, with its bytes. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      else out[path] = read(root, path);
    }
  };
  walk('');
  return out;
}

const page = (n: Need) => `needs/${n.id}.md`;

describe('determinism', () => {
  it('gives identical bytes for the same state: twice, into two folders, and from two databases', () => {
    seed(store, clock);
    const first = compile();
    expect(first.written).toHaveLength(first.files);
    const again = compile();
    expect(again.written).toEqual([]);
    expect(again.unchanged).toBe(first.files);

    const second = tempDir();
    const third = tempDir();
    const twin = openStore();
    try {
      compile(second.dir);
      seed(twin.store, twin.clock);
      compileWorkspace(twin.store, defaultWorkspace(twin.store), { outDir: third.dir });
      const reference = tree(dir);
      expect(Object.keys(reference)).toHaveLength(first.files);
      expect(tree(second.dir)).toEqual(reference);
      expect(tree(third.dir)).toEqual(reference);
    } finally {
      twin.store.close();
      second.cleanup();
      third.cleanup();
    }
  });
});

describe('incremental compile', () => {
  it('rewrites only the changed need page, its neighbours and the aggregate files', () => {
    const { a, b, lonely } = seed(store, clock);
    compile();
    const old = new Date(1_000_000);
    for (const path of Object.keys(tree(dir))) utimesSync(join(dir, path), old, old);

    store.needs.update(lonely.id, { priority: 0 });
    const report = compile();
    expect(report.written).toEqual([...AGGREGATES, page(lonely)]);
    expect(report.removed).toEqual([]);
    expect(report.unchanged).toBe(2);
    expect(statSync(join(dir, page(a))).mtimeMs).toBe(old.getTime());
    expect(statSync(join(dir, page(b))).mtimeMs).toBe(old.getTime());
    expect(statSync(join(dir, page(lonely))).mtimeMs).not.toBe(old.getTime());

    // A's title shows on B's page: renaming A rewrites both.
    store.needs.update(a.id, { title: 'A renamed' });
    expect(compile().written).toEqual([...AGGREGATES, page(a), page(b)].sort());
  });

  it('writes nothing when only a heartbeat happened', () => {
    const { a } = seed(store, clock);
    compile();
    const task = store.tasks.liveFor(a.id)!;
    clock.advance(10_000);
    store.leases.renew(a.id, { taskId: task.id, token: task.fencingToken }, clock.now() + 60_000);
    expect(compile().written).toEqual([]);
  });

  it('removes the generated pages of needs that left the workspace, and nothing else', () => {
    const mine = store.needs.create({ title: 'Mine', tags: ['mine'] });
    const leaving = store.needs.create({ title: 'Leaving', tags: ['mine'] });
    const ws = store.workspaces.add({ name: 'mine', outDir: dir, tagsAny: ['mine'] });
    compileWorkspace(store, ws);
    expect(existsSync(join(dir, page(leaving)))).toBe(true);
    writeFileSync(join(dir, 'needs', 'my-notes.md'), '# my own notes\n');

    store.needs.update(leaving.id, { tags: ['other'] });
    const report = compileWorkspace(store, store.workspaces.require('mine'));
    expect(report.removed).toEqual([page(leaving)]);
    expect(existsSync(join(dir, page(leaving)))).toBe(false);
    expect(existsSync(join(dir, page(mine)))).toBe(true);
    expect(read(dir, 'needs/my-notes.md')).toBe('# my own notes\n');
    expect(read(dir, 'README.md')).not.toContain(leaving.id);
  });
});

describe('compiling with what this process wrote (known)', () => {
  it('does not read back a file whose bytes it wrote, and rewrites one whose bytes changed', () => {
    const { a, lonely } = seed(store, clock);
    const known = new Map<string, string>();
    const first = compileWorkspace(store, defaultWorkspace(store), { outDir: dir, known });
    expect([...known.keys()].sort()).toEqual(Object.keys(tree(dir)).sort());
    expect(first.written).toHaveLength(known.size);

    // A page deleted behind its back is taken as in place: it is known, so not read.
    rmSync(join(dir, page(a)));
    store.needs.update(lonely.id, { priority: 0 });
    const second = compileWorkspace(store, defaultWorkspace(store), { outDir: dir, known });
    expect(second.written).toEqual([...AGGREGATES, page(lonely)]);
    expect(second.problems.filter((p) => p.kind === 'missing')).toEqual([]);
    expect(existsSync(join(dir, page(a)))).toBe(false);

    // Without it every file is read again: the missing page is found and written.
    const full = compile();
    expect(full.written).toEqual([page(a)]);
    expect(full.problems).toEqual([{ path: page(a), kind: 'missing', detail: 'missing' }]);
  });

  it('forgets the pages it removed, and a check never trusts it', () => {
    const leaving = store.needs.create({ title: 'Leaving', tags: ['mine'] });
    const ws = store.workspaces.add({ name: 'mine', outDir: dir, tagsAny: ['mine'] });
    const known = new Map<string, string>();
    compileWorkspace(store, ws, { known });
    expect(known.has(page(leaving))).toBe(true);
    store.needs.update(leaving.id, { tags: ['other'] });
    expect(compileWorkspace(store, store.workspaces.require('mine'), { known }).removed).toEqual([
      page(leaving),
    ]);
    expect(known.has(page(leaving))).toBe(false);

    rmSync(join(dir, 'README.md'));
    const check = compileWorkspace(store, store.workspaces.require('mine'), { known, check: true });
    expect(check.problems.map((p) => p.path)).toEqual(['README.md']);
  });
});

describe('need pages a compile with known does not render', () => {
  it('are the pages whose seq has not moved; what it leaves equals a full compile', () => {
    const { a, b, lonely } = seed(store, clock);
    const still = store.needs.create({ title: 'Still', tags: ['kernel'] });
    const ws = defaultWorkspace(store);
    const known = new Map<string, string>();
    compileWorkspace(store, ws, { outDir: dir, known });
    const seqs = (w = defaultWorkspace(store)) => {
      const input = store.views.snapshot(() => loadWorkspaceInput(store, w));
      return new Map(input.needs.map((n) => [n.id, needPageSeq(n.id, input)]));
    };
    const before = seqs();

    // lonely changes, and b: a is b's dependency, so a's page shows b's title and its seq moves
    // with b's event. Still's does not.
    store.needs.update(lonely.id, { priority: 0 });
    store.needs.update(b.id, { title: 'B renamed' });
    const after = seqs();
    const moved = [...after].filter(([id, seq]) => before.get(id) !== seq).map(([id]) => id);
    expect(moved.sort()).toEqual([a.id, b.id, lonely.id].sort());

    const skipped: string[] = [];
    const input = store.views.snapshot(() =>
      loadWorkspaceInput(store, ws, {
        skipPage: (id, seq) => {
          const skip = before.get(id) === seq;
          if (skip) skipped.push(id);
          return skip;
        },
      }),
    );
    expect(skipped).toEqual([still.id]);
    // A page that is not rendered has none of its details loaded.
    for (const id of skipped) expect(input.events.has(id) || input.tasks.has(id)).toBe(false);

    const incremental = compileWorkspace(store, ws, { outDir: dir, known });
    expect(incremental.written.sort()).toEqual([...AGGREGATES, page(a), page(b), page(lonely)].sort());
    expect(incremental.files).toBe(Object.keys(tree(dir)).length);
    expect(incremental.removed).toEqual([]);
    // Everything on disk is what a compile that renders every page writes.
    expect(compileWorkspace(store, ws, { outDir: dir, check: true }).problems).toEqual([]);
  });
});

describe('check', () => {
  it('passes when the folder is up to date', () => {
    seed(store, clock);
    compile();
    const report = compile(dir, { check: true });
    expect(report.problems).toEqual([]);
    expect(report.written).toEqual([]);
  });

  it('names every missing, stale, hand-edited and left-over file, and writes nothing', () => {
    const { a, b, lonely } = seed(store, clock);
    const gone = store.needs.create({ title: 'Gone soon', tags: ['temp'] });
    store.workspaces.add(
      { name: 'default', outDir: 'views', statuses: ['open', 'active'] },
      { replace: true },
    );
    compile();
    // Missing: a page deleted. Edited: README appended to. Stale: B changed. Left over: `gone`
    // is dropped, so the open/active workspace no longer shows it.
    rmSync(join(dir, page(lonely)));
    writeFileSync(join(dir, 'README.md'), `${read(dir, 'README.md')}\nmy edit\n`);
    store.needs.update(b.id, { body: 'changed' });
    store.needs.drop(gone.id);
    const before = tree(dir);

    const report = compile(dir, { check: true });
    expect(tree(dir)).toEqual(before);
    const byPath = Object.fromEntries(report.problems.map((p) => [p.path, p.kind]));
    expect(byPath).toEqual({
      'PROBLEM.md': 'stale',
      'README.md': 'edited',
      'graph.md': 'stale',
      [page(b)]: 'stale',
      // A's page shows its neighbour B, so it reflects B's latest event.
      [page(a)]: 'stale',
      [page(lonely)]: 'missing',
      [page(gone)]: 'extra',
    });
    expect(report.problems.find((p) => p.path === page(b))?.detail).toMatch(
      /^stale: reflects event seq \d+, the database compiles it at seq \d+$/,
    );
    expect(report.problems.find((p) => p.path === 'README.md')?.detail).toContain('edited by hand');

    // Compiling fixes everything; the check passes again.
    const fixed = compile();
    expect(fixed.removed).toEqual([page(gone)]);
    expect(compile(dir, { check: true }).problems).toEqual([]);
  });

  it('flags a hand edit even when the header line was left intact', () => {
    seed(store, clock);
    compile();
    const text = read(dir, 'PROBLEM.md');
    writeFileSync(join(dir, 'PROBLEM.md'), text.replace('Orphaned', 'Abandoned'));
    expect(compile(dir, { check: true }).problems).toEqual([
      {
        path: 'PROBLEM.md',
        kind: 'edited',
        detail: 'edited by hand: its body no longer matches the sha256 in its header',
      },
    ]);
  });
});

describe('files mlos did not write', () => {
  it('are refused unless --force, and nothing is written', () => {
    seed(store, clock);
    writeFileSync(join(dir, 'README.md'), '# Our project\n');
    let error: unknown;
    try {
      compile();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain(join(dir, 'README.md'));
    expect((error as Error).message).toContain('--force');
    expect(existsSync(join(dir, 'PROBLEM.md'))).toBe(false);
    expect(read(dir, 'README.md')).toBe('# Our project\n');

    expect(compile(dir, { check: true }).problems.find((p) => p.path === 'README.md')?.kind).toBe('edited');
    const forced = compile(dir, { force: true });
    expect(forced.written).toContain('README.md');
    expect(compile(dir, { check: true }).problems).toEqual([]);
  });
});
