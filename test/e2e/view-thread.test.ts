/**
 * `mlos run` keeps its views compiled in a worker thread with its own read-only connection (see
 * ViewThread). The thread's module is the built one (a worker thread cannot load TypeScript
 * sources), so this suite runs against dist/, as `npm test` builds it first.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/scheduler/logger.js';
import type { ViewThread as ViewThreadType } from '../../src/scheduler/view-thread.js';
import type { Store } from '../../src/store/index.js';
import { makeTempDir, openTestStore } from '../helpers/store.js';

const { ViewThread } = (await import(
  new URL('../../dist/scheduler/view-thread.js', import.meta.url).href
)) as {
  ViewThread: typeof ViewThreadType;
};

let store: Store;
let dir: string;
let cleanup: () => void;
let thread: ViewThreadType | undefined;
const lines: { level: string; obj: object; msg?: string }[] = [];
const log: Logger = {
  info: (obj, msg) => lines.push({ level: 'info', obj, ...(msg !== undefined && { msg }) }),
  warn: (obj, msg) => lines.push({ level: 'warn', obj, ...(msg !== undefined && { msg }) }),
  error: (obj, msg) => lines.push({ level: 'error', obj, ...(msg !== undefined && { msg }) }),
  debug: () => {},
};

beforeEach(() => {
  ({ dir, cleanup } = makeTempDir());
  ({ store } = openTestStore(join(dir, 'mlos.db')));
  store.workspaces.add({ name: 'main', outDir: join(dir, 'main-views') });
  lines.length = 0;
});

afterEach(async () => {
  await thread?.close({ compile: false });
  thread = undefined;
  store.close();
  cleanup();
});

const problem = () => join(dir, 'main-views', 'PROBLEM.md');
const read = () => (existsSync(problem()) ? readFileSync(problem(), 'utf8') : '');

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the views thread', () => {
  it('compiles the views as the log moves, and once more on close, while this thread writes', async () => {
    store.needs.create({ title: 'First need', tags: ['kernel'] });
    expect(ViewThread.available()).toBe(true);
    thread = ViewThread.start(store.path, { log, pollMs: 20 });
    await until(() => read().includes('First need'), 'the first compile');

    // Written after the first compile: the thread sees the log move (pacing aside) and recompiles.
    store.needs.create({ title: 'Second need', tags: ['kernel'] });
    await until(() => read().includes('Second need'), 'a recompile');

    // A write right before close is in the views the close leaves, whatever the pacing.
    const last = store.needs.create({ title: 'Written last', tags: ['kernel'] });
    expect(await thread.close({ compile: true })).toBe('closed');
    expect(read()).toContain('Written last');
    expect(read()).toContain(`event seq ${store.events.headSeq()}`);
    expect(existsSync(join(dir, 'main-views', 'needs', `${last.id}.md`))).toBe(true);
    expect(lines.filter((l) => l.level !== 'info')).toEqual([]);
  });

  it('rewrites a view edited by hand on close, since the close compile checks every file', async () => {
    store.needs.create({ title: 'Kept need', tags: ['kernel'] });
    thread = ViewThread.start(store.path, { log, pollMs: 20 });
    await until(() => read().includes('Kept need'), 'the first compile');
    // Its header kept, its body changed: edited by hand (a file with no header is never overwritten).
    const [header] = read().split('\n');
    writeFileSync(problem(), `${header}\nedited by hand\n`);
    await thread.close({ compile: true });
    expect(read()).toContain('Kept need');
  });

  it('reports a thread that cannot start, once, with the reason', async () => {
    const failures: Error[] = [];
    const notADatabase = join(dir, 'not.db');
    writeFileSync(notADatabase, 'this is a text file, not SQLite '.repeat(64));
    thread = ViewThread.start(notADatabase, { log, onFailure: (e) => failures.push(e) });
    await until(() => failures.length > 0, 'the failure');
    // Dead before its close: the caller compiles the views itself.
    expect(await thread.close({ compile: true })).toBe('dead');
    expect(failures).toHaveLength(1);
    expect(failures[0]!.message).toMatch(/not a database/);
    expect(lines.find((l) => l.level === 'error')?.msg).toBe('the views thread failed');
  });

  it("logs a compile it refuses with the error's class and code, and keeps going", async () => {
    mkdirSync(join(dir, 'main-views'), { recursive: true });
    writeFileSync(problem(), 'my own notes, no mlos header\n');
    store.needs.create({ title: 'Blocked by a foreign file', tags: ['kernel'] });
    thread = ViewThread.start(store.path, { log, pollMs: 20 });
    await until(() => lines.some((l) => l.level === 'warn'), 'the warning');
    const warning = lines.find((l) => l.level === 'warn')!;
    expect(warning.msg).toBe('views not compiled');
    expect(warning.obj).toMatchObject({
      workspace: 'main',
      thread: 'views',
      err: {
        type: 'UserError',
        code: 'view_foreign_file',
        message: expect.stringMatching(/without an mlos header/),
      },
    });
    expect(await thread.close({ compile: false })).toBe('closed');
    expect(read()).toBe('my own notes, no mlos header\n');
  });
});
