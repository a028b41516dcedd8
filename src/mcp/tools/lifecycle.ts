import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { type Fence, type Progress, TASK_CAUSES, TASK_OUTCOMES, type TaskCause } from '../../store/index.js';
import { assertRunnable, claimAsAgent, holdBackoff, MAX_RETRY_DELAY_MS } from '../agent-claim.js';
import { GuardRefusal, ok } from '../result.js';
import type { GuardSession } from '../session.js';
import { defineTool } from './define.js';

/** The `_meta` key under which an agent loop sends its session transcript with `finish`. */
export const TRANSCRIPT_META = 'mlos/transcript';

/**
 * The `_meta` key under which an agent loop sends its progress counters with `finish` (turns,
 * tokens, tool_calls, as `heartbeat` takes them): the heartbeat of the finishing turn is
 * recorded in the finish's own commit.
 */
export const PROGRESS_META = 'mlos/progress';

/**
 * The `_meta` key under which an agent loop sends, with `finish`, the settlement of the model
 * call that produced it (the arguments `settle_budget` takes): settled in the finish's own commit.
 */
export const SETTLE_META = 'mlos/settle';

/**
 * The `_meta` key under which an agent loop says, with a `failed` finish it sends itself, why the
 * task failed when it was not the work's fault (one of TASK_CAUSES): `model_unavailable` does not
 * count towards the need's max_attempts and holds the identity (see IdentityRepository.hold).
 */
export const CAUSE_META = 'mlos/cause';

/**
 * The `_meta` key under which an agent loop sends, with `mlos/cause`, how long the provider asked
 * to wait (its `retry-after`, in ms): the identity is held at least that long (at most the longest
 * hold).
 */
export const RETRY_AFTER_META = 'mlos/retryAfterMs';

function causeOf(
  meta: Readonly<Record<string, unknown>>,
  outcome: string,
): { cause: TaskCause; retryAfterMs: number } | null {
  const cause = meta[CAUSE_META];
  const retryAfter = meta[RETRY_AFTER_META];
  if (cause === undefined) {
    if (retryAfter === undefined) return null;
    throw new GuardRefusal(`_meta["${RETRY_AFTER_META}"] goes only with _meta["${CAUSE_META}"]`);
  }
  if (!TASK_CAUSES.includes(cause as TaskCause) || outcome !== 'failed') {
    throw new GuardRefusal(
      `_meta["${CAUSE_META}"] must be one of ${TASK_CAUSES.join(', ')}, and only with outcome failed`,
    );
  }
  if (retryAfter !== undefined && !(Number.isSafeInteger(retryAfter) && (retryAfter as number) >= 0)) {
    throw new GuardRefusal(`_meta["${RETRY_AFTER_META}"] must be a whole number of milliseconds, 0 or more`);
  }
  return { cause: cause as TaskCause, retryAfterMs: (retryAfter as number | undefined) ?? 0 };
}

interface Settlement {
  readonly reservation_id: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cache_read_tokens?: number | undefined;
  readonly cache_write_tokens?: number | undefined;
  readonly cost_usd?: number | undefined;
}

function settlementOf(meta: Readonly<Record<string, unknown>>): Settlement | null {
  const s = meta[SETTLE_META];
  if (s === undefined) return null;
  const r = (typeof s === 'object' && s !== null ? s : {}) as Record<string, unknown>;
  // The same rules as settle_budget's arguments: token counts are whole and never negative.
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const ok =
    Number.isSafeInteger(r.reservation_id) &&
    count(r.input_tokens) &&
    count(r.output_tokens) &&
    (r.cache_read_tokens === undefined || count(r.cache_read_tokens)) &&
    (r.cache_write_tokens === undefined || count(r.cache_write_tokens)) &&
    (r.cost_usd === undefined || (typeof r.cost_usd === 'number' && r.cost_usd >= 0));
  if (!ok) {
    throw new GuardRefusal(
      `_meta["${SETTLE_META}"] must hold reservation_id, input_tokens and output_tokens as whole numbers (token counts 0 or more; optional cache_read_tokens and cache_write_tokens likewise, cost_usd 0 or more), as settle_budget takes them`,
    );
  }
  return r as unknown as Settlement;
}

/** Settles one of the task's reservations with a call's actual usage. */
function settleReservation(session: GuardSession, taskId: string, s: Settlement): void {
  const { store } = session;
  store.transaction(() => {
    if (store.budgets.reservationTask(s.reservation_id) !== taskId) {
      throw new GuardRefusal(
        `reservation ${s.reservation_id} belongs to another task; settle your own reservations`,
      );
    }
    store.budgets.settle(s.reservation_id, {
      inputTokens: s.input_tokens,
      outputTokens: s.output_tokens,
      cacheReadTokens: s.cache_read_tokens ?? 0,
      cacheWriteTokens: s.cache_write_tokens ?? 0,
      costUsd: s.cost_usd ?? 0,
    });
  });
}

function progressOf(meta: Readonly<Record<string, unknown>>): Progress | null {
  const p = meta[PROGRESS_META] as Record<string, unknown> | undefined;
  const count = (v: unknown) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : null);
  if (typeof p !== 'object' || p === null) return null;
  const turns = count(p.turns);
  const tokens = count(p.tokens);
  const toolCalls = count(p.tool_calls);
  return turns === null || tokens === null || toolCalls === null ? null : { turns, tokens, toolCalls };
}

/**
 * Stores a session's transcript as a `transcript` artifact of its need, `produced_by` the task,
 * and points every artifact the task produced at it with `source_transcript`.
 */
function storeTranscript(
  session: GuardSession,
  task: { id: string; needId: string; fence: Fence },
  text: string,
): void {
  const { store } = session;
  store.leases.assertFence(task.needId, task.fence);
  const { artifact } = store.artifacts.add(
    {
      kind: 'transcript',
      title: `Transcript of ${task.id}`,
      uri: `mlos://transcripts/${task.id}`,
      content: text,
    },
    { needId: task.needId, fence: task.fence },
  );
  store.edges.link(artifact.id, 'produced_by', task.id);
  for (const edge of store.edges.to(task.id, 'produced_by')) {
    if (edge.from !== artifact.id) store.edges.link(edge.from, 'source_transcript', artifact.id);
  }
}

/** Operator callers name the task and token they act for; agents use their own. */
const operatorTask = {
  task_id: z.string().optional().describe('operator only'),
  fencing_token: z.number().int().optional().describe('operator only'),
};

/** Lifecycle tools: claim_need, heartbeat, finish, reserve_budget, settle_budget. */
export function registerLifecycleTools(server: McpServer, session: GuardSession): void {
  const { store, deps } = session;

  defineTool(server, session, {
    name: 'claim_need',
    description:
      'Take a need that is unmet: an atomic lease with a new fencing token. Exactly one claimer wins; a claim too early is refused with the time it becomes eligible.',
    input: () => ({
      need_id: z.string(),
      identity: z.string().optional().describe('operator only: claim for this identity'),
    }),
    run: ({ need_id, identity: name }) => {
      const identity =
        session.principal.kind === 'agent'
          ? session.principal.identity
          : name
            ? deps.identityOf(name)
            : (() => {
                throw new GuardRefusal('as operator, pass identity: the identity that will work on the need');
              })();
      const claim =
        session.principal.kind === 'agent'
          ? claimAsAgent(store, {
              identity,
              needId: need_id,
              leaseMs: deps.leaseMs,
              runId: deps.runId,
              maxAttempts: deps.maxAttempts,
              retryDelayMs: deps.retryDelayMs,
              ...(session.principal.agentId && { agentId: session.principal.agentId }),
            })
          : // The operator claims regardless of the round table (it stays bound by the store's
            // rules: live leases, actionability).
            store.transaction(() => {
              store.needs.require(need_id);
              assertRunnable(store, identity.name);
              return store.claims.claim(need_id, { identity: identity.name, leaseMs: deps.leaseMs });
            });
      const token = deps.issueAgentToken?.(claim.task.id);
      return ok(
        `claimed ${need_id}: task ${claim.task.id}, fencing token ${claim.fence.token}, lease until ${new Date(claim.leaseUntil).toISOString()}`,
        {
          taskId: claim.task.id,
          fencingToken: claim.fence.token,
          leaseUntil: claim.leaseUntil,
          takeover: claim.takeover,
          ...(token && { agentToken: token.token, agentTokenExpiresAt: token.expiresAt }),
        },
      );
    },
  });

  defineTool(server, session, {
    name: 'heartbeat',
    description: 'Report progress (cumulative turns, tokens, tool calls). Only progress renews your lease.',
    input: () => ({
      turns: z.number().int().min(0),
      tokens: z.number().int().min(0),
      tool_calls: z.number().int().min(0),
      ...operatorTask,
    }),
    run: (args) => {
      const task = session.requireTask(args);
      const r = store.claims.heartbeat(
        task.fence,
        { turns: args.turns, tokens: args.tokens, toolCalls: args.tool_calls },
        deps.leaseMs,
      );
      return ok(
        r.renewed
          ? `lease renewed until ${new Date(r.leaseUntil!).toISOString()}`
          : 'no progress since the last heartbeat: lease not renewed',
        { renewed: r.renewed, leaseUntil: r.leaseUntil },
      );
    },
  });

  defineTool(server, session, {
    name: 'finish',
    description:
      'End your task. resolved: need met. progressed: need stays open. blocked: give sub_needs it waits for. failed: give reason.',
    input: () => ({
      outcome: z.enum(TASK_OUTCOMES),
      summary: z.string().describe('what you did and what a successor must know'),
      reason: z.string().optional().describe('why, when failed'),
      sub_needs: z
        .array(
          z.object({
            title: z.string(),
            body: z.string().optional(),
            tags: z.array(z.string()).optional(),
            priority: z.number().int().optional(),
            acceptance: z.string().optional(),
          }),
        )
        .optional()
        .describe('when blocked'),
      ...operatorTask,
    }),
    run: (args, meta) => {
      const task = session.requireTask(args);
      const transcript = typeof meta[TRANSCRIPT_META] === 'string' ? (meta[TRANSCRIPT_META] as string) : null;
      const progress = progressOf(meta);
      const settlement = settlementOf(meta);
      const outage = causeOf(meta, args.outcome);
      const finishTask = () => {
        switch (args.outcome) {
          case 'resolved':
          case 'progressed':
            return store.claims.finish(task.fence, { outcome: args.outcome, summary: args.summary });
          case 'blocked': {
            const parent = store.needs.require(task.needId);
            const subNeeds = (args.sub_needs ?? []).map((s) => ({
              ...s,
              tags: s.tags ?? [...parent.tags],
              scope: parent.scope,
            }));
            return store.claims.finish(task.fence, { outcome: 'blocked', summary: args.summary, subNeeds });
          }
          case 'failed':
            if (!args.reason) throw new GuardRefusal('finish failed needs a reason: say what went wrong');
            return store.claims.finish(task.fence, {
              outcome: 'failed',
              summary: args.summary,
              reason: args.reason,
              ...(outage && { cause: outage.cause }),
            });
        }
      };
      const result = store.transaction(() => {
        if (settlement) settleReservation(session, task.id, settlement);
        if (progress) store.claims.heartbeat(task.fence, progress, deps.leaseMs);
        if (transcript !== null) storeTranscript(session, task, transcript);
        const finished = finishTask();
        // Its model was out: the identity waits (a back-off), not the need (no attempt counted).
        // A task that ended well shows the model answers again: the identity's holds are over.
        const identity = finished.task.identity;
        if (outage?.cause === 'model_unavailable' && deps.retryDelayMs > 0) {
          const asked = Math.min(outage.retryAfterMs, MAX_RETRY_DELAY_MS);
          store.identities.hold(
            identity,
            args.reason ?? 'its model was unavailable',
            (holds) => Math.max(holdBackoff(holds, deps.retryDelayMs), asked),
            MAX_RETRY_DELAY_MS,
          );
        } else if (args.outcome !== 'failed') store.identities.releaseHold(identity, 'recovered');
        return finished;
      });
      return ok(
        `task ${result.task.id} ${result.task.status} (${args.outcome}); need ${result.need.id} is ${result.need.status}` +
          (result.subNeeds.length ? `; created ${result.subNeeds.map((n) => n.id).join(', ')}` : ''),
        {
          taskId: result.task.id,
          taskStatus: result.task.status,
          needStatus: result.need.status,
          subNeeds: result.subNeeds.map((n) => n.id),
        },
      );
    },
  });

  defineTool(server, session, {
    name: 'reserve_budget',
    description:
      'Reserve the worst-case tokens of one model call before making it. Refused if a budget would overflow.',
    input: () => ({ tokens: z.number().int().min(1), ...operatorTask }),
    run: (args) => {
      const task = session.requireTask(args);
      const identity = session.identityForTask(task.id);
      const reservation = session.write(() => {
        store.leases.assertFence(task.needId, task.fence);
        return store.budgets.reserve(
          task.id,
          args.tokens,
          { task: identity.budgets.perTask, day: identity.budgets.perDay, run: null },
          deps.runId,
        );
      });
      return ok(`reserved ${args.tokens} tokens (reservation ${reservation.id})`, {
        reservationId: reservation.id,
        tokens: reservation.tokens,
      });
    },
  });

  defineTool(server, session, {
    name: 'settle_budget',
    description: 'Settle a reservation with the actual usage of the call.',
    input: () => ({
      reservation_id: z.number().int(),
      input_tokens: z.number().int().min(0),
      output_tokens: z.number().int().min(0),
      cache_read_tokens: z.number().int().min(0).optional(),
      cache_write_tokens: z.number().int().min(0).optional(),
      cost_usd: z.number().min(0).optional(),
      ...operatorTask,
    }),
    run: (args) => {
      settleReservation(session, session.requireTask(args).id, args);
      return ok(`settled reservation ${args.reservation_id}`, { reservationId: args.reservation_id });
    },
  });
}
