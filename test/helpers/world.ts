import { createHash } from 'node:crypto';
import type { ManualClock, Need, Store, Task } from '../../src/store/index.js';

export const hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A small need graph that touches every table the repositories write. */
export interface World {
  /** Active: its task `running` holds the lease (token 1). Tagged `kernel`. */
  readonly a: Need;
  /** Open, depends on `a`, has the queued task `queued` with an outbox row. */
  readonly b: Need;
  /** Open, depends on `b`. */
  readonly c: Need;
  /** Open, its only task `ended` was cancelled. */
  readonly d: Need;
  /** Resolved. */
  readonly resolved: Need;
  /** Standing, cadence one hour. */
  readonly standing: Need;
  readonly running: Task;
  readonly queued: Task;
  readonly ended: Task;
  readonly note: string;
  readonly other: string;
  readonly agentId: string;
  readonly runId: string;
}

export const IDENTITY = 'janitor';

export function buildWorld(store: Store, clock: ManualClock): World {
  store.identities.pin(IDENTITY, hex('janitor v1'), 'janitor v1');
  const a = store.needs.create({ title: 'A', tags: ['kernel'], priority: 1 });
  const b = store.needs.create({ title: 'B', dependsOn: [a.id] });
  const c = store.needs.create({ title: 'C', dependsOn: [b.id] });
  const d = store.needs.create({ title: 'D' });
  const resolved = store.needs.resolve(store.needs.create({ title: 'R' }).id);
  const standing = store.needs.create({ title: 'S', mode: 'standing', cadenceMs: 3_600_000 });
  const running = store.tasks.start(store.tasks.create(a.id, IDENTITY).id, {
    leaseUntil: clock.now() + 60_000,
  });
  const queued = store.tasks.create(b.id, IDENTITY, { queue: 'tasks' });
  const ended = store.tasks.transition(store.tasks.create(d.id, IDENTITY).id, 'cancelled');
  const note = store.artifacts.add({ kind: 'note', title: 'note', content: 'hello' }, { needId: a.id })
    .artifact.id;
  const other = store.artifacts.add({ kind: 'note', title: 'other', content: 'world' }).artifact.id;
  return {
    a: store.needs.require(a.id),
    b: store.needs.require(b.id),
    c,
    d: store.needs.require(d.id),
    resolved,
    standing,
    running,
    queued,
    ended,
    note,
    other,
    agentId: 'agent_01JAAAAAAAAAAAAAAAAAAAAAAA',
    runId: 'run_01JAAAAAAAAAAAAAAAAAAAAAAA',
  };
}
