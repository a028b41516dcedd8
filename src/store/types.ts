/**
 * Glossary — the words of the domain, used the same everywhere.
 *
 * - **need**: a persistent, evolving state of the world someone wants ("the kernel must be testable").
 *   It is the unit of work. Status: open → active → resolved | dropped.
 * - **task**: what a need becomes when it is actionable: one attempt at it, run by one agent.
 * - **identity**: an immutable file (Layer 1) saying who an agent is: objective, invariants, scope, tools.
 * - **agent**: one running instance of an identity; each task it runs is an agent session.
 * - **lease**: the right to work on a need, held by one task; guarded by a **fencing token** that
 *   only grows, so a stale holder's writes are refused.
 * - **round table**: agents watching the need state and taking over needs that go unmet.
 * - **guard**: the MCP server every write passes through.
 * - **context pack**: the token-budgeted slice of the graph an agent boots with (Layer 3).
 * - **boot payload**: identity + awareness + context pack, compiled for one task.
 * - **view**: a markdown file compiled from the database (PROBLEM.md, README.md, need pages, graph).
 * - **workspace**: a named filter over needs with an output folder for its views.
 * - **scope** (of a need): a grouping label such as a sprint (`Sprint_X`). An identity's watch tags
 *   are its `scope.primary` and `scope.peripheral` tag sets.
 * - **event**: an append-only, hash-chained record of every mutation.
 */
import type { NeedStatus, TaskStatus } from './transitions.js';

export type { NeedStatus, TaskStatus };

export const NEED_MODES = ['once', 'standing'] as const;
export type NeedMode = (typeof NEED_MODES)[number];

export const EDGE_RELS = [
  'depends_on',
  'references',
  'produced_by',
  'source_transcript',
  'derived_from',
  'supersedes',
  'child_of',
] as const;
export type EdgeRel = (typeof EDGE_RELS)[number];

export const ARTIFACT_KINDS = ['file', 'url', 'note', 'transcript', 'result'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

export const TASK_OUTCOMES = ['resolved', 'progressed', 'blocked', 'failed'] as const;
export type TaskOutcome = (typeof TASK_OUTCOMES)[number];

/**
 * Why a failed task failed, when it was not the work's fault. `model_unavailable`: its model was
 * rate limited, answered with server errors or could not be reached, after the session's own
 * retries. Such failures do not count towards a need's `max_attempts`; they hold the identity.
 */
export const TASK_CAUSES = ['model_unavailable'] as const;
export type TaskCause = (typeof TASK_CAUSES)[number];

export interface Need {
  readonly id: string;
  readonly title: string;
  readonly body: string;
  readonly acceptance: string;
  readonly status: NeedStatus;
  readonly priority: number;
  readonly scope: string;
  readonly mode: NeedMode;
  readonly cadenceMs: number | null;
  readonly notBefore: number | null;
  readonly unmetSince: number | null;
  readonly orphaned: boolean;
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly tags: readonly string[];
}

export interface Task {
  readonly id: string;
  readonly needId: string;
  readonly identity: string;
  readonly agentId: string | null;
  readonly status: TaskStatus;
  readonly attempt: number;
  readonly fencingToken: number;
  readonly outcome: TaskOutcome | null;
  readonly summary: string | null;
  readonly error: string | null;
  /** Set on a failure that was not the work's fault (see TaskCause). */
  readonly cause: TaskCause | null;
  readonly packHash: string | null;
  readonly tokensIn: number;
  readonly tokensOut: number;
  readonly tokensCacheRead: number;
  readonly tokensCacheWrite: number;
  readonly costUsd: number;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly heartbeatAt: number | null;
  readonly progressAt: number | null;
}

export interface Artifact {
  readonly id: string;
  readonly kind: ArtifactKind;
  readonly uri: string | null;
  readonly title: string;
  readonly content: string | null;
  readonly contentHash: string;
  readonly summary: string | null;
  readonly tokenCount: number;
  readonly createdAt: number;
}

export interface Edge {
  readonly from: string;
  readonly rel: EdgeRel;
  readonly to: string;
  readonly createdAt: number;
}

export interface Lease {
  readonly needId: string;
  readonly taskId: string | null;
  readonly fencingToken: number;
  readonly expiresAt: number | null;
  readonly updatedAt: number;
}

/** A write made on behalf of a task carries the task and the fencing token it holds. */
export interface Fence {
  readonly taskId: string;
  readonly token: number;
}

export interface StoredEvent {
  readonly seq: number;
  readonly at: number;
  readonly actor: string;
  readonly kind: string;
  readonly entity: string;
  readonly needId: string | null;
  readonly payload: unknown;
  readonly prevHash: string;
  readonly hash: string;
}

export interface Workspace {
  readonly name: string;
  readonly tagsAny: readonly string[];
  readonly tagsAll: readonly string[];
  readonly scope: string | null;
  readonly statuses: readonly NeedStatus[];
  readonly outDir: string;
  readonly createdAt: number;
}

export interface IdentityPin {
  readonly name: string;
  readonly hash: string;
  readonly content: string;
  readonly driftHash: string | null;
  readonly paused: boolean;
  readonly pinnedAt: number;
  /**
   * While set and in the future, the identity gets no new work: its model was unavailable (see
   * IdentityRepository.hold). Past, it no longer holds anything.
   */
  readonly heldUntil: number | null;
  /** Why the latest hold was set (the model call's error). */
  readonly heldReason: string | null;
  /** Consecutive holds since the identity's last task that ended well (the back-off doubles per hold). */
  readonly holds: number;
}
