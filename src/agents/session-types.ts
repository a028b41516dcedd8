import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Identity } from '../kernel/identity/schema.js';
import type { Clock, TaskOutcome, Timers } from '../store/index.js';
import type { LlmProvider, LlmUsage, ToolDefinition } from './provider.js';
import type { Sleep } from './retry.js';

/** The options, limits, events and result of one agent session (see session.ts). */
export interface SessionLimits {
  /** Model calls at most. */
  maxTurns: number;
  maxOutputTokens: number;
  /** The model's context window; older tool results are compacted past 80 % of it. */
  contextWindow: number;
  /** Wall time of the whole session, in ms. */
  deadlineMs: number;
  /** Deadline of one model call attempt, in ms. */
  callTimeoutMs: number;
  /** Attempts per model call (retries on 429, 5xx, timeouts), each reserved against the budget. */
  maxAttempts: number;
  /** Malformed tool calls in a row before the task fails. */
  maxMalformedInARow: number;
  /** Replies without a tool call before the task fails. */
  maxNudges: number;
  bootBudget: number;
}

export const DEFAULT_LIMITS: SessionLimits = {
  maxTurns: 40,
  maxOutputTokens: 4096,
  contextWindow: 200_000,
  deadlineMs: 30 * 60_000,
  callTimeoutMs: 120_000,
  maxAttempts: 4,
  maxMalformedInARow: 3,
  maxNudges: 2,
  bootBudget: 16_000,
};

export interface SessionTask {
  readonly id: string;
  readonly needId: string;
  readonly identity: Identity;
  readonly needTitle?: string;
  readonly needTags?: readonly string[];
  /**
   * When the task's lease ends unless progress renews it (epoch ms), as the claim said. A retry
   * wait that would let it lapse is not taken: the session ends now (after an outage, a quarter of
   * an attempt and a hold of the identity) rather than losing its lease (a whole attempt).
   */
  readonly leaseUntil?: number;
}

export type SessionEvent =
  | { kind: 'boot'; tokens: number; sections: readonly { section: string; tokens: number }[] }
  | { kind: 'turn'; turn: number; usage: LlmUsage; costUsd: number; text: string; calls: string[] }
  | { kind: 'tool'; turn: number; name: string; isError: boolean; text: string }
  | { kind: 'retry'; attempt: number; delayMs: number; reason: string }
  | { kind: 'end'; result: SessionResult };

export interface AgentSessionOptions {
  /** An MCP client of the guard bound to this task (its agent token or principal). */
  readonly client: Client;
  readonly provider: LlmProvider;
  readonly model: string;
  readonly task: SessionTask;
  readonly limits?: Partial<SessionLimits>;
  readonly clock?: Clock;
  readonly sleep?: Sleep;
  /** How often progress is reported to the guard, in ms (default 5 s). */
  readonly heartbeatMs?: number;
  /** Timers for the periodic heartbeat (default: Node's setInterval); the simulator injects virtual ones. */
  readonly timers?: Timers;
  readonly onEvent?: (event: SessionEvent) => void;
  readonly signal?: AbortSignal;
  /**
   * The tools the guard offers each identity, by pinned hash. They do not change between the
   * tasks of one identity, so a worker passes one map to all its sessions and only the first
   * session of an identity lists them (listing converts and compiles every tool's schemas).
   */
  readonly toolCache?: Map<string, readonly ToolDefinition[]>;
}

export interface SessionResult {
  /** How the task ended: a finish outcome, or why the session stopped without one. */
  readonly outcome: TaskOutcome | 'lease_lost' | 'aborted';
  readonly reason: string | null;
  readonly turns: number;
  readonly toolCalls: number;
  readonly usage: LlmUsage;
  readonly costUsd: number;
}
