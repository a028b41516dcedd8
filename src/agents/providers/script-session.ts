import type { ContentPart, LlmRequest } from '../provider.js';
import type { Script, ScriptRule } from './script-schema.js';
import { evaluateWhen, type TemplateScope } from './script-template.js';

/**
 * How the scripted provider knows where a session is without keeping state: it replays the
 * conversation. Every assistant turn it produced for a step carries a tool-call id starting with
 * STEP_CALL_PREFIX; turns it produced off the script (an injected malformed call, a finish after a
 * broken reference) start with OFF_SCRIPT_PREFIX and do not advance the script.
 */
export const STEP_CALL_PREFIX = 'toolu_script_';
export const OFF_SCRIPT_PREFIX = 'toolu_offscript_';

type Context = NonNullable<LlmRequest['context']>;

/** The first rule whose match fits the session (identity, any of the tags, title regex). */
export function pickRule(script: Script, context: LlmRequest['context']): ScriptRule | undefined {
  return script.rules.find((rule) => {
    const m = rule.match;
    if (m.identity !== undefined) {
      const names = typeof m.identity === 'string' ? [m.identity] : m.identity;
      if (!context || !names.includes(context.identity)) return false;
    }
    if (m.tags !== undefined) {
      const tags = context?.needTags ?? [];
      if (!m.tags.some((t) => tags.includes(t))) return false;
    }
    if (m.title !== undefined) {
      if (context?.needTitle === undefined || !new RegExp(m.title).test(context.needTitle)) return false;
    }
    return true;
  });
}

export function scopeOf(context: Context | undefined): TemplateScope {
  return {
    identity: context?.identity,
    need: { id: context?.needId, title: context?.needTitle, tags: context?.needTags },
    task: { id: context?.taskId },
    steps: {},
  };
}

function isOffScript(content: readonly ContentPart[]): boolean {
  return content.some((p) => p.type === 'tool_call' && p.id.startsWith(OFF_SCRIPT_PREFIX));
}

/** The first step at or after `from` whose `when` holds in `scope`. */
function nextStepFrom(rule: ScriptRule, from: number, scope: TemplateScope): number | undefined {
  for (let i = from; i < rule.steps.length; i++) {
    const when = rule.steps[i]!.when;
    if (!when || evaluateWhen(when, scope)) return i;
  }
  return undefined;
}

function resultOf(
  results: ReadonlyMap<string, { content: string; isError: boolean }>,
  callId: string | undefined,
  label: string,
  tool: string,
): { value: unknown; problem?: string } {
  const result = callId ? results.get(callId) : undefined;
  if (!result)
    return { value: undefined, problem: `step "${label}" (${tool}) has no result in the conversation` };
  if (result.isError) {
    return { value: undefined, problem: `step "${label}" (${tool}) failed: ${result.content.slice(0, 300)}` };
  }
  try {
    return { value: JSON.parse(result.content) };
  } catch {
    return {
      value: undefined,
      problem: `the result of step "${label}" (${tool}) is not JSON: ${result.content.slice(0, 120)}`,
    };
  }
}

export interface ScriptPosition {
  /** The index of the step to play next in the rule, or undefined when the script is used up. */
  step: number | undefined;
  /** Assistant turns so far (on and off the script): numbers the next tool-call id. */
  turn: number;
  /** The context and the labelled results of the steps played so far. */
  scope: TemplateScope;
}

/**
 * Replays the conversation against a rule: the k-th on-script assistant turn played the k-th
 * step whose `when` held at that point. Labelled steps' results are read back from the
 * tool_result parts (JSON text) that answer their calls.
 */
export function positionIn(rule: ScriptRule, request: LlmRequest): ScriptPosition {
  const scope = scopeOf(request.context);
  const results = new Map<string, { content: string; isError: boolean }>();
  for (const message of request.messages) {
    for (const part of message.content) {
      if (part.type === 'tool_result')
        results.set(part.toolCallId, { content: part.content, isError: part.isError });
    }
  }
  const assistantTurns = request.messages.filter((m) => m.role === 'assistant');
  let next = nextStepFrom(rule, 0, scope);
  for (const turn of assistantTurns) {
    if (next === undefined) break;
    if (isOffScript(turn.content)) continue;
    const step = rule.steps[next]!;
    if (step.as !== undefined) {
      const call = turn.content.find((p) => p.type === 'tool_call');
      scope.steps[step.as] = resultOf(
        results,
        call?.type === 'tool_call' ? call.id : undefined,
        step.as,
        step.tool ?? '?',
      );
    }
    next = nextStepFrom(rule, next + 1, scope);
  }
  return { step: next, turn: assistantTurns.length, scope };
}
