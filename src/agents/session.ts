import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { tokenCounterFor } from '../kernel/tokens.js';
import { BudgetExceededError, systemClock, type TaskOutcome } from '../store/index.js';
import { Conversation } from './conversation.js';
import type { LlmResponse, LlmUsage } from './provider.js';
import { LlmCallError } from './provider-error.js';
import { realSleep, withRetries } from './retry.js';
import {
  BOOT_META,
  CAUSE_META,
  callsFinish,
  everyMs,
  isObject,
  modelTools,
  OUTAGE_KINDS,
  PROGRESS_META,
  RETRY_AFTER_META,
  resultText,
  SETTLE_META,
  type Settlement,
  Stop,
  settlementFor,
  TRANSCRIPT_META,
  totalTokens,
} from './session-support.js';
import {
  type AgentSessionOptions,
  DEFAULT_LIMITS,
  type SessionEvent,
  type SessionResult,
} from './session-types.js';
import { Transcript } from './transcript.js';

export * from './session-types.js';

/**
 * Runs one agent session on a task through the guard: boot, then call the model with the guard's
 * tools, run each tool call through the MCP client, and repeat until `finish` or a limit. Before
 * every call attempt the worst case is reserved with `reserve_budget` and afterwards settled with
 * the actual usage, so a budget is never exceeded even by one call. Progress heartbeats renew the
 * lease; once the lease is lost the session stops at once and writes nothing more. The turn that
 * calls `finish` sends its settlement and progress with the finish, so ending is one commit. The
 * loop never touches the database: it works the same when the guard is remote.
 */
export async function runAgentSession(options: AgentSessionOptions): Promise<SessionResult> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const clock = options.clock ?? systemClock;
  const sleep = options.sleep ?? realSleep;
  const { client, provider, task } = options;
  const counter = tokenCounterFor(task.identity.model);
  const emit = (event: SessionEvent) => options.onEvent?.(event);
  const started = clock.now();
  const usage: LlmUsage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
  let costUsd = 0;
  let turns = 0;
  let toolCalls = 0;
  let leaseLost: string | null = null;
  /** When the lease ends without further progress: from the claim, moved on by renewals. */
  let leaseUntil = task.leaseUntil;
  /** The settlement of the call whose turn calls finish: sent with the finish (one commit). */
  let unsettled = null as Settlement | null;
  const transcript = new Transcript(task.id);
  /**
   * Aborts the model call in flight (and any retry wait) when the caller cancels the session or
   * the guard says the lease is lost (the task was cancelled, taken over or expired): no tokens
   * are spent on work that can no longer be committed.
   */
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;

  const callTool = async (name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) => {
    const result = (await client.callTool({
      name,
      arguments: args,
      ...(meta && { _meta: meta }),
    })) as CallToolResult;
    const text = resultText(result);
    if (result.isError && /lease lost/.test(text)) {
      leaseLost = text;
      stop.abort();
    }
    return { result, text };
  };
  const heartbeat = async () => {
    if (leaseLost) return;
    const beat = await callTool('heartbeat', {
      turns,
      tokens: totalTokens(usage),
      tool_calls: toolCalls,
    }).catch(() => undefined);
    const renewed = beat?.result.structuredContent as { renewed?: boolean; leaseUntil?: unknown } | undefined;
    // Tracked only when the claim's lease end was given: without it, retries wait as they always did.
    if (leaseUntil !== undefined && renewed?.renewed && typeof renewed.leaseUntil === 'number') {
      leaseUntil = Math.max(leaseUntil, renewed.leaseUntil);
    }
  };
  const end = (result: SessionResult) => {
    emit({ kind: 'end', result });
    return result;
  };
  const summary = (outcome: SessionResult['outcome'], reason: string | null): SessionResult => ({
    outcome,
    reason,
    turns,
    toolCalls,
    usage: { ...usage },
    costUsd,
  });

  const prompt = await client.getPrompt({
    name: 'boot',
    arguments: { identity: task.identity.name, need: task.needId, budget: String(limits.bootBudget) },
  });
  const boot = prompt._meta?.[BOOT_META] as
    | {
        system: { text: string; cacheBreakpoint: boolean }[];
        first: string;
        tokens: number;
        sections: { section: string; tokens: number }[];
      }
    | undefined;
  if (!boot) throw new Error('the guard returned a boot prompt without its structured payload');
  emit({ kind: 'boot', tokens: boot.tokens, sections: boot.sections });
  const tools = await modelTools(client, task.identity.hash, options.toolCache);
  const sectionTokens = (names: readonly string[]) =>
    boot.sections.filter((s) => names.includes(s.section)).reduce((sum, s) => sum + s.tokens, 0);
  const conversation = new Conversation(boot.system, tools, boot.first, counter, {
    systemTokens: sectionTokens(['l1-identity', 'l2-awareness']),
    firstTokens: sectionTokens(['l3-pack', 'task']),
  });
  transcript.boot(
    boot.system.map((b) => b.text),
    boot.first,
    tools.map((t) => t.name),
  );

  const finishWith = async (
    outcome: 'failed',
    reason: string,
    outage?: { readonly retryAfterMs: number | undefined },
  ): Promise<SessionResult> => {
    if (leaseLost) return summary('lease_lost', leaseLost);
    transcript.note(`session ends: ${reason}`);
    const { result, text } = await callTool(
      'finish',
      { outcome, summary: `the session stopped: ${reason}`, reason },
      {
        [TRANSCRIPT_META]: transcript.text(),
        ...(outage && { [CAUSE_META]: 'model_unavailable' }),
        ...(outage?.retryAfterMs !== undefined && { [RETRY_AFTER_META]: outage.retryAfterMs }),
      },
    );
    if (leaseLost) return summary('lease_lost', leaseLost);
    return summary(outcome, result.isError ? `${reason} (finish refused: ${text})` : reason);
  };

  const stopHeartbeats = everyMs(options.heartbeatMs ?? 5000, () => void heartbeat(), options.timers);
  try {
    let malformed = 0;
    let nudges = 0;
    for (;;) {
      if (options.signal?.aborted) return end(summary('aborted', 'the session was cancelled'));
      if (leaseLost) return end(summary('lease_lost', leaseLost));
      if (turns >= limits.maxTurns)
        return end(await finishWith('failed', `reached the limit of ${limits.maxTurns} turns`));
      if (clock.now() - started > limits.deadlineMs) {
        return end(await finishWith('failed', `passed the session deadline of ${limits.deadlineMs} ms`));
      }
      if (conversation.promptTokens() > limits.contextWindow * 0.8) {
        const dropped = conversation.compact(Math.floor(limits.contextWindow * 0.6));
        if (dropped) transcript.note(`compacted ${dropped} older tool results to fit the context window`);
      }

      let response: LlmResponse;
      try {
        response = await callModel();
      } catch (error) {
        if (error instanceof Stop) {
          if (error.outcome === 'lease_lost') return end(summary('lease_lost', error.reason));
          return end(await finishWith('failed', error.reason));
        }
        if (options.signal?.aborted)
          return end(summary('aborted', 'the session was cancelled during a model call'));
        if (leaseLost) return end(summary('lease_lost', leaseLost));
        if (error instanceof BudgetExceededError) return end(await finishWith('failed', error.message));
        const message = error instanceof Error ? error.message : String(error);
        // Out of retries on an outage (not the work's fault): the need keeps its attempts and
        // the guard holds the identity for a while instead.
        const outage = error instanceof LlmCallError && error.retryable && OUTAGE_KINDS.has(error.kind);
        return end(
          await finishWith(
            'failed',
            `the model call failed: ${message}`,
            outage ? { retryAfterMs: error.retryAfterMs } : undefined,
          ),
        );
      }
      turns++;
      usage.inputTokens += response.usage.inputTokens;
      usage.outputTokens += response.usage.outputTokens;
      usage.cacheReadTokens += response.usage.cacheReadTokens;
      usage.cacheWriteTokens += response.usage.cacheWriteTokens;
      costUsd += response.costUsd;
      conversation.messages.push({ role: 'assistant', content: response.content });
      transcript.assistant(turns, response);
      const calls = response.content.filter((p) => p.type === 'tool_call');
      emit({
        kind: 'turn',
        turn: turns,
        usage: response.usage,
        costUsd: response.costUsd,
        text: response.content
          .map((p) => (p.type === 'text' ? p.text : ''))
          .join(' ')
          .trim(),
        calls: calls.map((c) => c.name),
      });
      // A turn that only calls finish sends its progress with it (one commit on the guard); the
      // heartbeat follows only if the finish is refused and the session goes on. A turn with
      // other calls first reports progress now, so they run under a renewed lease.
      const finishing = calls.length === 1 && callsFinish(response);
      if (!finishing) await heartbeat();

      if (calls.length === 0) {
        if (++nudges > limits.maxNudges) {
          return end(await finishWith('failed', 'the model stopped without calling finish'));
        }
        const nudge =
          'End the task with the finish tool (resolved, progressed, blocked or failed), or call another tool.';
        conversation.messages.push({ role: 'user', content: [{ type: 'text', text: nudge }] });
        transcript.note(nudge);
        continue;
      }

      const results: { type: 'tool_result'; toolCallId: string; content: string; isError: boolean }[] = [];
      for (const call of calls) {
        if (leaseLost) break;
        toolCalls++;
        if (call.inputError || !isObject(call.input) || !tools.some((t) => t.name === call.name)) {
          malformed++;
          const why = call.inputError
            ? `your arguments for ${call.name} were not valid: ${call.inputError}; send a JSON object`
            : !tools.some((t) => t.name === call.name)
              ? `there is no tool ${call.name}; use one of ${tools.map((t) => t.name).join(', ')}`
              : `the arguments of ${call.name} must be a JSON object`;
          results.push({ type: 'tool_result', toolCallId: call.id, content: why, isError: true });
          transcript.tool(call.name, call.input, why, true);
          emit({ kind: 'tool', turn: turns, name: call.name, isError: true, text: why });
          continue;
        }
        malformed = 0;
        const isFinish = call.name === 'finish';
        if (isFinish) transcript.tool(call.name, call.input, '(finishing)', false);
        const { result, text } = await callTool(
          call.name,
          call.input,
          isFinish
            ? {
                [TRANSCRIPT_META]: transcript.text(),
                [PROGRESS_META]: { turns, tokens: totalTokens(usage), tool_calls: toolCalls },
                ...(unsettled && { [SETTLE_META]: unsettled }),
              }
            : undefined,
        );
        // A finish that went through settled the call in its commit; a refused one did not.
        if (isFinish && !result.isError) unsettled = null;
        const content =
          result.isError || !result.structuredContent ? text : JSON.stringify(result.structuredContent);
        emit({ kind: 'tool', turn: turns, name: call.name, isError: Boolean(result.isError), text });
        if (!isFinish) transcript.tool(call.name, call.input, content, Boolean(result.isError));
        if (isFinish && !result.isError) {
          const outcome = (call.input as { outcome: TaskOutcome }).outcome;
          const reason = (call.input as { reason?: string; summary?: string }).reason ?? null;
          return end(summary(outcome, reason));
        }
        results.push({ type: 'tool_result', toolCallId: call.id, content, isError: Boolean(result.isError) });
      }
      await settleUnsettled();
      if (leaseLost) return end(summary('lease_lost', leaseLost));
      if (finishing) await heartbeat();
      conversation.messages.push({ role: 'user', content: results });
      if (malformed >= limits.maxMalformedInARow) {
        return end(await finishWith('failed', `${malformed} malformed tool calls in a row`));
      }
    }
  } finally {
    stopHeartbeats();
    await settleUnsettled();
  }

  async function settleUnsettled(): Promise<void> {
    const pending = unsettled;
    unsettled = null;
    if (pending) await settle(pending);
  }

  /**
   * Settles a reservation with what the call used. A failure to settle (a transport hiccup) must
   * not turn a successful call into a failed one: it is retried once and then reported.
   */
  async function settle(args: Settlement): Promise<void> {
    const reservationId = args.reservation_id;
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        const { result, text } = await callTool('settle_budget', args);
        if (!result.isError || leaseLost) return;
        transcript.note(`settling reservation ${reservationId} was refused: ${text}`);
        return;
      } catch (error) {
        if (attempt === 2) transcript.note(`settling reservation ${reservationId} failed: ${String(error)}`);
      }
    }
  }

  /** One model call with retries; every attempt is reserved first and settled after. */
  async function callModel(): Promise<LlmResponse> {
    return withRetries(
      async () => {
        const promptTokens = conversation.promptTokens();
        const worstCase = promptTokens + limits.maxOutputTokens;
        const reserved = await callTool('reserve_budget', { tokens: worstCase });
        if (leaseLost) throw new Stop('lease_lost', leaseLost);
        if (reserved.result.isError) throw new BudgetExceededError(reserved.text);
        const reservationId = (reserved.result.structuredContent as { reservationId: number }).reservationId;
        let response: LlmResponse | undefined;
        try {
          response = await provider.complete({
            model: options.model,
            system: [...conversation.system],
            messages: conversation.messages,
            tools: [...conversation.tools],
            maxOutputTokens: limits.maxOutputTokens,
            timeoutMs: limits.callTimeoutMs,
            promptTokens,
            signal,
            context: {
              identity: task.identity.name,
              needId: task.needId,
              taskId: task.id,
              ...(task.needTitle !== undefined && { needTitle: task.needTitle }),
              ...(task.needTags !== undefined && { needTags: task.needTags }),
            },
          });
          return response;
        } finally {
          const settlement = settlementFor(reservationId, response);
          // The settlement of a turn that calls finish goes with the finish (see the loop).
          if (response && callsFinish(response)) unsettled = settlement;
          else await settle(settlement);
        }
      },
      {
        maxAttempts: limits.maxAttempts,
        baseDelayMs: 500,
        maxDelayMs: 20_000,
        sleep,
        jitterKey: task.id,
        signal,
        // Waiting renews nothing. A wait is taken only if the lease left after it is at least as
        // long as the wait (or a whole call timeout, if shorter) for the attempt. Otherwise the
        // session ends now (after an outage, the identity is held and it costs a quarter of an
        // attempt) rather than losing its lease mid-attempt (a whole attempt).
        canWait: (delayMs) => {
          const left =
            leaseUntil === undefined ? Number.POSITIVE_INFINITY : leaseUntil - clock.now() - delayMs;
          if (left >= Math.min(delayMs, limits.callTimeoutMs)) return true;
          transcript.note(
            `not retrying in ${delayMs} ms: only ${Math.max(0, Math.round(left))} ms of the lease would be left for the attempt`,
          );
          return false;
        },
        onRetry: (info) => {
          transcript.note(
            `attempt ${info.attempt} failed (${info.error.message}); retrying in ${info.delayMs} ms`,
          );
          emit({ kind: 'retry', attempt: info.attempt, delayMs: info.delayMs, reason: info.error.message });
        },
      },
    );
  }
}
