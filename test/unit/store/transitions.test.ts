/**
 * The transition table, exhaustively: for every (from, to) pair of need and task statuses the
 * code and the database trigger agree, and a refusal names the entity, from and to.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { translateSqliteError } from '../../../src/store/context.js';
import {
  assertTransition,
  canTransition,
  IllegalTransitionError,
  NEED_STATUSES,
  NEED_TRANSITIONS,
  type NeedStatus,
  type Store,
  TASK_STATUSES,
  TASK_TRANSITIONS,
  type TaskStatus,
  transitionRows,
} from '../../../src/store/index.js';
import { makeTempDir, openRaw, openTestStore, type RawDb, snapshot, thrown } from '../../helpers/store.js';
import { hex, IDENTITY } from '../../helpers/world.js';

type Kind = 'need' | 'task';

const pairs = <S extends string>(statuses: readonly S[]): [S, S][] =>
  statuses.flatMap((from) => statuses.map((to) => [from, to] as [S, S]));

const NEED_PAIRS = pairs(NEED_STATUSES).filter(([from, to]) => from !== to);
const TASK_PAIRS = pairs(TASK_STATUSES).filter(([from, to]) => from !== to);

/** A fresh need in `status`, reached through the repository API. */
function needIn(store: Store, status: NeedStatus): string {
  const need = store.needs.create({ title: `a need that is ${status}` });
  if (status === 'active') {
    const task = store.tasks.create(need.id, IDENTITY);
    store.tasks.start(task.id, { leaseUntil: store.clock.now() + 60_000 });
  } else if (status !== 'open') {
    store.needs.transition(need.id, status);
  }
  expect(store.needs.require(need.id).status).toBe(status);
  return need.id;
}

/** A fresh task (of a fresh need) in `status`, reached through the repository API. */
function taskIn(store: Store, status: TaskStatus): string {
  const need = store.needs.create({ title: `a need whose task is ${status}` });
  const task = store.tasks.create(need.id, IDENTITY);
  if (status === 'superseded') store.tasks.transition(task.id, 'superseded');
  else if (status !== 'queued') {
    store.tasks.start(task.id, { leaseUntil: store.clock.now() + 60_000 });
    if (status !== 'running') store.tasks.transition(task.id, status);
  }
  expect(store.tasks.require(task.id).status).toBe(status);
  return task.id;
}

function legal(kind: Kind, from: string, to: string): boolean {
  const table: Readonly<Record<string, readonly string[]>> =
    kind === 'need' ? NEED_TRANSITIONS : TASK_TRANSITIONS;
  return table[from]?.includes(to) ?? false;
}

/** Tries the status change with raw SQL; returns the error, or undefined if the database took it. */
function rawUpdate(raw: RawDb, kind: Kind, id: string, to: string): Error | undefined {
  raw.exec('SAVEPOINT attempt');
  try {
    raw.prepare(`UPDATE ${kind === 'need' ? 'needs' : 'tasks'} SET status = ? WHERE id = ?`).run(to, id);
    return undefined;
  } catch (error) {
    return error as Error;
  } finally {
    raw.exec('ROLLBACK TO attempt; RELEASE attempt;');
  }
}

function setup() {
  const tmp = makeTempDir();
  const path = join(tmp.dir, 'transitions.db');
  const { store } = openTestStore(path);
  store.identities.pin(IDENTITY, hex('janitor'), 'janitor');
  const raw = openRaw(path);
  return {
    store,
    raw,
    cleanup: () => {
      raw.close();
      store.close();
      tmp.cleanup();
    },
  };
}

describe('the transition table', () => {
  it('is the same in code and in the database', () => {
    const { raw, cleanup } = setup();
    try {
      const stored = raw
        .prepare<[], { kind: string; from: string; to: string }>(
          'SELECT kind, from_status AS "from", to_status AS "to" FROM transitions ORDER BY 1, 2, 3',
        )
        .all();
      const key = (r: { kind: string; from: string; to: string }) => `${r.kind}:${r.from}→${r.to}`;
      expect(stored.map(key).sort()).toEqual(transitionRows().map(key).sort());
    } finally {
      cleanup();
    }
  });

  it('only names known statuses and makes the terminal task statuses final', () => {
    for (const [from, tos] of Object.entries(NEED_TRANSITIONS)) {
      expect(NEED_STATUSES).toContain(from);
      for (const to of tos) expect(NEED_STATUSES).toContain(to);
    }
    for (const [from, tos] of Object.entries(TASK_TRANSITIONS)) {
      expect(TASK_STATUSES).toContain(from);
      for (const to of tos) expect(TASK_STATUSES).toContain(to);
    }
    for (const s of ['succeeded', 'failed', 'cancelled', 'superseded', 'lost'] as const) {
      expect(TASK_TRANSITIONS[s]).toEqual([]);
    }
  });

  it('refuses a status the table does not know, in code', () => {
    expect(canTransition('need', 'open', 'bogus')).toBe(false);
    expect(canTransition('need', 'bogus', 'open')).toBe(false);
    const error = thrown(() => assertTransition('task', 'task_x', 'limbo', 'running'));
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect(error.message).toBe(
      'illegal transition of task task_x: limbo → running is not allowed (limbo is final)',
    );
  });
});

function pairSuite(kind: Kind, all: readonly (readonly [string, string])[]): void {
  const { store, raw, cleanup } = setup();
  afterAll(cleanup);
  const make = (status: string) =>
    kind === 'need' ? needIn(store, status as NeedStatus) : taskIn(store, status as TaskStatus);

  it.each(all.map(([from, to]) => [from, to, legal(kind, from, to) ? 'legal' : 'illegal'] as const))(
    '%s → %s is %s in code and in the database alike',
    (from, to, verdict) => {
      const id = make(from);
      const codeError = (() => {
        try {
          assertTransition(kind, id, from, to);
          return undefined;
        } catch (error) {
          return error as Error;
        }
      })();
      const dbError = rawUpdate(raw, kind, id, to);
      if (verdict === 'legal') {
        expect(codeError).toBeUndefined();
        expect(dbError).toBeUndefined();
        return;
      }
      expect(codeError).toBeInstanceOf(IllegalTransitionError);
      expect(codeError).toMatchObject({ code: 'illegal_transition', entity: `${kind} ${id}`, from, to });
      expect(codeError?.message).toContain(
        `illegal transition of ${kind} ${id}: ${from} → ${to} is not allowed`,
      );
      expect(dbError?.message).toBe(`illegal transition of ${kind} ${id}: ${from} → ${to}`);
      const translated = translateSqliteError(dbError);
      expect(translated).toBeInstanceOf(IllegalTransitionError);
      expect(translated).toMatchObject({ entity: `${kind} ${id}`, from, to });
    },
  );

  it.each(all)('%s → %s through the repository does what the table says', (from, to) => {
    const id = make(from);
    const before = snapshot(raw);
    const head = store.events.headSeq();
    const apply = () =>
      kind === 'need'
        ? store.needs.transition(id, to as NeedStatus)
        : store.tasks.transition(id, to as TaskStatus);
    if (legal(kind, from, to)) {
      expect(apply().status).toBe(to);
      const [event] = store.events.since(head).filter((e) => e.entity === id);
      expect(event?.payload).toMatchObject({ from, to });
      return;
    }
    const error = thrown(apply);
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect(error).toMatchObject({ entity: `${kind} ${id}`, from, to });
    expect(snapshot(raw)).toBe(before);
  });
}

describe('every need (from, to) pair', () => pairSuite('need', NEED_PAIRS));
describe('every task (from, to) pair', () => pairSuite('task', TASK_PAIRS));

describe('a status change to the same status', () => {
  const { store, raw, cleanup } = setup();
  afterAll(cleanup);

  it.each(NEED_STATUSES)('is a no-op for a need that is %s: no event, no new version', (status) => {
    const id = needIn(store, status);
    const before = snapshot(raw);
    expect(store.needs.transition(id, status).status).toBe(status);
    expect(snapshot(raw)).toBe(before);
    // The database trigger only judges real changes.
    expect(rawUpdate(raw, 'need', id, status)).toBeUndefined();
  });

  it.each(TASK_STATUSES)('is refused for a task that is %s: a task never re-enters its state', (status) => {
    const id = taskIn(store, status);
    const before = snapshot(raw);
    const error = thrown(() => store.tasks.transition(id, status));
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect(error).toMatchObject({ entity: `task ${id}`, from: status, to: status });
    expect(snapshot(raw)).toBe(before);
  });
});

describe('a standing need', () => {
  const { store, raw, cleanup } = setup();
  afterAll(cleanup);

  it('is never resolved, in code or in the database, and can still be dropped', () => {
    const need = store.needs.create({
      title: 'keep the index small',
      mode: 'standing',
      cadenceMs: 3_600_000,
    });
    const before = snapshot(raw);
    const error = thrown(() => store.needs.resolve(need.id));
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect(error).toMatchObject({ entity: `need ${need.id}`, from: 'open', to: 'resolved' });
    expect(error.message).toContain('a standing need is never resolved');
    expect(snapshot(raw)).toBe(before);
    expect(rawUpdate(raw, 'need', need.id, 'resolved')?.message).toBe(
      `illegal transition of need ${need.id}: a standing need is never resolved`,
    );
    expect(store.needs.drop(need.id).status).toBe('dropped');
  });
});
