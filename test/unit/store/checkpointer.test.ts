import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpointer } from '../../../src/store/index.js';
import { makeTempDir, openRaw, openTestStore } from '../../helpers/store.js';

/** Background WAL checkpoints: the writer's commits stop copying the log into the database. */
describe('the checkpointer', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('copies the log into the database from its own thread while the writer never does', async () => {
    const tmp = makeTempDir();
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, 'mlos.db');
    const { store } = openTestStore(path);
    cleanups.push(() => store.close());
    store.deferCheckpoints(1_000_000);
    const size = () => statSync(path).size;
    const before = size();
    // About 5 MB of log: five times what SQLite would checkpoint in a commit by default.
    for (let i = 0; i < 100; i++) store.needs.create({ title: `big ${i}`, body: 'x'.repeat(50_000) });
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(4_000_000);
    expect(size()).toBe(before);

    const errors: string[] = [];
    const checkpointer = Checkpointer.start(path, { everyMs: 20, onError: (e) => errors.push(e) });
    const deadline = Date.now() + 10_000;
    while (size() < 4_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await checkpointer.close();
    expect(size()).toBeGreaterThan(4_000_000);
    expect(errors).toEqual([]);
    // Everything in the log is in the database now: a checkpoint has nothing left to copy.
    const raw = openRaw(path);
    cleanups.push(() => {
      raw.close();
    });
    const [result] = raw.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
    expect(result!.checkpointed).toBe(result!.log);
    // The writer goes on as before.
    expect(store.needs.create({ title: 'after' }).title).toBe('after');
  });

  it('reports a database it cannot open, and closes anyway', async () => {
    const tmp = makeTempDir();
    cleanups.push(tmp.cleanup);
    const errors: string[] = [];
    const checkpointer = Checkpointer.start(join(tmp.dir, 'missing', 'mlos.db'), {
      everyMs: 20,
      onError: (e) => errors.push(e),
    });
    const deadline = Date.now() + 5_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(errors[0]).toMatch(/unable to open database file|directory does not exist/);
    await checkpointer.close(500);
  });
});
