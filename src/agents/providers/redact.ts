/** Environment variables whose values are secrets, whatever their length. */
export const SECRET_ENV_VARS = ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'OPENAI_API_KEY'] as const;

/** Other variables treated as secrets by name. */
const SECRET_NAME = /(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY)/i;

/** Values shorter than this are not redacted by name alone: replacing "1" everywhere helps nobody. */
const MIN_SECRET_LENGTH = 6;

/** Key shapes redacted even when the value is not in the environment (a key pasted into an error body). */
const KEY_PATTERNS: readonly RegExp[] = [
  /\bsk-ant-[A-Za-z0-9_-]{8,}/g,
  /\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{16,}/g,
  /(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
];

/** Replaces every occurrence of each secret in `text` with `[redacted NAME]`, longest first. */
export function redactValues(text: string, secrets: ReadonlyArray<{ name: string; value: string }>): string {
  let out = text;
  const sorted = [...secrets]
    .filter((s) => s.value.length > 0)
    .sort((a, b) => b.value.length - a.value.length);
  for (const { name, value } of sorted) out = out.split(value).join(`[redacted ${name}]`);
  return out;
}

/** Redacts known key shapes (Anthropic and OpenAI keys, bearer tokens) regardless of where they came from. */
export function redactKeyPatterns(text: string): string {
  let out = text;
  for (const pattern of KEY_PATTERNS) {
    out = out.replace(pattern, (match, prefix: unknown) =>
      typeof prefix === 'string' && match.startsWith(prefix) ? `${prefix}[redacted]` : '[redacted]',
    );
  }
  return out;
}

/** The secrets in an environment: the provider keys, plus any variable named like a key, token or password. */
export function secretsOf(
  env: Readonly<Record<string, string | undefined>>,
): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!value) continue;
    const known = (SECRET_ENV_VARS as readonly string[]).includes(name);
    if (known || (SECRET_NAME.test(name) && value.length >= MIN_SECRET_LENGTH)) out.push({ name, value });
  }
  return out;
}

/**
 * Strips secret values from `text` before it is logged or shown: the values of the provider key
 * variables (and of any variable named like a key, token, secret or password) in `env`, then
 * anything shaped like an API key or a bearer token. Every logger that may print provider errors
 * or requests passes its text through this.
 */
export function redact(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return redactKeyPatterns(redactValues(text, secretsOf(env)));
}
