import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConflictError,
  CycleError,
  canonicalJson,
  IllegalTransitionError,
  type ManualClock,
  type Store,
  UserError,
} from '../../../src/store/index.js';
import { makeTempDir, openRaw, openTestStore, type RawDb, snapshot } from '../../helpers/store.js';
import { hex, IDENTITY } from '../../helpers/world.js';

const GENESIS = '0'.repeat(64);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A store on a temp file plus a raw connection to the same file. */
function fileStore(): { store: Store; clock: ManualClock; raw: RawDb; path: string } {
  const tmp = makeTempDir();
  const path = join(tmp.dir, 'events.db');
  const { store, clock } = openTestStore(path);
  const raw = openRaw(path);
  cleanups.push(() => {
    raw.close();
    store.close();
    tmp.cleanup();
  });
  return { store, clock, raw, path };
}

interface Ctx {
  store: Store;
  clock: ManualClock;
  need: string;
  other: string;
}

function seeded(store: Store, clock: ManualClock): Ctx {
  store.identities.pin(IDENTITY, hex('janitor'), 'janitor');
  const need = store.needs.create({ title: 'need', tags: ['kernel'] }).id;
  const other = store.needs.create({ title: 'other' }).id;
  return { store, clock, need, other };
}

const running = (c: Ctx) => {
  const t = c.store.tasks.create(c.need, IDENTITY);
  return c.store.tasks.start(t.id, { leaseUntil: c.clock.now() + 1000 });
};

const MUTATIONS: [string, (c: Ctx) => unknown, string[]][] = [
  ['needs.create', (c) => c.store.needs.create({ title: 'x' }), ['need.created']],
  [
    'needs.create with dependencies',
    (c) => c.store.needs.create({ title: 'x', dependsOn: [c.need, c.other] }),
    ['need.created', 'edge.added', 'edge.added'],
  ],
  [
    'needs.update',
    (c) => c.store.needs.update(c.need, { title: 'renamed', tags: ['a', 'b'] }),
    ['need.updated'],
  ],
  ['needs.update that changes nothing', (c) => c.store.needs.update(c.need, { title: 'need' }), []],
  ['needs.resolve', (c) => c.store.needs.resolve(c.need), ['need.resolved']],
  ['needs.drop', (c) => c.store.needs.drop(c.need), ['need.dropped']],
  [
    'needs.transition back to open',
    (c) => c.store.needs.transition(c.store.needs.drop(c.need).id, 'open'),
    ['need.dropped', 'need.reopened'],
  ],
  [
    'needs.resolve of a need being worked on',
    (c) => {
      running(c);
      return c.store.needs.resolve(c.need);
    },
    ['task.created', 'task.started', 'task.cancelled', 'need.resolved'],
  ],
  ['tasks.create', (c) => c.store.tasks.create(c.need, IDENTITY, { queue: 'q' }), ['task.created']],
  [
    'tasks.transition to succeeded',
    (c) => c.store.tasks.transition(running(c).id, 'succeeded', { outcome: 'resolved' }),
    ['task.created', 'task.started', 'task.succeeded'],
  ],
  ['edges.link', (c) => c.store.edges.link(c.need, 'depends_on', c.other), ['edge.added']],
  [
    'edges.unlink',
    (c) => c.store.edges.unlink(c.store.edges.link(c.need, 'child_of', c.other).from, 'child_of', c.other),
    ['edge.added', 'edge.removed'],
  ],
  [
    'artifacts.add',
    (c) => c.store.artifacts.add({ kind: 'url', uri: 'https://example.com', title: 'site' }),
    ['artifact.added'],
  ],
  [
    'artifacts.add for a need',
    (c) => c.store.artifacts.add({ kind: 'note', title: 'n', content: 'x' }, { needId: c.need }),
    ['artifact.added', 'edge.added'],
  ],
  [
    'artifacts.add of the same content twice',
    (c) => {
      c.store.artifacts.add({ kind: 'note', title: 'n', content: 'x' }, { needId: c.need });
      c.store.artifacts.add({ kind: 'note', title: 'n again', content: 'x' }, { needId: c.need });
      return c.store.artifacts.add({ kind: 'note', title: 'n', content: 'x' }, { needId: c.other });
    },
    ['artifact.added', 'edge.added', 'edge.added'],
  ],
  ['identities.pin', (c) => c.store.identities.pin('architect', hex('a'), 'a'), ['identity.pinned']],
  [
    'identities.pin of a new version',
    (c) => c.store.identities.pin(IDENTITY, hex('janitor v2'), 'janitor v2'),
    ['identity.accepted'],
  ],
  [
    'identities.pin of the same bytes',
    (c) => c.store.identities.pin(IDENTITY, hex('janitor'), 'janitor'),
    [],
  ],
  [
    'identities drift and restore',
    (c) => {
      c.store.identities.markDrift(IDENTITY, hex('edited'));
      c.store.identities.markDrift(IDENTITY, hex('edited'));
      return c.store.identities.clearDrift(IDENTITY);
    },
    ['identity.drifted', 'identity.restored'],
  ],
  [
    'identities pause and resume',
    (c) => {
      c.store.identities.setPaused(IDENTITY, true);
      c.store.identities.setPaused(IDENTITY, true);
      return c.store.identities.setPaused(IDENTITY, false);
    },
    ['identity.paused', 'identity.resumed'],
  ],
  [
    'workspaces.add and replace',
    (c) => {
      c.store.workspaces.add({ name: 'kernel', tagsAny: ['kernel'], outDir: 'views/kernel' });
      return c.store.workspaces.add({ name: 'kernel', outDir: 'views/k' }, { replace: true });
    },
    ['workspace.added', 'workspace.changed'],
  ],
  [
    'store.transaction of several calls',
    (c) =>
      c.store.transaction(() => {
        const n = c.store.needs.create({ title: 'in a transaction' });
        c.store.edges.link(n.id, 'depends_on', c.need);
        return c.store.needs.update(n.id, { priority: 0 });
      }),
    ['need.created', 'edge.added', 'need.updated'],
  ],
];

describe('every mutation through the repository API', () => {
  it.each(MUTATIONS)(
    '%s appends exactly its events, chained, by the acting actor',
    (_name, mutate, kinds) => {
      const { store, clock, raw } = fileStore();
      const ctx = seeded(store.as('tester'), clock);
      const head = store.events.headSeq();
      const before = snapshot(raw);
      clock.advance(5);
      mutate(ctx);
      const events = store.events.since(head);
      expect(events.map((e) => e.kind)).toEqual(kinds);
      for (const e of events) {
        expect(e.actor).toBe('tester');
        expect(e.at).toBe(clock.now());
      }
      if (kinds.length === 0) expect(snapshot(raw)).toBe(before);
      expect(store.events.verify()).toEqual({
        ok: true,
        checked: head + kinds.length,
        headHash: expect.any(String),
      });
    },
  );

  it('writes its event in the same transaction: when the event cannot be written, nothing is', () => {
    const { store, raw } = fileStore();
    const ctx = seeded(store, store.clock as ManualClock);
    raw.exec(
      "CREATE TRIGGER test_block_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'log is down'); END",
    );
    const before = snapshot(raw);
    expect(() => store.needs.create({ title: 'lost' })).toThrow(/log is down/);
    expect(() => store.needs.update(ctx.need, { title: 'lost' })).toThrow(/log is down/);
    expect(() => store.needs.resolve(ctx.need)).toThrow(/log is down/);
    expect(() => store.edges.link(ctx.need, 'depends_on', ctx.other)).toThrow(/log is down/);
    expect(snapshot(raw)).toBe(before);
    raw.exec('DROP TRIGGER test_block_events');
    expect(store.needs.require(ctx.need)).toMatchObject({ title: 'need', status: 'open', version: 1 });
  });
});

describe('a failed write', () => {
  const FAILURES: [string, (c: Ctx) => unknown, abstract new (...args: never[]) => Error][] = [
    [
      'a stale expected version',
      (c) => c.store.needs.update(c.need, { title: 't' }, { expectedVersion: 7 }),
      ConflictError,
    ],
    [
      'an illegal transition',
      (c) => c.store.tasks.transition(running(c).id, 'queued'),
      IllegalTransitionError,
    ],
    [
      'a dependency cycle',
      (c) => {
        c.store.edges.link(c.need, 'depends_on', c.other);
        c.store.edges.link(c.other, 'depends_on', c.need);
      },
      CycleError,
    ],
    ['a malformed tag', (c) => c.store.needs.create({ title: 't', tags: ['Bad Tag'] }), UserError],
    [
      'a task for a resolved need',
      (c) => c.store.tasks.create(c.store.needs.resolve(c.need).id, IDENTITY),
      UserError,
    ],
    [
      'a second live task for a need',
      (c) => {
        c.store.tasks.create(c.need, IDENTITY);
        c.store.tasks.create(c.need, IDENTITY);
      },
      UserError,
    ],
    [
      'a transaction whose last call fails',
      (c) =>
        c.store.transaction(() => {
          c.store.needs.create({ title: 'first' });
          c.store.needs.update(c.need, { priority: 0 });
          c.store.needs.create({ title: '' });
        }),
      UserError,
    ],
    [
      'a need depending on a need that does not exist',
      (c) => c.store.needs.create({ title: 't', dependsOn: [c.other, 'need_01JZZZZZZZZZZZZZZZZZZZZZZZ'] }),
      UserError,
    ],
  ];

  it.each(FAILURES)('(%s) appends no event and changes no row', (_name, fail, errorClass) => {
    const { store, clock, raw } = fileStore();
    const ctx = seeded(store, clock);
    // Some failures need a successful write first; the transaction below fails as a whole.
    let before = '';
    let head = 0;
    const attempt = () =>
      store.transaction(() => {
        before = snapshot(raw);
        head = store.events.headSeq();
        return fail(ctx);
      });
    const beforeAll = snapshot(raw);
    const headAll = store.events.headSeq();
    expect(attempt).toThrow(errorClass);
    expect(before).not.toBe('');
    expect(head).toBe(headAll);
    expect(store.events.headSeq()).toBe(headAll);
    expect(snapshot(raw)).toBe(beforeAll);
    expect(store.events.verify().ok).toBe(true);
  });
});

describe('the hash chain', () => {
  it('starts at the genesis hash and verifies an empty log', () => {
    const { store } = openTestStore();
    expect(store.events.headSeq()).toBe(0);
    expect(store.events.verify()).toEqual({ ok: true, checked: 0, headHash: GENESIS });
  });

  it('hashes each event as sha256 over the canonical JSON of its fields and the previous hash', () => {
    const { store } = openTestStore();
    store.needs.create({ title: 'first' });
    store.as('operator "ü" \\ 😀').needs.create({ title: 'second \u2028', tags: ['x'] });
    store.identities.pin(IDENTITY, hex('janitor v1'), 'janitor v1');
    const [first, second, ...rest] = store.events.since(0);
    expect(first?.prevHash).toBe(GENESIS);
    expect(second?.prevHash).toBe(first?.hash);
    const pinned = rest.find((e) => e.kind === 'identity.pinned');
    expect(pinned?.needId).toBeNull();
    for (const e of [first!, second!, pinned!]) {
      const body = canonicalJson({
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        kind: e.kind,
        entity: e.entity,
        needId: e.needId,
        payload: e.payload,
        prevHash: e.prevHash,
      });
      expect(e.hash).toBe(createHash('sha256').update(body).digest('hex'));
    }
  });

  it('never forks when two connections write the same file in turns', () => {
    const { store, path } = fileStore();
    const { store: second } = openTestStore(path, { seed: 2, actor: 'second' });
    cleanups.push(() => second.close());
    for (let i = 0; i < 20; i++) {
      (i % 3 === 0 ? second : store).needs.create({ title: `need ${i}` });
    }
    expect(store.events.verify()).toMatchObject({ ok: true, checked: 20 });
    expect(new Set(store.events.since(0).map((e) => e.actor))).toEqual(new Set(['cli', 'second']));
  });

  describe('tamper detection', () => {
    /** Five need.created events in a file, then the raw connection with the guard triggers dropped. */
    function tamperable() {
      const f = fileStore();
      for (let i = 1; i <= 5; i++) f.store.needs.create({ title: `need ${i}` });
      expect(f.store.events.verify()).toMatchObject({ ok: true, checked: 5 });
      f.raw.exec('DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;');
      return f;
    }

    it('names the seq whose payload was changed', () => {
      const { store, raw } = tamperable();
      raw.prepare(`UPDATE events SET payload = json_set(payload, '$.title', 'forged') WHERE seq = 3`).run();
      expect(store.events.verify()).toEqual({
        ok: false,
        checked: 2,
        brokenSeq: 3,
        reason: 'hash does not match the event contents',
      });
    });

    it('names the seq whose actor or time was changed', () => {
      const { store, raw } = tamperable();
      raw.prepare(`UPDATE events SET at = at + 1 WHERE seq = 2`).run();
      expect(store.events.verify()).toMatchObject({ ok: false, brokenSeq: 2 });
    });

    it('names the missing seq when a middle event was deleted', () => {
      const { store, raw } = tamperable();
      raw.prepare('DELETE FROM events WHERE seq = 3').run();
      expect(store.events.verify()).toEqual({
        ok: false,
        checked: 2,
        brokenSeq: 3,
        reason: 'event 3 is missing',
      });
    });

    it('names the seq whose prev_hash was changed', () => {
      const { store, raw } = tamperable();
      raw.prepare('UPDATE events SET prev_hash = ? WHERE seq = 4').run(hex('elsewhere'));
      expect(store.events.verify()).toEqual({
        ok: false,
        checked: 3,
        brokenSeq: 4,
        reason: 'prev_hash does not match the previous event',
      });
    });

    it('catches a forger who recomputes the hash of the changed event: the next link breaks', () => {
      const { store, raw } = tamperable();
      const e = store.events.since(2, 1)[0]!;
      const forged = { ...e, payload: { ...(e.payload as object), title: 'forged' } };
      const body = canonicalJson({
        seq: forged.seq,
        at: forged.at,
        actor: forged.actor,
        kind: forged.kind,
        entity: forged.entity,
        needId: forged.needId,
        payload: forged.payload,
        prevHash: forged.prevHash,
      });
      raw
        .prepare('UPDATE events SET payload = ?, hash = ? WHERE seq = 3')
        .run(canonicalJson(forged.payload), createHash('sha256').update(body).digest('hex'));
      expect(store.events.verify()).toMatchObject({
        ok: false,
        brokenSeq: 4,
        reason: expect.stringContaining('prev_hash'),
      });
    });

    it('names the first broken seq when several are broken', () => {
      const { store, raw } = tamperable();
      raw.prepare("UPDATE events SET actor = 'mallory' WHERE seq IN (2, 4)").run();
      expect(store.events.verify()).toMatchObject({ ok: false, brokenSeq: 2 });
    });
  });
});

describe('canonicalJson (RFC 8785)', () => {
  it('sorts keys, drops undefined members and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, { d: 'x', c: undefined }], é: 0, Z: 2 })).toBe(
      '{"Z":2,"a":[true,null,{"d":"x"}],"b":1,"é":0}',
    );
  });

  it('orders keys by UTF-16 code units and encodes numbers as ECMAScript does', () => {
    expect(canonicalJson({ '\u{1F600}': 1, '\uFB33': 2 })).toBe('{"\u{1F600}":1,"\uFB33":2}');
    expect(canonicalJson([1e21, 0.1, -0, 1.5e-7])).toBe('[1e+21,0.1,0,1.5e-7]');
  });

  it('refuses values JSON cannot carry', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(/cannot encode NaN/);
    expect(() => canonicalJson(() => 1)).toThrow(/cannot encode a function/);
  });
});
