/**
 * The views `mlos run` keeps compiled: refreshed after the log moved, paced so that compiling a
 * large graph takes at most its share of the time, and read back from disk once a minute.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compileWorkspace } from '../../../src/kernel/views/compile.js';
import { silentLogger } from '../../../src/scheduler/logger.js';
import { ViewKeeper, type ViewKeeperOptions } from '../../../src/scheduler/view-keeper.js';
import type { Store } from '../../../src/store/index.js';
import { makeTempDir, openTestStore } from '../../helpers/store.js';

let store: Store;
let dir: string;
let cleanup: () => void;
let now: number;

beforeEach(() => {
  ({ dir, cleanup } = makeTempDir());
  ({ store } = openTestStore(join(dir, 'mlos.db')));
  now = 1_000_000;
});

afterEach(() => {
  store.close();
  cleanup();
});

/** A keeper on the test's clock whose compiles take `costMs` of it and are recorded. */
function keeper(costMs: number, extra: Partial<ViewKeeperOptions> = {}) {
  const compiles: { at: number; known: Map<string, string> }[] = [];
  const k = new ViewKeeper({
    store,
    log: silentLogger,
    now: () => now,
    compile: (_store, workspace, options) => {
      compiles.push({ at: now, known: options.known! });
      now += costMs;
      return {
        workspace: workspace.name,
        files: 0,
        outDir: dir,
        written: [],
        unchanged: 0,
        removed: [],
        problems: [],
      };
    },
    ...extra,
  });
  return { k, compiles };
}

describe('the view keeper', () => {
  it('compiles after the log moved, at most once a second', () => {
    const { k, compiles } = keeper(5);
    expect(k.maybeCompile()).toBe(true);
    now += 5000;
    expect(k.maybeCompile()).toBe(false); // the log did not move
    store.needs.create({ title: 'one' });
    expect(k.maybeCompile()).toBe(true);
    store.needs.create({ title: 'two' });
    now += 500;
    expect(k.maybeCompile()).toBe(false);
    now += 500;
    expect(k.maybeCompile()).toBe(true);
    expect(compiles).toHaveLength(3);
  });

  it('waits ten times as long as the last compile took, so views take at most a tenth of the time', () => {
    const warnings: string[] = [];
    const { k, compiles } = keeper(800, {
      log: {
        ...silentLogger,
        warn: (_fields: unknown, message?: string) => void warnings.push(message ?? ''),
      },
    });
    const start = now;
    expect(k.maybeCompile()).toBe(true);
    store.needs.create({ title: 'one' });
    now = start + 7999;
    expect(k.maybeCompile()).toBe(false);
    now = start + 8000;
    expect(k.maybeCompile()).toBe(true);
    expect(compiles.map((c) => c.at - start)).toEqual([0, 8000]);
    // Said once, not on every slow compile.
    expect(warnings).toEqual([
      'compiling the views takes long on this graph: they are refreshed less often (mlos compile writes them at once)',
    ]);
  });

  it('keeps what it wrote between compiles and starts afresh (reading every file) once a minute and when forced', () => {
    const { k, compiles } = keeper(1);
    k.maybeCompile();
    compiles[0]!.known.set('PROBLEM.md', 'header');
    for (const step of [2000, 30_000]) {
      store.needs.create({ title: `after ${step}` });
      now += step;
      k.maybeCompile();
    }
    expect(compiles[1]!.known).toBe(compiles[0]!.known);
    expect(compiles[2]!.known).toBe(compiles[0]!.known);
    store.needs.create({ title: 'a minute on' });
    now += 30_000;
    k.maybeCompile();
    expect(compiles[3]!.known).not.toBe(compiles[0]!.known);
    expect(compiles[3]!.known.size).toBe(0);
    expect(k.maybeCompile(true)).toBe(true);
    expect(compiles[4]!.known).not.toBe(compiles[3]!.known);
  });

  it('rewrites a view deleted by hand at the next read-back, and a changed one at once', () => {
    const k = new ViewKeeper({ store, log: silentLogger, now: () => now, compile: compileWorkspace });
    const kept = store.needs.create({ title: 'kept' });
    k.maybeCompile();
    const views = join(dir, 'views');
    const keptPage = join(views, 'needs', `${kept.id}.md`);
    expect(existsSync(keptPage)).toBe(true);

    rmSync(keptPage);
    rmSync(join(views, 'PROBLEM.md'));
    store.needs.create({ title: 'another' });
    now += 2000;
    k.maybeCompile();
    expect(existsSync(join(views, 'PROBLEM.md'))).toBe(true); // its bytes changed
    expect(existsSync(keptPage)).toBe(false); // unchanged, so not read back yet

    store.needs.create({ title: 'a minute later' });
    now += 60_000;
    k.maybeCompile();
    expect(existsSync(keptPage)).toBe(true);
  });
});

/** The built view thread (npm test builds first); the keeper itself runs from the sources. */
const BUILT_THREAD = new URL('../../../dist/scheduler/view-thread.js', import.meta.url);

/** A keeper whose view thread runs `source` (a module that misbehaves), with the errors it logs. */
function keeperOnThread(source: string) {
  const module = join(dir, 'thread-under-test.mjs');
  writeFileSync(module, source);
  const errors: string[] = [];
  const k = new ViewKeeper({
    store,
    log: { ...silentLogger, error: (_fields: unknown, message?: string) => void errors.push(message ?? '') },
    now: () => now,
    thread: pathToFileURL(module),
  });
  return { k, errors };
}

describe('the view keeper with a view thread', () => {
  it('compiles in the thread while this one goes on, one compile at a time, and brings views up to date at close', async () => {
    const k = new ViewKeeper({ store, log: silentLogger, now: () => now, thread: BUILT_THREAD });
    expect(k.threaded).toBe(true);
    const first = store.needs.create({ title: 'first' });
    expect(k.maybeCompile()).toBe(true);
    // Started, not done: this thread is not held up, and a second compile waits for the first.
    store.needs.create({ title: 'second' });
    now += 5000;
    expect(k.maybeCompile()).toBe(false);
    await k.settled();
    const problem = join(dir, 'views', 'PROBLEM.md');
    expect(existsSync(join(dir, 'views', 'needs', `${first.id}.md`))).toBe(true);
    expect(readFileSync(problem, 'utf8')).toContain('first');
    // The log moved since: the next compile picks the second need up.
    expect(k.maybeCompile()).toBe(true);
    await k.settled();
    expect(readFileSync(problem, 'utf8')).toContain('second');
    // At close, what changed since the last compile is written, however soon.
    const third = store.needs.create({ title: 'third' });
    await k.close(true);
    expect(readFileSync(problem, 'utf8')).toContain('third');
    expect(existsSync(join(dir, 'views', 'needs', `${third.id}.md`))).toBe(true);
  });

  it('compiles in this thread from the moment the view thread stops, having said so once', async () => {
    const { k, errors } = keeperOnThread("throw new Error('the view thread broke');\n");
    expect(k.threaded).toBe(true);
    store.needs.create({ title: 'still compiled' });
    expect(k.maybeCompile()).toBe(true);
    await k.settled();
    await vi.waitFor(() => expect(k.threaded).toBe(false));
    expect(errors).toEqual([
      "the view thread stopped: views are compiled in the supervisor's thread from now on",
    ]);
    expect(k.maybeCompile()).toBe(true);
    expect(readFileSync(join(dir, 'views', 'PROBLEM.md'), 'utf8')).toContain('still compiled');
    await k.close(true);
  });

  it.each([
    [
      'fails on a compile',
      "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => { throw new Error('broke mid-compile'); });\n",
    ],
    [
      'exits on a compile',
      "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(0));\n",
    ],
  ])('a view thread that %s neither hangs the close nor loses the final compile', async (_what, source) => {
    const { k, errors } = keeperOnThread(source);
    store.needs.create({ title: 'written at close' });
    await k.close(true);
    expect(readFileSync(join(dir, 'views', 'PROBLEM.md'), 'utf8')).toContain('written at close');
    expect(errors).toEqual([
      "the view thread stopped: views are compiled in the supervisor's thread from now on",
    ]);
  });

  it('keeps no finished process alive, yet the process waits for a compile it awaits', () => {
    const script = `
      import { ViewKeeper } from ${JSON.stringify(new URL('../../../dist/scheduler/view-keeper.js', import.meta.url).href)};
      import { Store } from ${JSON.stringify(new URL('../../../dist/store/index.js', import.meta.url).href)};
      const store = Store.open(${JSON.stringify(join(dir, 'child.db'))});
      store.needs.create({ title: 'from the child' });
      const k = new ViewKeeper({ store, log: { info() {}, warn() {}, error() {}, debug() {} }, thread: new URL(${JSON.stringify(BUILT_THREAD.href)}) });
      // Another keeper that never compiles.
      new ViewKeeper({ store, log: { info() {}, warn() {}, error() {}, debug() {} }, thread: new URL(${JSON.stringify(BUILT_THREAD.href)}) });
      k.maybeCompile();
      await k.settled();
      console.log(k.threaded ? 'compiled in the thread' : 'not threaded');
      // Neither is closed: the process must still end.`;
    // A file, not --eval: a worker inherits the parent's flags, and --input-type breaks its module.
    const file = join(dir, 'child.mjs');
    writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('compiled in the thread');
    expect(readFileSync(join(dir, 'views', 'PROBLEM.md'), 'utf8')).toContain('from the child');
  });

  it('compiles in this thread when the thread module is not built (running from the sources)', () => {
    const k = new ViewKeeper({
      store,
      log: silentLogger,
      now: () => now,
      thread: new URL('./no-such-view-thread.js', import.meta.url),
    });
    expect(k.threaded).toBe(false);
    store.needs.create({ title: 'here' });
    expect(k.maybeCompile()).toBe(true);
    expect(readFileSync(join(dir, 'views', 'PROBLEM.md'), 'utf8')).toContain('here');
  });
});
