import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { createSeededPrng, ManualClock, Store, type Workspace } from '../../../../src/store/index.js';

export const IDENTITY = 'janitor';

/** A store on a manual clock and a seeded PRNG: the same calls give the same database. */
export function openStore(path = ':memory:'): { store: Store; clock: ManualClock } {
  const clock = new ManualClock();
  const store = Store.open(path, { clock, prng: createSeededPrng(1) });
  store.identities.pin(IDENTITY, createHash('sha256').update('janitor v1').digest('hex'), 'janitor v1');
  return { store, clock };
}

export function defaultWorkspace(store: Store): Workspace {
  return store.workspaces.require('default');
}

/** A fresh folder under the system temp dir and its cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mlos-views-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function read(dir: string, path: string): string {
  return readFileSync(join(dir, path), 'utf8');
}

/** Starts a task on the need: the task holds its lease until `now + 60s`. */
export function startTask(store: Store, needId: string, clock: ManualClock) {
  return store.tasks.start(store.tasks.create(needId, IDENTITY).id, { leaseUntil: clock.now() + 60_000 });
}

/**
 * A fresh store and output folder for each test of the calling file (closed and removed after
 * it); read them through the returned object, which always holds the current test's.
 */
export function perTestWorld(): { readonly store: Store; readonly clock: ManualClock; readonly dir: string } {
  const current = {} as { store: Store; clock: ManualClock; dir: string; cleanup: () => void };
  beforeEach(() => {
    Object.assign(current, openStore(), tempDir());
  });
  afterEach(() => {
    current.store.close();
    current.cleanup();
  });
  return current;
}
