/**
 * The database refuses malformed data by itself: every CHECK, foreign key, UNIQUE index and
 * trigger of migration 1 is exercised here with a raw write that goes around the repositories,
 * and each refused write must leave every table exactly as it was.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { translateSqliteError } from '../../../src/store/context.js';
import { IllegalTransitionError, UserError } from '../../../src/store/index.js';
import { makeTempDir, openRaw, openTestStore, type RawDb, snapshot, thrown } from '../../helpers/store.js';
import { buildWorld, hex, IDENTITY, type World } from '../../helpers/world.js';

interface RefusedWrite {
  readonly name: string;
  readonly sql: string;
  readonly params?: readonly unknown[];
  readonly error: RegExp;
}

const H = hex('x');
const ZERO = '0'.repeat(64);
const CHECK = /CHECK constraint failed/;
const FK = /FOREIGN KEY constraint failed/;
const UNIQUE = /UNIQUE constraint failed/;
const NOT_NULL = /NOT NULL constraint failed/;

/** Every database error message a refused write produced, for the coverage checks at the end. */
const fired = new Set<string>();

function needInsert(columns: Record<string, unknown>): { sql: string; params: unknown[] } {
  const row: Record<string, unknown> = {
    id: 'need_01JZZZZZZZZZZZZZZZZZZZZZZZ',
    title: 'ok',
    created_at: 0,
    updated_at: 0,
    ...columns,
  };
  const keys = Object.keys(row);
  return {
    sql: `INSERT INTO needs (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`,
    params: Object.values(row),
  };
}

function taskInsert(w: World, columns: Record<string, unknown>): { sql: string; params: unknown[] } {
  const row: Record<string, unknown> = {
    id: 'task_01JZZZZZZZZZZZZZZZZZZZZZZZ',
    need_id: w.c.id,
    identity: IDENTITY,
    status: 'queued',
    attempt: 1,
    created_at: 0,
    ...columns,
  };
  const keys = Object.keys(row);
  return {
    sql: `INSERT INTO tasks (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`,
    params: Object.values(row),
  };
}

function cases(w: World, head: { seq: number; hash: string }): RefusedWrite[] {
  const need = (name: string, columns: Record<string, unknown>, error: RegExp): RefusedWrite => ({
    name,
    ...needInsert(columns),
    error,
  });
  const task = (name: string, columns: Record<string, unknown>, error: RegExp): RefusedWrite => ({
    name,
    ...taskInsert(w, columns),
    error,
  });
  const event = (name: string, columns: Record<string, unknown>, error: RegExp): RefusedWrite => {
    const row: Record<string, unknown> = {
      seq: head.seq + 1,
      at: 0,
      actor: 'test',
      kind: 'need.updated',
      entity: w.a.id,
      need_id: w.a.id,
      payload: '{}',
      prev_hash: head.hash,
      hash: hex('forged'),
      ...columns,
    };
    const keys = Object.keys(row);
    return {
      name,
      sql: `INSERT INTO events (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`,
      params: Object.values(row),
      error,
    };
  };
  const edge = (name: string, from: string, rel: string, to: string, error: RegExp): RefusedWrite => ({
    name,
    sql: 'INSERT INTO edges (from_id, rel, to_id, created_at) VALUES (?, ?, ?, 0)',
    params: [from, rel, to],
    error,
  });
  const budget = (name: string, columns: Record<string, unknown>, error: RegExp): RefusedWrite => {
    const row: Record<string, unknown> = {
      task_id: w.running.id,
      identity: IDENTITY,
      day: '2026-01-01',
      run_id: w.runId,
      state: 'reserved',
      reserved_tokens: 100,
      created_at: 0,
      ...columns,
    };
    const keys = Object.keys(row);
    return {
      name,
      sql: `INSERT INTO budget_entries (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`,
      params: Object.values(row),
      error,
    };
  };
  const agent = (name: string, columns: Record<string, unknown>, error: RegExp): RefusedWrite => {
    const row: Record<string, unknown> = {
      id: 'agent_01JZZZZZZZZZZZZZZZZZZZZZZZ',
      identity: IDENTITY,
      identity_hash: H,
      worker: 'w1',
      capacity: 1,
      started_at: 0,
      heartbeat_at: 0,
      ...columns,
    };
    const keys = Object.keys(row);
    return {
      name,
      sql: `INSERT INTO agents (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`,
      params: Object.values(row),
      error,
    };
  };
  const artifact = (name: string, columns: Record<string, unknown>, error: RegExp): RefusedWrite => {
    const row: Record<string, unknown> = {
      id: 'art_01JZZZZZZZZZZZZZZZZZZZZZZZ',
      kind: 'note',
      title: 'ok',
      content: 'c',
      content_hash: H,
      created_at: 0,
      ...columns,
    };
    const keys = Object.keys(row);
    return {
      name,
      sql: `INSERT INTO artifacts (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`,
      params: Object.values(row),
      error,
    };
  };

  return [
    // transitions, nodes, identity pins
    {
      name: 'transitions.kind outside need|task',
      sql: "INSERT INTO transitions VALUES ('agent', 'a', 'b')",
      error: CHECK,
    },
    {
      name: 'nodes.kind outside need|task|artifact',
      sql: "INSERT INTO nodes VALUES ('x_1', 'person')",
      error: CHECK,
    },
    {
      name: 'identity_pins.name malformed',
      sql: "INSERT INTO identity_pins (name, hash, content, pinned_at) VALUES ('Bad Name', ?, '', 0)",
      params: [H],
      error: CHECK,
    },
    {
      name: 'identity_pins.hash not 64 hex',
      sql: "INSERT INTO identity_pins (name, hash, content, pinned_at) VALUES ('ok-name', 'ABC', '', 0)",
      error: CHECK,
    },
    {
      name: 'identity_pins.drift_hash not 64 hex',
      sql: "UPDATE identity_pins SET drift_hash = 'nothex' WHERE name = ?",
      params: [IDENTITY],
      error: CHECK,
    },
    {
      name: 'identity_pins.paused outside 0|1',
      sql: 'UPDATE identity_pins SET paused = 2 WHERE name = ?',
      params: [IDENTITY],
      error: CHECK,
    },
    {
      name: 'identity_pins.holds negative',
      sql: 'UPDATE identity_pins SET holds = -1 WHERE name = ?',
      params: [IDENTITY],
      error: CHECK,
    },
    {
      name: 'identity_pins.name duplicate',
      sql: "INSERT INTO identity_pins (name, hash, content, pinned_at) VALUES (?, ?, '', 0)",
      params: [IDENTITY, H],
      error: UNIQUE,
    },

    // needs: formats, enums, ranges, sizes
    need('needs.id without need_ prefix', { id: 'task_01JZZZZZZZZZZZZZZZZZZZZZZZ' }, CHECK),
    need('needs.title blank', { title: '   ' }, CHECK),
    need('needs.title NULL', { title: null }, NOT_NULL),
    need('needs.title over 300 characters', { title: 't'.repeat(301) }, CHECK),
    need('needs.body over 1 MiB', { body: 'b'.repeat(1024 * 1024 + 1) }, CHECK),
    need('needs.acceptance over 64 KiB', { acceptance: 'a'.repeat(64 * 1024 + 1) }, CHECK),
    need('needs.priority -1', { priority: -1 }, CHECK),
    need('needs.priority 5', { priority: 5 }, CHECK),
    need('needs.priority 2.5', { priority: 2.5 }, CHECK),
    need('needs.priority as text', { priority: 'high' }, CHECK),
    need('needs.scope with a space', { scope: 'Sprint X' }, CHECK),
    need('needs.scope empty', { scope: '' }, CHECK),
    need('needs.scope over 64 characters', { scope: 's'.repeat(65) }, CHECK),
    need('needs.mode outside once|standing', { mode: 'sometimes' }, CHECK),
    need('needs standing without cadence', { mode: 'standing' }, CHECK),
    need('needs once with a cadence', { mode: 'once', cadence_ms: 1000 }, CHECK),
    need('needs.cadence_ms zero', { mode: 'standing', cadence_ms: 0 }, CHECK),
    need('needs.orphaned outside 0|1', { orphaned: 2 }, CHECK),
    need('needs.failures_from negative', { failures_from: -1 }, CHECK),
    need('needs.version 0', { version: 0 }, CHECK),
    need('needs created active', { status: 'active' }, /a need is created open, not active/),
    need('needs created resolved', { status: 'resolved' }, /a need is created open, not resolved/),
    need('needs created with an unknown status', { status: 'bogus' }, /a need is created open, not bogus/),
    need('needs.id duplicate', { id: w.a.id }, UNIQUE),
    {
      name: 'needs.priority updated out of range',
      sql: 'UPDATE needs SET priority = 7 WHERE id = ?',
      params: [w.d.id],
      error: CHECK,
    },
    {
      name: 'needs standing loses its cadence',
      sql: 'UPDATE needs SET cadence_ms = NULL WHERE id = ?',
      params: [w.standing.id],
      error: CHECK,
    },
    {
      name: 'needs deleted',
      sql: 'DELETE FROM needs WHERE id = ?',
      params: [w.d.id],
      error: new RegExp(`needs are never deleted: drop need ${w.d.id} instead`),
    },
    {
      name: 'needs status to an unknown value',
      sql: "UPDATE needs SET status = 'bogus' WHERE id = ?",
      params: [w.d.id],
      error: new RegExp(`illegal transition of need ${w.d.id}: open → bogus`),
    },
    {
      name: 'needs resolved → active',
      sql: "UPDATE needs SET status = 'active' WHERE id = ?",
      params: [w.resolved.id],
      error: new RegExp(`illegal transition of need ${w.resolved.id}: resolved → active`),
    },
    {
      name: 'needs standing resolved',
      sql: "UPDATE needs SET status = 'resolved' WHERE id = ?",
      params: [w.standing.id],
      error: new RegExp(`illegal transition of need ${w.standing.id}: a standing need is never resolved`),
    },

    // need_tags
    {
      name: 'need_tags.tag uppercase',
      sql: "INSERT INTO need_tags VALUES (?, 'Kernel')",
      params: [w.d.id],
      error: CHECK,
    },
    {
      name: 'need_tags.tag starting with -',
      sql: "INSERT INTO need_tags VALUES (?, '-kernel')",
      params: [w.d.id],
      error: CHECK,
    },
    {
      name: 'need_tags.tag with a space',
      sql: "INSERT INTO need_tags VALUES (?, 'ml ops')",
      params: [w.d.id],
      error: CHECK,
    },
    {
      name: 'need_tags.tag empty',
      sql: "INSERT INTO need_tags VALUES (?, '')",
      params: [w.d.id],
      error: CHECK,
    },
    {
      name: 'need_tags.tag over 64 characters',
      sql: 'INSERT INTO need_tags VALUES (?, ?)',
      params: [w.d.id, 't'.repeat(65)],
      error: CHECK,
    },
    {
      name: 'need_tags.need_id unknown',
      sql: "INSERT INTO need_tags VALUES ('need_01JNOPENOPENOPENOPENOPENOP', 'kernel')",
      error: FK,
    },
    {
      name: 'need_tags duplicate',
      sql: "INSERT INTO need_tags VALUES (?, 'kernel')",
      params: [w.a.id],
      error: UNIQUE,
    },

    // agents
    agent('agents.id without agent_ prefix', { id: 'bot_1' }, CHECK),
    agent('agents.identity unknown', { identity: 'nobody' }, FK),
    agent('agents.identity_hash not 64 hex', { identity_hash: 'xyz' }, CHECK),
    agent('agents.worker empty', { worker: '' }, CHECK),
    agent('agents.capacity 0', { capacity: 0 }, CHECK),
    agent('agents.load -1', { load: -1 }, CHECK),
    agent('agents.status outside live|stopped', { status: 'zombie' }, CHECK),

    // tasks
    task('tasks.id without task_ prefix', { id: 'need_01JZZZZZZZZZZZZZZZZZZZZZZZ' }, CHECK),
    task('tasks.need_id unknown', { need_id: 'need_01JNOPENOPENOPENOPENOPENOP' }, FK),
    task('tasks.identity unknown', { identity: 'nobody' }, FK),
    task('tasks.agent_id unknown', { agent_id: 'agent_01JNOPENOPENOPENOPENOPENOP' }, FK),
    task('tasks.attempt 0', { attempt: 0 }, CHECK),
    task('tasks.fencing_token -1', { fencing_token: -1 }, CHECK),
    task('tasks.outcome unknown', { outcome: 'great' }, CHECK),
    task('tasks.pack_hash not 64 hex', { pack_hash: 'abc' }, CHECK),
    task('tasks.cause unknown', { cause: 'bad_luck' }, CHECK),
    task('tasks.tokens_in -1', { tokens_in: -1 }, CHECK),
    task('tasks.tokens_out -1', { tokens_out: -1 }, CHECK),
    task('tasks.tokens_cache_read -1', { tokens_cache_read: -1 }, CHECK),
    task('tasks.tokens_cache_write -1', { tokens_cache_write: -1 }, CHECK),
    task('tasks.cost_usd negative', { cost_usd: -0.01 }, CHECK),
    task('tasks.progress_turns -1', { progress_turns: -1 }, CHECK),
    task('tasks.progress_tokens -1', { progress_tokens: -1 }, CHECK),
    task('tasks.progress_tool_calls -1', { progress_tool_calls: -1 }, CHECK),
    task(
      'tasks created succeeded',
      { status: 'succeeded' },
      /a task is created queued or running, not succeeded/,
    ),
    task(
      'tasks created with an unknown status',
      { status: 'bogus' },
      /a task is created queued or running, not bogus/,
    ),
    task('tasks second live task for one need', { need_id: w.a.id, attempt: 2 }, UNIQUE),
    task('tasks second queued task for one need', { need_id: w.b.id, attempt: 2 }, UNIQUE),
    task('tasks attempt number reused', { need_id: w.d.id, attempt: 1 }, UNIQUE),
    {
      name: 'tasks outcome updated to an unknown value',
      sql: "UPDATE tasks SET outcome = 'great' WHERE id = ?",
      params: [w.ended.id],
      error: CHECK,
    },
    {
      name: 'tasks deleted',
      sql: 'DELETE FROM tasks WHERE id = ?',
      params: [w.ended.id],
      error: new RegExp(`tasks are never deleted: cancel task ${w.ended.id} instead`),
    },
    {
      name: 'tasks cancelled → running',
      sql: "UPDATE tasks SET status = 'running' WHERE id = ?",
      params: [w.ended.id],
      error: new RegExp(`illegal transition of task ${w.ended.id}: cancelled → running`),
    },
    {
      name: 'tasks running → queued',
      sql: "UPDATE tasks SET status = 'queued' WHERE id = ?",
      params: [w.running.id],
      error: new RegExp(`illegal transition of task ${w.running.id}: running → queued`),
    },

    // artifacts
    artifact('artifacts.id without art_ prefix', { id: 'file_1' }, CHECK),
    artifact('artifacts.kind unknown', { kind: 'video' }, CHECK),
    artifact('artifacts.title blank', { title: ' ' }, CHECK),
    artifact('artifacts.content_hash not 64 hex', { content_hash: 'abc' }, CHECK),
    artifact('artifacts.token_count -1', { token_count: -1 }, CHECK),
    artifact('artifacts file without a uri', { kind: 'file', uri: null }, CHECK),
    artifact('artifacts url without a uri', { kind: 'url', uri: null }, CHECK),
    artifact('artifacts.content over 16 MiB', { content: 'c'.repeat(16 * 1024 * 1024 + 1) }, CHECK),

    // edges
    edge('edges.rel unknown', w.d.id, 'blocks', w.a.id, CHECK),
    edge('edges.from_id not a node', 'need_01JNOPENOPENOPENOPENOPENOP', 'references', w.a.id, FK),
    edge('edges.to_id not a node', w.a.id, 'references', 'art_01JNOPENOPENOPENOPENOPENOPE', FK),
    edge('edges joining a node to itself', w.a.id, 'references', w.a.id, CHECK),
    edge('edges duplicate', w.b.id, 'depends_on', w.a.id, UNIQUE),
    edge('edges depends_on need → task', w.d.id, 'depends_on', w.running.id, /joins the wrong kinds of node/),
    edge('edges child_of need → artifact', w.d.id, 'child_of', w.note, /joins the wrong kinds of node/),
    edge(
      'edges produced_by need → task',
      w.d.id,
      'produced_by',
      w.running.id,
      /joins the wrong kinds of node/,
    ),
    edge('edges produced_by artifact → need', w.note, 'produced_by', w.d.id, /joins the wrong kinds of node/),
    edge('edges source_transcript artifact → need', w.note, 'source_transcript', w.d.id, /wrong kinds/),
    edge('edges derived_from artifact → task', w.note, 'derived_from', w.running.id, /wrong kinds/),
    edge('edges supersedes need → artifact', w.d.id, 'supersedes', w.note, /joins the wrong kinds of node/),
    edge(
      'edges depends_on closing a 2-cycle',
      w.a.id,
      'depends_on',
      w.b.id,
      new RegExp(`depends_on cycle refused: ${w.a.id} → ${w.b.id} closes a cycle`),
    ),
    edge('edges depends_on closing a 3-cycle', w.a.id, 'depends_on', w.c.id, /depends_on cycle refused/),
    edge('edges depends_on to itself', w.d.id, 'depends_on', w.d.id, /depends_on cycle refused/),
    {
      name: 'edges updated',
      sql: "UPDATE edges SET rel = 'references' WHERE from_id = ? AND rel = 'depends_on'",
      params: [w.b.id],
      error: /edges are immutable: remove and add instead/,
    },

    // leases
    {
      name: 'leases deleted',
      sql: 'DELETE FROM leases WHERE need_id = ?',
      params: [w.a.id],
      error: new RegExp(`leases are never deleted \\(need ${w.a.id}\\)`),
    },
    {
      name: 'leases fencing token shrinks',
      sql: 'UPDATE leases SET fencing_token = 0 WHERE need_id = ?',
      params: [w.a.id],
      error: new RegExp(`fencing token of need ${w.a.id} may only grow \\(1 → 0\\)`),
    },
    {
      name: 'leases held by a task of another need',
      sql: 'UPDATE leases SET task_id = ?, expires_at = 1 WHERE need_id = ?',
      params: [w.queued.id, w.d.id],
      error: new RegExp(`lease of need ${w.d.id} can only be held by a task of that need`),
    },
    {
      name: 'leases held by an unknown task',
      sql: 'UPDATE leases SET task_id = ?, expires_at = 1 WHERE need_id = ?',
      params: ['task_01JNOPENOPENOPENOPENOPENOP', w.d.id],
      error: /can only be held by a task of that need/,
    },
    {
      name: 'leases held without an expiry',
      sql: 'UPDATE leases SET expires_at = NULL WHERE need_id = ?',
      params: [w.a.id],
      error: CHECK,
    },
    {
      name: 'leases expiry without a holder',
      sql: 'UPDATE leases SET expires_at = 5 WHERE need_id = ?',
      params: [w.d.id],
      error: CHECK,
    },
    {
      name: 'leases.need_id unknown',
      sql: "INSERT INTO leases (need_id, updated_at) VALUES ('need_01JNOPENOPENOPENOPENOPENOP', 0)",
      error: FK,
    },
    {
      name: 'leases second row for a need',
      sql: 'INSERT INTO leases (need_id, fencing_token, updated_at) VALUES (?, 9, 0)',
      params: [w.d.id],
      error: UNIQUE,
    },

    // runs, budgets, outbox
    {
      name: 'runs.id without run_ prefix',
      sql: "INSERT INTO runs (id, started_at) VALUES ('r1', 0)",
      error: CHECK,
    },
    {
      name: 'runs.token_limit 0',
      sql: "INSERT INTO runs (id, token_limit, started_at) VALUES ('run_2', 0, 0)",
      error: CHECK,
    },
    budget('budget_entries.task_id unknown', { task_id: 'task_01JNOPENOPENOPENOPENOPENOP' }, FK),
    budget('budget_entries.identity unknown', { identity: 'nobody' }, FK),
    budget('budget_entries.run_id unknown', { run_id: 'run_nope' }, FK),
    budget('budget_entries.day malformed', { day: '2026/01/01' }, CHECK),
    budget('budget_entries.state unknown', { state: 'spent' }, CHECK),
    budget('budget_entries.reserved_tokens -1', { reserved_tokens: -1 }, CHECK),
    budget('budget_entries.used_tokens -1', { used_tokens: -1 }, CHECK),
    budget('budget_entries.cost_usd negative', { cost_usd: -1 }, CHECK),
    {
      name: 'budget_entries deleted',
      sql: 'DELETE FROM budget_entries',
      error: /^budget entries are never deleted/,
    },
    {
      name: 'budget_totals.scope unknown',
      sql: "INSERT INTO budget_totals VALUES ('week', '2026-01-01', 'x', 0)",
      error: CHECK,
    },
    {
      name: 'budget_totals.tokens -1',
      sql: "INSERT INTO budget_totals VALUES ('day', '2026-01-02', 'x', -1)",
      error: CHECK,
    },
    {
      name: 'outbox.task_id unknown',
      sql: "INSERT INTO outbox (task_id, queue, created_at) VALUES ('task_01JNOPENOPENOPENOPENOPENOP', 'q', 0)",
      error: FK,
    },
    {
      name: 'outbox second row for a task',
      sql: "INSERT INTO outbox (task_id, queue, created_at) VALUES (?, 'q', 0)",
      params: [w.queued.id],
      error: UNIQUE,
    },
    {
      name: 'outbox.queue empty',
      sql: "INSERT INTO outbox (task_id, queue, created_at) VALUES (?, '', 0)",
      params: [w.running.id],
      error: CHECK,
    },

    // workspaces, supervisor lock, cursors
    {
      name: 'workspaces.name malformed',
      sql: "INSERT INTO workspaces (name, out_dir, created_at) VALUES ('Sprint X', 'v', 0)",
      error: CHECK,
    },
    {
      name: 'workspaces.tags_any not JSON',
      sql: "INSERT INTO workspaces (name, tags_any, out_dir, created_at) VALUES ('w', 'kernel', 'v', 0)",
      error: CHECK,
    },
    {
      name: 'workspaces.tags_all not an array',
      sql: "INSERT INTO workspaces (name, tags_all, out_dir, created_at) VALUES ('w', '{}', 'v', 0)",
      error: CHECK,
    },
    {
      name: 'workspaces.statuses not an array',
      sql: `INSERT INTO workspaces (name, statuses, out_dir, created_at) VALUES ('w', '"open"', 'v', 0)`,
      error: CHECK,
    },
    {
      name: 'workspaces.out_dir empty',
      sql: "INSERT INTO workspaces (name, out_dir, created_at) VALUES ('w', '', 0)",
      error: CHECK,
    },
    {
      name: 'supervisor_lock second row',
      sql: "INSERT INTO supervisor_lock VALUES (2, 1, 'h', 0, 0)",
      error: CHECK,
    },
    { name: 'cursors.seq -1', sql: "INSERT INTO cursors VALUES ('views', -1)", error: CHECK },

    // need_moves: filed by the events trigger, under a tag or a scope, for an existing event
    {
      name: 'need_moves.key untyped',
      sql: 'INSERT INTO need_moves VALUES (?, 1)',
      params: ['kernel'],
      error: CHECK,
    },
    { name: 'need_moves.key empty tag', sql: "INSERT INTO need_moves VALUES ('tag:', 1)", error: CHECK },
    {
      name: 'need_moves.seq of no event',
      sql: "INSERT INTO need_moves VALUES ('tag:kernel', ?)",
      params: [head.seq + 100],
      error: FK,
    },

    // events: append-only, chained, well-formed
    {
      name: 'events updated',
      sql: "UPDATE events SET actor = 'mallory' WHERE seq = 1",
      error: /events are append-only: UPDATE of event 1 refused/,
    },
    {
      name: 'events deleted',
      sql: 'DELETE FROM events WHERE seq = ?',
      params: [head.seq],
      error: new RegExp(`events are append-only: DELETE of event ${head.seq} refused`),
    },
    event(
      'events skipping a seq',
      { seq: head.seq + 2 },
      /event chain fork refused: event \d+ does not follow/,
    ),
    event('events reusing a seq', { seq: head.seq }, /event chain fork refused/),
    event('events with a wrong prev_hash', { prev_hash: ZERO }, /event chain fork refused/),
    event('events without a seq', { seq: null }, /event chain fork refused/),
    event('events.kind malformed', { kind: 'Need Created' }, CHECK),
    event('events.actor empty', { actor: '' }, CHECK),
    event('events.payload not JSON', { payload: '{nope' }, CHECK),
    event('events.hash not 64 hex', { hash: 'abc' }, CHECK),
    event('events.prev_hash not 64 hex', { prev_hash: 'abc' }, /event chain fork refused|CHECK/),
  ];
}

/** The fixture is built while the suite is collected, so every case gets its own named test. */
function setup(): { raw: RawDb; world: World; refused: RefusedWrite[]; path: string; cleanup: () => void } {
  const tmp = makeTempDir();
  const path = join(tmp.dir, 'constraints.db');
  const { store, clock } = openTestStore(path);
  const world = buildWorld(store, clock);
  store.close();
  const raw = openRaw(path);
  raw.prepare('INSERT INTO runs (id, started_at) VALUES (?, 0)').run(world.runId);
  raw
    .prepare(
      `INSERT INTO agents (id, identity, identity_hash, worker, capacity, started_at, heartbeat_at)
       VALUES (?, ?, ?, 'w1', 1, 0, 0)`,
    )
    .run(world.agentId, IDENTITY, H);
  raw
    .prepare(
      `INSERT INTO budget_entries (task_id, identity, day, run_id, state, reserved_tokens, created_at)
       VALUES (?, ?, '2026-01-01', ?, 'reserved', 100, 0)`,
    )
    .run(world.running.id, IDENTITY, world.runId);
  const head = raw
    .prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1')
    .get()!;
  return {
    raw,
    world,
    path,
    refused: cases(world, head),
    cleanup: () => {
      raw.close();
      tmp.cleanup();
    },
  };
}

class Rollback extends Error {}

describe('the database refuses malformed writes by itself', () => {
  const { raw, world, refused, cleanup } = setup();
  afterAll(cleanup);

  it('accepts the fixtures of the table when nothing in them is wrong', () => {
    // Each refused write below differs from a valid one by one column: prove the valid ones pass.
    const before = snapshot(raw);
    const valid = [
      needInsert({}),
      needInsert({ id: 'need_01JYYYYYYYYYYYYYYYYYYYYYYY', mode: 'standing', cadence_ms: 1000 }),
      taskInsert(world, {}),
      { sql: "INSERT INTO need_tags VALUES (?, 'ml-ops')", params: [world.d.id] },
      { sql: "INSERT INTO edges VALUES (?, 'references', ?, 0)", params: [world.d.id, world.note] },
      { sql: "INSERT INTO edges VALUES (?, 'produced_by', ?, 0)", params: [world.note, world.running.id] },
      { sql: "INSERT INTO edges VALUES (?, 'derived_from', ?, 0)", params: [world.other, world.note] },
      { sql: "INSERT INTO edges VALUES (?, 'supersedes', ?, 0)", params: [world.d.id, world.c.id] },
      { sql: "INSERT INTO edges VALUES (?, 'child_of', ?, 0)", params: [world.d.id, world.a.id] },
      { sql: "INSERT INTO edges VALUES (?, 'depends_on', ?, 0)", params: [world.d.id, world.c.id] },
      {
        sql: `INSERT INTO budget_entries (task_id, identity, day, run_id, state, reserved_tokens, created_at)
              VALUES (?, ?, '2026-01-01', ?, 'reserved', 100, 0)`,
        params: [world.running.id, IDENTITY, world.runId],
      },
      {
        sql: "INSERT INTO outbox (task_id, queue, created_at) VALUES (?, 'q', 0)",
        params: [world.running.id],
      },
      { sql: "INSERT INTO workspaces (name, out_dir, created_at) VALUES ('w', 'v', 0)", params: [] },
      { sql: "INSERT INTO cursors VALUES ('views', 0)", params: [] },
      { sql: "INSERT INTO need_moves VALUES ('scope:sprint', 1)", params: [] },
    ];
    expect(() =>
      raw.transaction(() => {
        for (const v of valid) raw.prepare(v.sql).run(...v.params);
        throw new Rollback('undo the valid writes');
      })(),
    ).toThrow(Rollback);
    expect(snapshot(raw)).toBe(before);
  });

  it('has a refused write for every table of the schema', () => {
    const tables = raw
      .prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all();
    const touched = new Set(refused.map((c) => /(?:INTO|UPDATE|FROM)\s+(\w+)/i.exec(c.sql)?.[1]));
    // `secrets` has no constraint beyond its key.
    expect(tables.filter((t) => !touched.has(t) && t !== 'secrets')).toEqual([]);
  });

  it.each(refused.map((c) => [c.name, c] as const))('refuses %s and changes nothing', (_name, c) => {
    const before = snapshot(raw);
    const error = (() => {
      try {
        raw.prepare(c.sql).run(...(c.params ?? []));
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error, `${c.name} was accepted`).toBeInstanceOf(Error);
    expect(error?.message).toMatch(c.error);
    fired.add(error!.message);
    expect(snapshot(raw)).toBe(before);
  });
});

describe('CHECKs and foreign keys that triggers stand in front of', () => {
  // A trigger refuses these first; with the trigger gone, the constraint behind it still holds.
  const masked: {
    trigger: string;
    write: (w: World) => { sql: string; params: unknown[] };
    error: RegExp;
  }[] = [
    { trigger: 'needs_insert_open', write: () => needInsert({ status: 'bogus' }), error: CHECK },
    {
      trigger: 'events_chain',
      write: (w) => ({
        sql: `INSERT INTO events (at, actor, kind, entity, payload, prev_hash, hash)
              VALUES (0, 'test', 'need.updated', ?, '{}', 'abc', ?)`,
        params: [w.a.id, hex('forged')],
      }),
      error: CHECK,
    },
    {
      trigger: 'needs_status_transition',
      write: (w) => ({ sql: "UPDATE needs SET status = 'bogus' WHERE id = ?", params: [w.d.id] }),
      error: CHECK,
    },
    { trigger: 'tasks_insert_live', write: (w) => taskInsert(w, { status: 'bogus' }), error: CHECK },
    {
      trigger: 'tasks_status_transition',
      write: (w) => ({ sql: "UPDATE tasks SET status = 'bogus' WHERE id = ?", params: [w.queued.id] }),
      error: CHECK,
    },
    {
      trigger: 'leases_token_grows',
      write: (w) => ({ sql: 'UPDATE leases SET fencing_token = -1 WHERE need_id = ?', params: [w.d.id] }),
      error: CHECK,
    },
    {
      trigger: 'leases_holder_of_need',
      write: (w) => ({
        sql: 'UPDATE leases SET task_id = ?, expires_at = 1 WHERE need_id = ?',
        params: ['task_01JNOPENOPENOPENOPENOPENOP', w.d.id],
      }),
      error: FK,
    },
  ];
  const { raw, world, cleanup } = setup();
  afterAll(cleanup);

  it.each(masked.map((m) => [m.trigger, m] as const))('without %s the write is still refused', (_t, m) => {
    const { sql, params } = m.write(world);
    expect(() => raw.prepare(sql).run(...params)).toThrow();
    raw.exec(`SAVEPOINT drop_trigger; DROP TRIGGER ${m.trigger};`);
    try {
      const before = snapshot(raw);
      const error = thrown(() => raw.prepare(sql).run(...params));
      expect(error.message).toMatch(m.error);
      fired.add(error.message);
      expect(snapshot(raw)).toBe(before);
    } finally {
      raw.exec('ROLLBACK TO drop_trigger; RELEASE drop_trigger;');
    }
    expect(raw.prepare('SELECT 1 FROM sqlite_schema WHERE name = ?').get(m.trigger)).toBeDefined();
  });
});

describe('registration triggers', () => {
  const { raw, world, cleanup } = setup();
  afterAll(cleanup);

  it('registers every need, task and artifact as a node, and gives every need a lease at token 0', () => {
    const nodes = new Map(
      raw
        .prepare<[], { id: string; kind: string }>('SELECT id, kind FROM nodes')
        .all()
        .map((r) => [r.id, r.kind]),
    );
    expect(nodes.get(world.a.id)).toBe('need');
    expect(nodes.get(world.running.id)).toBe('task');
    expect(nodes.get(world.note)).toBe('artifact');
    const count = (sql: string) => raw.prepare<[], number>(sql).pluck().get();
    expect(count('SELECT count(*) FROM nodes')).toBe(
      count(
        'SELECT (SELECT count(*) FROM needs) + (SELECT count(*) FROM tasks) + (SELECT count(*) FROM artifacts)',
      ),
    );
    expect(count('SELECT count(*) FROM leases')).toBe(count('SELECT count(*) FROM needs'));

    const fresh = needInsert({});
    raw.exec('SAVEPOINT raw_need');
    try {
      raw.prepare(fresh.sql).run(...fresh.params);
      expect(
        raw
          .prepare('SELECT task_id, fencing_token, expires_at FROM leases WHERE need_id = ?')
          .get(fresh.params[0]),
      ).toEqual({ task_id: null, fencing_token: 0, expires_at: null });
    } finally {
      raw.exec('ROLLBACK TO raw_need; RELEASE raw_need;');
    }
  });
});

describe('errors raised by the database reach callers as typed errors', () => {
  const { raw, world, cleanup } = setup();
  afterAll(cleanup);

  const rawError = (sql: string, ...params: unknown[]): unknown => {
    try {
      raw.prepare(sql).run(...params);
    } catch (e) {
      return e;
    }
    throw new Error(`${sql} was accepted`);
  };

  it('turns a refused transition into an IllegalTransitionError naming entity, from and to', () => {
    const error = translateSqliteError(
      rawError("UPDATE needs SET status = 'active' WHERE id = ?", world.resolved.id),
    );
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect(error).toMatchObject({ entity: `need ${world.resolved.id}`, from: 'resolved', to: 'active' });
    expect((error as Error).message).toBe(
      `illegal transition of need ${world.resolved.id}: resolved → active is not allowed`,
    );
  });

  it('turns any other refused write into a UserError that keeps the database text', () => {
    const error = translateSqliteError(rawError("INSERT INTO need_tags VALUES (?, 'Bad Tag')", world.d.id));
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ code: 'constraint' });
    expect((error as Error).message).toMatch(/^the database refused the write: CHECK constraint failed/);
  });
});

/** The text inside each `CHECK (…)` of a CREATE statement, as SQLite quotes it when it fails. */
function checkExpressions(sql: string): string[] {
  const out: string[] = [];
  for (let at = sql.indexOf('CHECK ('); at !== -1; at = sql.indexOf('CHECK (', at + 1)) {
    let depth = 0;
    for (let i = at + 'CHECK '.length; i < sql.length; i++) {
      if (sql[i] === '(') depth++;
      else if (sql[i] === ')' && --depth === 0) {
        out.push(sql.slice(at + 'CHECK ('.length, i));
        break;
      }
    }
  }
  return out;
}

/** What each guard trigger says when it refuses; the registration triggers are tested above. */
const TRIGGER_MESSAGES: Record<string, RegExp> = {
  needs_insert_open: /^a need is created open/,
  needs_no_delete: /^needs are never deleted/,
  needs_status_transition: /^illegal transition of need \S+: \S+ → \S+$/,
  needs_standing_never_resolved: /a standing need is never resolved$/,
  tasks_insert_live: /^a task is created queued or running/,
  tasks_no_delete: /^tasks are never deleted/,
  tasks_status_transition: /^illegal transition of task \S+: \S+ → \S+$/,
  leases_token_grows: /^fencing token of need \S+ may only grow/,
  leases_holder_of_need: /^lease of need \S+ can only be held by a task of that need$/,
  leases_no_delete: /^leases are never deleted/,
  edges_kinds: /joins the wrong kinds of node$/,
  edges_no_cycle: /^depends_on cycle refused/,
  edges_immutable: /^edges are immutable/,
  events_chain: /^event chain fork refused/,
  events_no_update: /^events are append-only: UPDATE/,
  events_no_delete: /^events are append-only: DELETE/,
  budget_entries_no_delete: /^budget entries are never deleted/,
};
/** Triggers that keep derived rows (nodes, budget totals, need moves) rather than refuse writes. */
const REGISTRATION_TRIGGERS = [
  'needs_node',
  'tasks_node',
  'artifacts_node',
  'budget_totals_insert',
  'budget_totals_update',
  'need_moves_file',
];

describe('coverage of the schema by the refused writes above', () => {
  const { raw, refused, cleanup } = setup();
  afterAll(cleanup);
  const hint = 'add a refused write for it in test/unit/store/constraints.test.ts';

  it('made every CHECK constraint of every table fire', () => {
    const tables = raw
      .prepare<[], { name: string; sql: string }>(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
      )
      .all();
    // ALTER TABLE … ADD COLUMN appends the column text to the stored CREATE statement.
    const wanted = tables.flatMap((t) => checkExpressions(t.sql).map((e) => `${t.name}: ${e}`));
    const firedChecks = [...fired]
      .map((m) => /^CHECK constraint failed: ([\s\S]*)$/.exec(m)?.[1])
      .filter((e): e is string => e !== undefined);
    const missing = wanted.filter((w) => !firedChecks.includes(w.slice(w.indexOf(': ') + 2)));
    expect(missing, hint).toEqual([]);
    expect(wanted.length).toBeGreaterThan(60);
  });

  it('made every foreign key refuse a dangling reference', () => {
    const tables = raw
      .prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all();
    const keys = tables.flatMap((t) =>
      raw
        .prepare<[], { from: string }>(`PRAGMA foreign_key_list("${t}")`)
        .all()
        .map((fk) => `${t}.${fk.from}`),
    );
    const covered = new Set([
      ...refused.filter((c) => c.error === FK).map((c) => /^(\w+\.\w+)/.exec(c.name)?.[1]),
      // Behind leases_holder_of_need: covered by the suite of masked constraints.
      'leases.task_id',
    ]);
    expect(
      keys.filter((k) => !covered.has(k)),
      hint,
    ).toEqual([]);
    expect(keys.length).toBeGreaterThanOrEqual(13);
  });

  it('made every guard trigger refuse a write', () => {
    const triggers = raw
      .prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
      .pluck()
      .all();
    const missing = triggers.filter((t) => {
      if (REGISTRATION_TRIGGERS.includes(t)) return false;
      const pattern = TRIGGER_MESSAGES[t];
      return !pattern || ![...fired].some((m) => pattern.test(m));
    });
    expect(missing, hint).toEqual([]);
  });

  it('made the one-live-task-per-need index refuse a second live task', () => {
    expect([...fired]).toContain('UNIQUE constraint failed: tasks.need_id');
  });
});
