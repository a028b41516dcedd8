import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../../store/errors.js';
import { createSeededPrng } from '../../store/random.js';
import type { ContentPart, LlmProvider, LlmRequest, LlmResponse } from '../provider.js';
import { LlmCallError, transportCallError } from '../provider-error.js';
import { realSleep, type Sleep } from '../retry.js';
import { BUILTIN_SCRIPTS } from './builtin-scripts.js';
import { estimateUsage } from './estimate-usage.js';
import {
  parseScript,
  SCRIPT_FAILURES,
  type Script,
  type ScriptFailure,
  type ScriptInput,
  type ScriptStep,
} from './script-schema.js';
import { OFF_SCRIPT_PREFIX, pickRule, positionIn, STEP_CALL_PREFIX } from './script-session.js';
import { resolveTemplate, ScriptReferenceError, type TemplateScope } from './script-template.js';

/** A reply computed in code: the whole behaviour of a function script. */
export interface ScriptReply {
  content: ContentPart[];
  /** Default: tool_use when the content has a tool call, else end_turn. */
  stopReason?: LlmResponse['stopReason'];
}

/** A script as a function of the request and the number of assistant turns so far. */
export type ScriptFunction = (request: LlmRequest, turn: number) => ScriptReply | Promise<ScriptReply>;

export interface ScriptedProviderOptions {
  /** A script object (validated here; `loadScript` gives one from a name or a file) or a function. */
  script: ScriptInput | ScriptFunction;
  /** Names an in-code script in validation errors. Default "in-code script". */
  source?: string;
  /** Waits for latency and simulated timeouts; inject virtual time here. */
  sleep?: Sleep;
  /** Overrides the script's `failures.seed` (a simulator run's seed). */
  seed?: number;
  /** Latency of a function script, in ms (a file script has its own `latency_ms`). */
  latencyMs?: number;
  /**
   * The key of a task's seeded failure draws (default: the task id). The simulator keys them by
   * need and session rank, so that two schedulers creating different task ids meet the same faults.
   */
  failureKey?: (taskId: string) => string;
}

/** Sessions whose attempt counters are kept; the oldest are forgotten past this. */
const MAX_SESSIONS = 10_000;

/**
 * A deterministic model that plays a script: the first rule matching the session's identity and
 * need gives a list of steps, played one per assistant turn (the position is derived from the
 * conversation, see script-session.ts). Latency and failures are injected per step (`fail`) or at
 * seeded rates; the random draw for an attempt depends only on (seed, task, step, attempt), so
 * the same seed gives the same run however sessions interleave. Usage is counted with the
 * kernel's tokenizer; the cost is 0.
 */
export class ScriptedProvider implements LlmProvider {
  readonly name = 'scripted' as const;
  readonly #script: Script | ScriptFunction;
  readonly #sleep: Sleep;
  readonly #seed: number;
  readonly #latencyMs: number;
  readonly #failureKey: (taskId: string) => string;
  /** Attempts per session and step: `${taskId}` → step → attempts made. */
  readonly #attempts = new Map<string, Map<number, number>>();

  constructor(options: ScriptedProviderOptions) {
    const script =
      typeof options.script === 'function'
        ? undefined
        : parseScript(options.script, options.source ?? 'in-code script');
    this.#script = script ?? (options.script as ScriptFunction);
    this.#sleep = options.sleep ?? realSleep;
    this.#seed = options.seed ?? script?.failures.seed ?? 0;
    this.#latencyMs = options.latencyMs ?? script?.latency_ms ?? 0;
    this.#failureKey = options.failureKey ?? ((taskId) => taskId);
  }

  async complete(request: LlmRequest): Promise<LlmResponse> {
    if (request.signal?.aborted) throw transportCallError('scripted', request.model, 'aborted', '');
    const script = this.#script;
    if (typeof script === 'function') {
      await this.#wait(this.#latencyMs, request);
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      const reply = await script(request, turn);
      return this.#respond(request, reply.content, reply.stopReason);
    }
    const rule = pickRule(script, request.context);
    if (!rule) {
      const c = request.context;
      throw new LlmCallError(
        `scripted ${request.model}: no rule matches identity ${c?.identity ?? '(none)'} on need ${c?.needId ?? '(none)'} (tags ${c?.needTags?.join(', ') || 'none'}); add a rule without match as the last one`,
        { kind: 'bad_request', provider: 'scripted' },
      );
    }
    const position = positionIn(rule, request);
    if (position.step === undefined) {
      await this.#wait(this.#latencyMs, request);
      const text = `(scripted ${request.model}: the script has no step left after ${position.turn} turns)`;
      return this.#respond(request, [{ type: 'text', text }]);
    }
    const stepIndex = position.step;
    const step = rule.steps[stepIndex]!;
    const sessionKey = request.context?.taskId ?? '';
    const attempt = this.#bump(sessionKey, stepIndex);
    const failure =
      step.fail[attempt] ?? this.#drawFailure(script, this.#failureKey(sessionKey), stepIndex, attempt);
    const latency = step.latency_ms ?? this.#latencyMs;
    if (failure === 'timeout' || latency >= request.timeoutMs) {
      await this.#wait(request.timeoutMs, request);
      throw transportCallError(
        'scripted',
        request.model,
        'timeout',
        `no answer within ${request.timeoutMs} ms (injected)`,
      );
    }
    await this.#wait(latency, request);
    if (failure === 'rate_limit') {
      throw new LlmCallError(
        `scripted ${request.model} answered 429: rate limited (injected); retry after the delay`,
        {
          kind: 'rate_limit',
          provider: 'scripted',
          status: 429,
          retryAfterMs: script.failures.retry_after_ms,
        },
      );
    }
    if (failure === 'server') {
      throw new LlmCallError(
        `scripted ${request.model} answered 500: server error (injected); retry with backoff`,
        {
          kind: 'server',
          provider: 'scripted',
          status: 500,
        },
      );
    }
    const offId = `${OFF_SCRIPT_PREFIX}${position.turn}_${attempt}`;
    if (failure === 'malformed') {
      const raw = '{"outcome": "resolved", "summary": ';
      return this.#respond(request, [
        {
          type: 'tool_call',
          id: offId,
          name: step.tool ?? 'finish',
          input: raw,
          inputError: 'the arguments are not valid JSON (injected)',
        },
      ]);
    }
    let content: ContentPart[];
    try {
      content = playStep(step, position.scope, `${STEP_CALL_PREFIX}${position.turn}_${stepIndex}`);
    } catch (error) {
      if (!(error instanceof ScriptReferenceError)) throw error;
      // A real model would react to the failed call; a script cannot, so it gives up with the reason.
      content = [
        {
          type: 'tool_call',
          id: offId,
          name: 'finish',
          input: {
            outcome: 'failed',
            summary: 'The scripted session could not go on.',
            reason: `script step ${stepIndex + 1}: ${error.message}`,
          },
        },
      ];
    }
    if (step.tool === 'finish') this.#attempts.delete(sessionKey);
    return this.#respond(request, content);
  }

  async #wait(ms: number, request: LlmRequest): Promise<void> {
    if (ms <= 0) return;
    try {
      await this.#sleep(ms, request.signal);
    } catch (error) {
      if (request.signal?.aborted) throw transportCallError('scripted', request.model, 'aborted', '');
      throw error;
    }
  }

  #respond(request: LlmRequest, content: ContentPart[], stopReason?: LlmResponse['stopReason']): LlmResponse {
    return {
      content,
      stopReason: stopReason ?? (content.some((p) => p.type === 'tool_call') ? 'tool_use' : 'end_turn'),
      usage: estimateUsage(request, content),
      costUsd: 0,
      model: request.model,
    };
  }

  #bump(sessionKey: string, step: number): number {
    let steps = this.#attempts.get(sessionKey);
    if (!steps) {
      steps = new Map();
      this.#attempts.set(sessionKey, steps);
      if (this.#attempts.size > MAX_SESSIONS) {
        const oldest = this.#attempts.keys().next();
        if (!oldest.done) this.#attempts.delete(oldest.value);
      }
    }
    const made = steps.get(step) ?? 0;
    steps.set(step, made + 1);
    return made;
  }

  #drawFailure(script: Script, sessionKey: string, step: number, attempt: number): ScriptFailure | undefined {
    const rates = script.failures.rates;
    if (rates.rate_limit + rates.server + rates.timeout + rates.malformed === 0) return undefined;
    const prng = createSeededPrng(hash32(`${this.#seed}|${sessionKey}|${step}|${attempt}`));
    let u = prng.nextUint32() / 0x1_0000_0000;
    for (const kind of SCRIPT_FAILURES) {
      if (u < rates[kind]) return kind;
      u -= rates[kind];
    }
    return undefined;
  }
}

/** The content of one step: its text and its tool call, references resolved. */
function playStep(step: ScriptStep, scope: TemplateScope, callId: string): ContentPart[] {
  const content: ContentPart[] = [];
  if (step.say !== undefined) content.push({ type: 'text', text: String(resolveTemplate(step.say, scope)) });
  if (step.tool !== undefined) {
    content.push({
      type: 'tool_call',
      id: callId,
      name: step.tool,
      input: resolveTemplate(step.args, scope),
    });
  }
  return content;
}

/** FNV-1a: a 32-bit seed from a string. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Names of the built-in scripts. */
export const BUILTIN_SCRIPT_NAMES = Object.keys(BUILTIN_SCRIPTS);

/**
 * A script by reference: a built-in name (`default`, `demo`, `noop`) or a path to a YAML or JSON
 * file (relative to `cwd`). Errors name the file and the field.
 */
export function loadScript(ref: string, options: { cwd?: string } = {}): Script {
  const builtin = BUILTIN_SCRIPTS[ref];
  if (builtin) return parseScript(builtin, `built-in script ${ref}`);
  if (!/[/\\]|\.(ya?ml|json)$/i.test(ref)) {
    throw new UserError(
      `unknown script "${ref}": use one of ${BUILTIN_SCRIPT_NAMES.join(', ')} or a path to a .yaml or .json file (e.g. scripted:./scripts/agents/mine.yaml)`,
      { code: 'invalid_script' },
    );
  }
  const path = resolvePath(options.cwd ?? process.cwd(), ref);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error);
    throw new UserError(`script ${ref}: cannot read ${path} (${why})`, {
      code: 'invalid_script',
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new UserError(
      `${ref}: not valid YAML or JSON: ${error instanceof Error ? error.message : String(error)}`,
      {
        code: 'invalid_script',
        cause: error,
      },
    );
  }
  return parseScript(value, ref);
}
