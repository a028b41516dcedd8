import type { ContentPart } from '../provider.js';

type ToolCall = Extract<ContentPart, { type: 'tool_call' }>;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short description of a value for an error the model will read. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}`;
  return typeof value;
}

/**
 * A tool call from arguments already decoded by the API (Anthropic): an object is the input;
 * anything else is kept as `input` and flagged with `inputError`.
 */
export function toolCallFromValue(id: string, name: string, input: unknown): ToolCall {
  if (isObject(input)) return { type: 'tool_call', id, name, input };
  return {
    type: 'tool_call',
    id,
    name,
    input,
    inputError: `the arguments must be a JSON object, got ${describeValue(input)}`,
  };
}

/**
 * A tool call from a JSON arguments string (OpenAI). Invalid JSON is not a failure of the call:
 * the raw text stays in `input` and `inputError` says what is wrong, so the loop can hand the
 * error back to the model. An empty string means no arguments (`{}`), as several local servers send.
 */
export function toolCallFromJson(id: string, name: string, args: string): ToolCall {
  if (args.trim() === '') return { type: 'tool_call', id, name, input: {} };
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      type: 'tool_call',
      id,
      name,
      input: args,
      inputError: `the arguments are not valid JSON (${why})`,
    };
  }
  return toolCallFromValue(id, name, value);
}
