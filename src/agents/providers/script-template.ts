/**
 * `${…}` references in script steps: `${need.id}`, `${need.title}`, `${need.tags}`, `${task.id}`,
 * `${identity}`, and `${steps.<label>.<path>}` — a value from the JSON result of an earlier step
 * labelled with `as: <label>`. A string that is exactly one reference takes the referenced value
 * with its type (a list stays a list); a reference inside a longer string is spliced in as text.
 */

export interface TemplateScope {
  identity: string | undefined;
  need: { id: string | undefined; title: string | undefined; tags: readonly string[] | undefined };
  task: { id: string | undefined };
  /** Parsed results of labelled steps; a label maps to undefined when its result was an error or not JSON. */
  steps: Record<string, { value: unknown; problem?: string }>;
}

/** A reference that cannot be resolved at run time (a failed or missing earlier result). */
export class ScriptReferenceError extends Error {}

const PLACEHOLDER = /\$\{([^}]*)\}/g;
const WHOLE = /^\$\{([^}]*)\}$/;
const CONTEXT_FIELDS: Record<string, readonly string[]> = { need: ['id', 'title', 'tags'], task: ['id'] };

function segments(path: string): string[] {
  return path
    .trim()
    .replace(/^\$\{(.*)\}$/, '$1')
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter((s) => s.length > 0);
}

/** Every reference in a value (strings nested in lists and mappings), with where it sits. */
export function referencesIn(value: unknown, where: string): Array<{ ref: string; where: string }> {
  if (typeof value === 'string')
    return [...value.matchAll(PLACEHOLDER)].map((m) => ({ ref: m[1]!.trim(), where }));
  if (Array.isArray(value)) return value.flatMap((v, i) => referencesIn(v, `${where}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => referencesIn(v, `${where}.${k}`));
  }
  return [];
}

/** Why a reference is invalid given the labels defined so far, or undefined when it is fine. */
export function validateReference(ref: string, labels: readonly string[]): string | undefined {
  const [root, second, ...rest] = segments(ref);
  if (root === 'identity')
    return second === undefined ? undefined : 'must be just identity, with no path after it';
  if (root === 'need' || root === 'task') {
    const fields = CONTEXT_FIELDS[root]!;
    if (second === undefined || !fields.includes(second) || rest.length > (second === 'tags' ? 1 : 0)) {
      return `must name one of ${fields.map((f) => `${root}.${f}`).join(', ')}`;
    }
    return undefined;
  }
  if (root === 'steps') {
    if (second === undefined) return 'must name a step label: steps.<label>.<path>';
    if (!labels.includes(second)) {
      return `refers to "${second}", which no earlier step defines with as: (labels so far: ${labels.join(', ') || 'none'})`;
    }
    return undefined;
  }
  return 'must start with need., task., identity or steps.';
}

function walk(value: unknown, path: readonly string[]): { found: boolean; value: unknown } {
  let current: unknown = value;
  for (const key of path) {
    if (current === null || current === undefined) return { found: false, value: undefined };
    if (typeof current === 'string' && key === 'length') {
      current = current.length;
      continue;
    }
    if (typeof current !== 'object' || !Object.hasOwn(current, key))
      return { found: false, value: undefined };
    current = (current as Record<string, unknown>)[key];
  }
  return { found: true, value: current };
}

/** The value a reference names; throws ScriptReferenceError when it cannot be resolved. */
export function lookup(ref: string, scope: TemplateScope): unknown {
  const [root, second, ...rest] = segments(ref);
  if (root === 'identity') return required(scope.identity, ref, 'the session has no identity');
  if (root === 'need' || root === 'task') {
    const context = root === 'need' ? scope.need : scope.task;
    const value = (context as Record<string, unknown>)[second ?? ''];
    const found = walk(value, rest);
    return required(found.found ? found.value : undefined, ref, `the session has no ${root} context`);
  }
  const step = scope.steps[second ?? ''];
  if (!step) throw new ScriptReferenceError(`\${${ref}}: step "${second}" has not run yet`);
  if (step.problem) throw new ScriptReferenceError(`\${${ref}}: ${step.problem}`);
  let found = walk(step.value, rest);
  // A result serialised as a whole MCP CallToolResult keeps its data under structuredContent.
  if (
    !found.found &&
    typeof step.value === 'object' &&
    step.value !== null &&
    'structuredContent' in step.value
  ) {
    found = walk((step.value as { structuredContent: unknown }).structuredContent, rest);
  }
  if (!found.found)
    throw new ScriptReferenceError(`\${${ref}}: the result of step "${second}" has no ${rest.join('.')}`);
  return found.value;
}

function required(value: unknown, ref: string, why: string): unknown {
  if (value === undefined) throw new ScriptReferenceError(`\${${ref}}: ${why}`);
  return value;
}

/** Resolves every reference in a value (deeply). */
export function resolveTemplate(value: unknown, scope: TemplateScope): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole) return lookup(whole[1]!, scope);
    return value.replace(PLACEHOLDER, (_, ref: string) => {
      const v = lookup(ref, scope);
      return typeof v === 'string' ? v : JSON.stringify(v);
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveTemplate(v, scope));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveTemplate(v, scope)]));
  }
  return value;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Whether a step's `when` holds. A reference that cannot be resolved counts as absent. */
export function evaluateWhen(
  when: { path: string; equals?: unknown; not_equals?: unknown; exists?: boolean },
  scope: TemplateScope,
): boolean {
  let value: unknown;
  let present = true;
  try {
    value = lookup(when.path, scope);
  } catch (error) {
    if (!(error instanceof ScriptReferenceError)) throw error;
    present = false;
  }
  if (when.exists !== undefined) return present === when.exists;
  if (when.equals !== undefined) return present && sameValue(value, when.equals);
  return !present || !sameValue(value, when.not_equals);
}
