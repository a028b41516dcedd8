/**
 * `store.backup(path)` (VACUUM INTO) is an online, consistent copy: taken while another process
 * writes, each copy opens, migrates as a no-op and verifies.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseError, UserError } from '../../src/store/index.js';
import { startWriter } from '../helpers/processes.js';
import { makeTempDir, openTestStore, thrown } from '../helpers/store.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('store backup', () => {
  it('copies a database that another process is writing into a copy that opens and verifies', async () => {
    const tmp = makeTempDir('mlos-backup-');
    cleanups.push(tmp.cleanup);
    const db = join(tmp.dir, 'mlos.db');
    const go = join(tmp.dir, 'go');
    const { store } = openTestStore(db);
    cleanups.push(() => store.close());
    const writer = startWriter({ db, actor: 'writer', seed: 7, ms: 3000, go });
    await writer.ready;
    writeFileSync(go, 'go');
    let writerExited = false;
    const exited = () => {
      writerExited = true;
    };
    writer.done.then(exited, exited);
    while (store.events.headSeq() === 0 && !writerExited) await sleep(10);
    expect(store.events.headSeq(), 'the writer never wrote').toBeGreaterThan(0);

    const copies: { path: string; head: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const path = join(tmp.dir, 'backups', `copy-${i}.db`);
      const before = store.events.headSeq();
      store.backup(path);
      copies.push({ path, head: before });
      await sleep(250);
    }
    const report = await writer.done;
    expect(report.failed).toBe(0);
    expect(report.errors).toEqual([]);

    let lastHead = 0;
    for (const copy of copies) {
      const { store: restored } = openTestStore(copy.path);
      const verified = restored.events.verify();
      expect(verified, `${copy.path} does not verify`).toMatchObject({ ok: true });
      // A consistent snapshot: every event in the copy matches a row it describes.
      const head = restored.events.headSeq();
      expect(head).toBeGreaterThanOrEqual(copy.head);
      expect(head).toBeGreaterThanOrEqual(lastHead);
      lastHead = head;
      const needs = restored.needs.list().length;
      const resolved = restored.needs.list({ status: ['resolved'] }).length;
      expect(needs + resolved).toBe(head);
      restored.close();
    }
    // The writer kept writing while the copies were taken.
    expect(store.events.headSeq()).toBeGreaterThan(copies[0]!.head);
    expect(store.events.verify().ok).toBe(true);
  });

  it('refuses to overwrite an existing file and leaves it as it was', () => {
    const tmp = makeTempDir('mlos-backup-');
    cleanups.push(tmp.cleanup);
    const { store } = openTestStore(join(tmp.dir, 'mlos.db'));
    cleanups.push(() => store.close());
    store.needs.create({ title: 'precious' });
    const target = join(tmp.dir, 'existing.db');
    writeFileSync(target, 'not yours');
    const error = thrown(() => store.backup(target));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(`${target} already exists: choose a new file for the backup`);
    expect(readFileSync(target, 'utf8')).toBe('not yours');
  });

  it('creates missing folders, and names the target when it cannot be written', () => {
    const tmp = makeTempDir('mlos-backup-');
    cleanups.push(tmp.cleanup);
    const { store } = openTestStore(join(tmp.dir, 'mlos.db'));
    cleanups.push(() => store.close());
    store.backup(join(tmp.dir, 'a', 'b', 'copy.db'));
    expect(existsSync(join(tmp.dir, 'a', 'b', 'copy.db'))).toBe(true);
    const blocker = join(tmp.dir, 'a-file');
    writeFileSync(blocker, '');
    const target = join(blocker, 'copy.db');
    const error = thrown(() => store.backup(target));
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'backup_failed' });
    expect(error.message).toMatch(new RegExp(`^cannot write backup ${target}: `));
  });

  it('backs up an in-memory store too', () => {
    const tmp = makeTempDir('mlos-backup-');
    cleanups.push(tmp.cleanup);
    const { store } = openTestStore();
    store.needs.create({ title: 'in memory' });
    const target = join(tmp.dir, 'copy.db');
    store.backup(target);
    expect(existsSync(target)).toBe(true);
    const { store: copy } = openTestStore(target);
    expect(copy.needs.list().map((n) => n.title)).toEqual(['in memory']);
    expect(copy.events.verify()).toMatchObject({ ok: true, checked: 1 });
    copy.close();
  });
});
