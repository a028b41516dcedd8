/**
 * Bad input gets a clear error and leaves the database unchanged; optimistic concurrency and
 * fencing refuse stale writers with errors that say what to do.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConflictError,
  FENCE_FIELD,
  IllegalTransitionError,
  LeaseLostError,
  LIMITS,
  type ManualClock,
  NotFoundError,
  type Store,
  UserError,
} from '../../../src/store/index.js';
import { makeTempDir, openRaw, openTestStore, type RawDb, snapshot, thrown } from '../../helpers/store.js';
import { hex, IDENTITY } from '../../helpers/world.js';

const GHOST = 'need_01JZZZZZZZZZZZZZZZZZZZZZZZ';
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function fileStore(): { store: Store; clock: ManualClock; raw: RawDb; need: string } {
  const tmp = makeTempDir();
  const path = join(tmp.dir, 'needs.db');
  const { store, clock } = openTestStore(path);
  const raw = openRaw(path);
  cleanups.push(() => {
    raw.close();
    store.close();
    tmp.cleanup();
  });
  store.identities.pin(IDENTITY, hex('janitor'), 'janitor');
  const need = store.needs.create({ title: 'existing', tags: ['kernel'] }).id;
  return { store, clock, raw, need };
}

/** Runs `fn`, which must throw; asserts nothing in the database changed and returns the error. */
function refusedUnchanged(raw: RawDb, store: Store, fn: () => unknown): Error {
  const before = snapshot(raw);
  const head = store.events.headSeq();
  const error = thrown(fn);
  expect(store.events.headSeq()).toBe(head);
  expect(snapshot(raw)).toBe(before);
  return error;
}

describe('bad input', () => {
  const TEN_MB = 'x'.repeat(10 * 1024 * 1024);
  const CASES: [
    string,
    (s: Store, need: string) => unknown,
    abstract new (...a: never[]) => Error,
    string | RegExp,
  ][] = [
    [
      'a tag with a space',
      (s) => s.needs.create({ title: 't', tags: ['ml ops'] }),
      UserError,
      "invalid need: tags: tag \"ml ops\" is malformed: a tag is 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. kernel, ml-ops)",
    ],
    [
      'an uppercase tag',
      (s) => s.needs.create({ title: 't', tags: ['Kernel'] }),
      UserError,
      /tag "Kernel" is malformed/,
    ],
    [
      'a tag starting with -',
      (s) => s.needs.create({ title: 't', tags: ['-x'] }),
      UserError,
      /tag "-x" is malformed/,
    ],
    ['an empty tag', (s) => s.needs.create({ title: 't', tags: [''] }), UserError, /tag "" is malformed/],
    [
      'a 65-character tag',
      (s) => s.needs.create({ title: 't', tags: ['t'.repeat(65)] }),
      UserError,
      /is malformed/,
    ],
    [
      'a malformed tag in an update',
      (s, n) => s.needs.update(n, { tags: ['ok', 'not ok'] }),
      UserError,
      /^invalid need update: tags: tag "not ok" is malformed/,
    ],
    [
      'too many tags',
      (s) => s.needs.create({ title: 't', tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }),
      UserError,
      `invalid need: tags: a need has at most ${LIMITS.tagsPerNeed} tags`,
    ],
    [
      'priority -1',
      (s) => s.needs.create({ title: 't', priority: -1 }),
      UserError,
      'invalid need: priority -1 is out of range: use 0 (highest) to 4 (lowest)',
    ],
    [
      'priority 5',
      (s) => s.needs.create({ title: 't', priority: 5 }),
      UserError,
      'invalid need: priority 5 is out of range: use 0 (highest) to 4 (lowest)',
    ],
    [
      'priority 2.5',
      (s) => s.needs.create({ title: 't', priority: 2.5 }),
      UserError,
      'invalid need: priority must be a whole number from 0 (highest) to 4 (lowest)',
    ],
    [
      'priority 9 in an update',
      (s, n) => s.needs.update(n, { priority: 9 }),
      UserError,
      'invalid need update: priority 9 is out of range: use 0 (highest) to 4 (lowest)',
    ],
    [
      'an empty title',
      (s) => s.needs.create({ title: '' }),
      UserError,
      'invalid need: title must not be empty: say in a few words what is needed',
    ],
    ['a blank title', (s) => s.needs.create({ title: ' \t ' }), UserError, /title must not be empty/],
    [
      'an empty title in an update',
      (s, n) => s.needs.update(n, { title: '' }),
      UserError,
      /title must not be empty/,
    ],
    [
      'a title over 300 characters',
      (s) => s.needs.create({ title: 't'.repeat(301) }),
      UserError,
      'invalid need: title is 301 characters; the limit is 300: put the detail in --body',
    ],
    [
      'a title with a NUL',
      (s) => s.needs.create({ title: '\u0000title' }),
      UserError,
      'invalid need: title must be one line without control characters: put the detail in --body',
    ],
    ['a title on two lines', (s) => s.needs.create({ title: 'one\ntwo' }), UserError, /one line/],
    [
      'a 10 MB body',
      (s) => s.needs.create({ title: 't', body: TEN_MB }),
      UserError,
      `invalid need: body is ${10 * 1024 * 1024} bytes; the limit is ${LIMITS.bodyBytes} bytes (1 MiB): put large content in an artifact (mlos artifact add) and reference it from the need`,
    ],
    [
      'a 10 MB body in an update',
      (s, n) => s.needs.update(n, { body: TEN_MB }),
      UserError,
      /body is 10485760 bytes; the limit is 1048576 bytes \(1 MiB\)/,
    ],
    [
      'an acceptance over 64 KiB',
      (s) => s.needs.create({ title: 't', acceptance: 'a'.repeat(LIMITS.acceptanceBytes + 1) }),
      UserError,
      /acceptance is 65537 bytes; the limit is 65536 bytes/,
    ],
    [
      'a malformed scope',
      (s) => s.needs.create({ title: 't', scope: 'Sprint X' }),
      UserError,
      /scope "Sprint X" is malformed: a scope is 1-64 letters, digits, '\.', '_' or '-' \(e\.g\. Sprint_X\)/,
    ],
    ['an unknown field', (s) => s.needs.create({ title: 't', owner: 'me' } as never), UserError, /"owner"/],
    [
      'a standing need without a cadence',
      (s) => s.needs.create({ title: 't', mode: 'standing' }),
      UserError,
      'invalid need: a standing need needs a cadence (e.g. --cadence 1h)',
    ],
    [
      'a cadence on a need that is not standing',
      (s) => s.needs.create({ title: 't', cadenceMs: 1000 }),
      UserError,
      'invalid need: a cadence only applies to a standing need (add --standing)',
    ],
    [
      'a cadence set on a need that is not standing',
      (s, n) => s.needs.update(n, { cadenceMs: 1000 }),
      UserError,
      /is not standing: a cadence only applies to a standing need/,
    ],
    [
      'a standing need losing its cadence',
      (s) =>
        s.needs.update(s.needs.create({ title: 's', mode: 'standing', cadenceMs: 1 }).id, {
          cadenceMs: null,
        }),
      UserError,
      /is standing and needs a cadence: drop it to stop it recurring/,
    ],
    [
      'a dependency that does not exist',
      (s) => s.needs.create({ title: 't', dependsOn: [GHOST] }),
      NotFoundError,
      `need ${GHOST} does not exist: list needs with \`mlos need list\``,
    ],
    [
      'a dependency that is not an id',
      (s) => s.needs.create({ title: 't', dependsOn: ['need-1'] }),
      UserError,
      /"need-1" is not a need id \(they look like need_01J…, 26 characters after the prefix\)/,
    ],
    [
      'an unknown need id',
      (s) => s.needs.require(GHOST),
      NotFoundError,
      `need ${GHOST} does not exist: list needs with \`mlos need list\``,
    ],
    [
      'a need id that is not an id',
      (s) => s.needs.require('42'),
      UserError,
      'invalid need id: "42" is not a need id (they look like need_01J…, 26 characters after the prefix)',
    ],
    [
      'an update of an unknown need',
      (s) => s.needs.update(GHOST, { title: 'x' }),
      NotFoundError,
      /does not exist/,
    ],
    ['resolving an unknown need', (s) => s.needs.resolve(GHOST), NotFoundError, /does not exist/],
    ['dropping an unknown need', (s) => s.needs.drop(GHOST), NotFoundError, /does not exist/],
    [
      'a task for an unknown need',
      (s) => s.tasks.create(GHOST, IDENTITY),
      NotFoundError,
      `need ${GHOST} does not exist`,
    ],
    [
      'a task for an identity that is not pinned',
      (s, n) => s.tasks.create(n, 'nobody'),
      NotFoundError,
      'identity nobody does not exist: list identities with `mlos identity list`',
    ],
    [
      'an unknown task',
      (s) => s.tasks.transition('task_01JZZZZZZZZZZZZZZZZZZZZZZZ', 'cancelled'),
      NotFoundError,
      'task task_01JZZZZZZZZZZZZZZZZZZZZZZZ does not exist: list tasks with `mlos status`',
    ],
    [
      'an artifact for an unknown need',
      (s) => s.artifacts.add({ kind: 'note', title: 'n', content: 'c' }, { needId: GHOST }),
      NotFoundError,
      `need ${GHOST} does not exist`,
    ],
    [
      'an unknown artifact kind',
      (s) => s.artifacts.add({ kind: 'video', title: 'n', content: 'c' } as never),
      UserError,
      'invalid artifact: kind: unknown artifact kind "video": use one of file, url, note, transcript, result',
    ],
    [
      'a file artifact without a path',
      (s) => s.artifacts.add({ kind: 'file', title: 'n', content: 'c' }),
      UserError,
      'a file artifact needs a path',
    ],
    [
      'an unknown relation',
      (s, n) => s.edges.link(n, 'blocks', n),
      UserError,
      'invalid relation: unknown relation "blocks": use one of depends_on, references, produced_by, source_transcript, derived_from, supersedes, child_of',
    ],
    [
      'an identity pinned to something that is not a sha256',
      (s) => s.identities.pin('architect', 'not-a-hash', 'x'),
      UserError,
      'invalid hash of identity architect: "not-a-hash" is not a sha256 digest (64 lowercase hex characters)',
    ],
    [
      'an unknown identity',
      (s) => s.identities.setPaused('nobody', true),
      NotFoundError,
      'identity nobody does not exist: list identities with `mlos identity list`',
    ],
    [
      'an unknown workspace',
      (s) => s.workspaces.require('nowhere'),
      NotFoundError,
      'workspace nowhere does not exist: list workspaces with `mlos workspace list`',
    ],
    [
      'a workspace that already exists',
      (s) => {
        s.workspaces.add({ name: 'kernel', outDir: 'v' });
        s.workspaces.add({ name: 'kernel', outDir: 'w' });
      },
      UserError,
      'workspace kernel already exists: pick another name, or pass --replace to change it',
    ],
    [
      'a need filter with an unknown status',
      (s) => s.needs.list({ status: ['done' as never] }),
      UserError,
      /^invalid need filter: status/,
    ],
  ];

  it.each(CASES)('%s is refused clearly and changes nothing', (_name, act, errorClass, message) => {
    const { store, raw, need } = fileStore();
    // Writes inside one transaction, so a case that needs a valid first write is also undone.
    const error = refusedUnchanged(raw, store, () => store.transaction(() => act(store, need)));
    expect(error).toBeInstanceOf(errorClass);
    if (typeof message === 'string') expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
  });
});

describe('text is stored verbatim', () => {
  const NASTY = [
    `Robert'); DROP TABLE needs;--`,
    `" OR 1=1 -- ; /* */ \\' \\" %_ * ? [a-z] GLOB LIKE`,
    `'; DELETE FROM events WHERE 1; SELECT '`,
    `needs; PRAGMA foreign_keys = OFF; --`,
    `ünïcödé ☃ 🚀 \u202E right-to-left ‮`,
  ];

  it.each(NASTY)('a title of SQL metacharacters reads back equal: %s', (title) => {
    const { store, raw } = fileStore();
    const body = `${title}\n\n${title}`;
    const need = store.needs.create({ title, body, acceptance: title, tags: ['sql'] });
    expect(store.needs.require(need.id)).toMatchObject({ title, body, acceptance: title });
    expect(store.needs.list({ text: title }).map((n) => n.id)).toEqual([need.id]);
    const [event] = store.events.forNeed(need.id);
    expect(event?.payload).toMatchObject({ title, body });
    expect(raw.prepare('SELECT count(*) AS n FROM needs').get()).toEqual({ n: 2 });
    expect(store.events.verify().ok).toBe(true);
  });

  it('searches text literally: % and _ match only themselves', () => {
    const { store } = fileStore();
    const pct = store.needs.create({ title: 'cut cost by 50%' });
    const under = store.needs.create({ title: 'rename snake_case' });
    expect(store.needs.list({ text: '%' }).map((n) => n.id)).toEqual([pct.id]);
    expect(store.needs.list({ text: '_' }).map((n) => n.id)).toEqual([under.id]);
  });
});

describe('optimistic concurrency', () => {
  it('applies an update that carries the current version and bumps it', () => {
    const { store, need } = fileStore();
    const updated = store.needs.update(need, { title: 'renamed' }, { expectedVersion: 1 });
    expect(updated).toMatchObject({ title: 'renamed', version: 2 });
    expect(store.events.forNeed(need)[0]?.payload).toEqual({ changed: { title: 'renamed' }, version: 2 });
  });

  it('refuses a stale update with a ConflictError that carries the current version', () => {
    const { store, raw, need } = fileStore();
    store.needs.update(need, { title: 'first writer' }, { expectedVersion: 1 });
    const error = refusedUnchanged(raw, store, () =>
      store.needs.update(need, { title: 'second writer' }, { expectedVersion: 1 }),
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ code: 'conflict', currentVersion: 2 });
    expect(error.message).toBe(
      `need ${need} is at version 2, not 1: someone changed it first; re-read it and retry with version 2`,
    );
    expect(store.needs.require(need).title).toBe('first writer');
  });

  it('refuses a stale status change the same way', () => {
    const { store, raw, need } = fileStore();
    store.needs.update(need, { priority: 0 });
    const error = refusedUnchanged(raw, store, () => store.needs.resolve(need, { expectedVersion: 1 }));
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).currentVersion).toBe(2);
  });

  it('keeps the version in the event equal to the stored one when a live task is cancelled', () => {
    const { store, clock, need } = fileStore();
    store.tasks.start(store.tasks.create(need, IDENTITY).id, { leaseUntil: clock.now() + 1000 });
    const resolved = store.needs.resolve(need);
    const [event] = store.events.forNeed(need, 1);
    expect(event?.kind).toBe('need.resolved');
    expect(event?.payload).toMatchObject({ from: 'active', to: 'resolved', version: resolved.version });
    expect(store.needs.require(need).version).toBe(resolved.version);
  });
});

describe('fencing', () => {
  function working() {
    const f = fileStore();
    const task = f.store.tasks.start(f.store.tasks.create(f.need, IDENTITY).id, {
      leaseUntil: f.clock.now() + 60_000,
    });
    return { ...f, task, fence: { taskId: task.id, token: task.fencingToken } };
  }

  it('lets the holder write under its fence', () => {
    const { store, need, fence } = working();
    expect(fence.token).toBe(1);
    expect(store.needs.update(need, { title: 'by the holder' }, { fence }).title).toBe('by the holder');
    expect(
      store.edges.link(need, 'references', store.needs.create({ title: 'x' }).id, { fence }),
    ).toBeDefined();
    expect(store.leases.require(need)).toMatchObject({ taskId: fence.taskId, fencingToken: 1 });
  });

  it('records in each event of a fenced write the token it was checked under, and only there', () => {
    const { store, need, fence } = working();
    const other = store.needs.create({ title: 'other' }).id;
    const from = store.events.headSeq();
    store.transaction(() => {
      store.needs.update(need, { title: 'fenced' }, { fence });
      store.needs.update(other, { title: 'not the fenced need' });
    });
    const events = store.events.since(from, 10);
    const fenceOf = (e: { payload: unknown }) => (e.payload as Record<string, unknown>)[FENCE_FIELD];
    expect(events.map((e) => [e.needId, fenceOf(e)])).toEqual([
      [need, 1],
      [other, undefined],
    ]);
    store.needs.update(need, { title: 'unfenced, by an operator' });
    expect(fenceOf(store.events.since(from + 2, 10)[0]!)).toBeUndefined();
  });

  it('stops recording the old token once the lease goes to a new holder in the same transaction', () => {
    const { store, clock, need, task, fence } = working();
    const from = store.events.headSeq();
    store.transaction(() => {
      store.needs.update(need, { title: 'last words' }, { fence });
      store.tasks.transition(task.id, 'lost', { error: 'handed over' });
      store.tasks.start(store.tasks.create(need, IDENTITY).id, { leaseUntil: clock.now() + 60_000 });
    });
    const events = store.events.since(from, 10);
    const started = events.find((e) => e.kind === 'task.started')!;
    expect(events[0]!.payload).toMatchObject({ [FENCE_FIELD]: fence.token });
    expect(started.payload).not.toHaveProperty(FENCE_FIELD);
  });

  it('refuses a stale holder after a takeover, naming the new holder and both tokens', () => {
    const { store, clock, raw, need, task, fence } = working();
    store.tasks.transition(task.id, 'lost', { error: 'no progress' });
    const next = store.tasks.start(store.tasks.create(need, IDENTITY).id, {
      leaseUntil: clock.now() + 60_000,
    });
    expect(next.fencingToken).toBe(3);
    const message = `lease lost: need ${need} is now held by task ${next.id} (token 3 > 1); stop work on it`;
    for (const write of [
      () => store.needs.update(need, { title: 'stale' }, { fence }),
      () => store.needs.resolve(need, { fence }),
      () => store.edges.link(need, 'depends_on', store.needs.create({ title: 'dep' }).id, { fence }),
      () => store.artifacts.add({ kind: 'note', title: 'n', content: 'stale' }, { needId: need, fence }),
      () => store.leases.renew(need, fence, clock.now() + 120_000),
    ]) {
      const error = refusedUnchanged(raw, store, () => store.transaction(write));
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(error).toMatchObject({ code: 'lease_lost' });
      expect(error.message).toBe(message);
    }
  });

  it('does not claim a token comparison that is false for a forged fence', () => {
    const { store, need, task } = working();
    const error = thrown(() =>
      store.needs.update(need, { title: 'x' }, { fence: { taskId: task.id, token: 9 } }),
    );
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error.message).toBe(
      `lease lost: need ${need} is now held by task ${task.id} (token 1, not 9); stop work on it`,
    );
  });

  it.each([
    ['resolve', (s: Store, need: string) => s.needs.resolve(need)],
    ['drop', (s: Store, need: string) => s.needs.drop(need)],
    ['reopen', (s: Store, need: string) => s.needs.transition(need, 'open')],
  ])('an operator %s bumps the token, cancels the task and stops the old holder', (_name, operate) => {
    const { store, need, task, fence } = working();
    operate(store, need);
    const lease = store.leases.require(need);
    expect(lease).toMatchObject({ taskId: null, expiresAt: null });
    expect(lease.fencingToken).toBeGreaterThan(fence.token);
    expect(store.tasks.require(task.id)).toMatchObject({ status: 'cancelled' });
    const error = thrown(() => store.needs.update(need, { title: 'too late' }, { fence }));
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error.message).toBe(
      `lease lost: need ${need} is now held by no task (token ${lease.fencingToken} > 1); stop work on it`,
    );
  });

  it('an operator cancel of the running task bumps the token and reopens the need', () => {
    const { store, need, task, fence } = working();
    store.tasks.transition(task.id, 'cancelled', { error: 'operator' });
    expect(store.leases.require(need)).toMatchObject({ taskId: null, fencingToken: 2 });
    expect(store.needs.require(need).status).toBe('open');
    expect(thrown(() => store.leases.renew(need, fence, 0))).toBeInstanceOf(LeaseLostError);
  });

  it('a holder ending its own task under its fence releases the lease', () => {
    const { store, need, task, fence } = working();
    store.needs.resolve(need, { fence });
    store.tasks.transition(task.id, 'succeeded', { outcome: 'resolved', fence });
    expect(store.leases.require(need)).toMatchObject({ taskId: null, fencingToken: 2 });
    expect(store.needs.require(need).status).toBe('resolved');
  });

  it('renews a lease under a current fence without changing the token', () => {
    const { store, clock, need, fence } = working();
    store.leases.renew(need, fence, clock.now() + 120_000);
    expect(store.leases.require(need)).toMatchObject({ fencingToken: 1, expiresAt: clock.now() + 120_000 });
  });

  it('never lets the token shrink, whatever sequence of claims and releases', () => {
    const { store, clock, need } = working();
    const seen: number[] = [store.leases.require(need).fencingToken];
    for (let i = 0; i < 5; i++) {
      const live = store.tasks.liveFor(need)!;
      store.tasks.transition(live.id, i % 2 ? 'failed' : 'lost');
      seen.push(store.leases.require(need).fencingToken);
      store.tasks.start(store.tasks.create(need, IDENTITY).id, { leaseUntil: clock.now() + 1000 });
      seen.push(store.leases.require(need).fencingToken);
    }
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('refuses an illegal task transition before it looks at the fence', () => {
    const { store, task, fence } = working();
    store.tasks.transition(task.id, 'succeeded', { fence });
    expect(thrown(() => store.tasks.transition(task.id, 'failed', { fence }))).toBeInstanceOf(
      IllegalTransitionError,
    );
  });
});

describe("an operator's retry", () => {
  /** Fails `n` attempts of `need` as janitor. */
  function fail(store: Store, need: string, n: number): void {
    for (let i = 0; i < n; i++) {
      const { task } = store.claims.claim(need, { identity: IDENTITY, leaseMs: 60_000 });
      store.tasks.transition(task.id, 'failed', { error: 'the model call failed' });
    }
  }

  it('sets the failed attempts aside, clears the marks and records how many, keeping the attempts', () => {
    const { store, clock, need } = fileStore();
    fail(store, need, 3);
    store.needs.setFlags(need, { unmetSince: clock.now(), orphaned: true });
    expect(store.scheduling.failures(need).failures).toBe(3);
    expect(store.scheduling.failedNeeds()).toEqual([need]);

    const retried = store.needs.retry(need, { reason: 'endpoint back' });
    expect(retried).toMatchObject({ status: 'open', orphaned: false, unmetSince: null });
    expect(store.scheduling.failures(need).failures).toBe(0);
    expect(store.scheduling.failedNeeds()).toEqual([]);
    expect(store.tasks.forNeed(need)).toHaveLength(3);
    expect(store.events.forNeed(need)[0]).toMatchObject({
      kind: 'need.retried',
      payload: { setAside: 3, failuresFrom: 3, reason: 'endpoint back' },
    });
    // A later failure counts from the retry on.
    fail(store, need, 1);
    expect(store.scheduling.failures(need).failures).toBe(1);
  });

  it('refuses a need with nothing to retry, and one that is not open, changing nothing', () => {
    const { store, raw, need } = fileStore();
    expect(refusedUnchanged(raw, store, () => store.needs.retry(need)).message).toBe(
      `need ${need} has no failed attempt since its last success or retry: nothing to retry (it graduates as usual)`,
    );
    fail(store, need, 1);
    // Its next attempt is queued: that attempt's failure must count.
    const queued = store.tasks.create(need, IDENTITY);
    expect(store.scheduling.failedNeeds()).toEqual([]);
    expect(refusedUnchanged(raw, store, () => store.needs.retry(need)).message).toBe(
      `need ${need} is being tried again (task ${queued.id} is queued): retry it once that attempt has ended`,
    );
    store.claims.claim(need, { identity: IDENTITY, leaseMs: 60_000 });
    expect(refusedUnchanged(raw, store, () => store.needs.retry(need)).message).toBe(
      `need ${need} is active: only an open need is retried (its task is still running: cancel it first with mlos task cancel)`,
    );
    store.needs.transition(need, 'dropped');
    expect(refusedUnchanged(raw, store, () => store.needs.retry(need)).message).toBe(
      `need ${need} is dropped: only an open need is retried (mlos need reopen opens it again)`,
    );
    expect(refusedUnchanged(raw, store, () => store.needs.retry(GHOST))).toBeInstanceOf(NotFoundError);
  });
});
