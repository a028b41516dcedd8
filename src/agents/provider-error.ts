import { ProviderError } from '../store/errors.js';

/** What went wrong with one model call, by who is at fault and whether waiting helps. */
export type LlmCallErrorKind =
  | 'rate_limit'
  | 'server'
  | 'timeout'
  | 'auth'
  | 'bad_request'
  | 'connection'
  | 'aborted';

/** Kinds worth another attempt: the same request may succeed later. */
const RETRYABLE: ReadonlySet<LlmCallErrorKind> = new Set(['rate_limit', 'server', 'timeout', 'connection']);

export interface LlmCallErrorOptions {
  kind: LlmCallErrorKind;
  provider: string;
  /** Overrides the default (rate_limit, server, timeout and connection are retryable). */
  retryable?: boolean;
  /** How long the server asked us to wait (from `retry-after-ms` or `retry-after`). */
  retryAfterMs?: number;
  status?: number;
  requestId?: string;
  cause?: unknown;
}

/**
 * One failed model call attempt. The message never contains an API key (adapters redact it) and
 * the cause is a plain summary, never a vendor SDK error (which could carry headers or bodies).
 */
export class LlmCallError extends ProviderError {
  readonly kind: LlmCallErrorKind;
  readonly provider: string;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;
  readonly requestId: string | undefined;

  constructor(message: string, options: LlmCallErrorOptions) {
    super(message, { retryable: options.retryable ?? RETRYABLE.has(options.kind), cause: options.cause });
    this.kind = options.kind;
    this.provider = options.provider;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
    this.requestId = options.requestId;
  }
}

/** A header reader that works for fetch `Headers` and plain records. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Record<string, string | undefined>
  | undefined
  | null;

function header(headers: HeaderSource, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  return (headers as Record<string, string | undefined>)[name];
}

/**
 * The delay a server asked for, in ms: `retry-after-ms` first, then `retry-after` as seconds or
 * an HTTP date (relative to `now`). Undefined when absent or unreadable.
 */
export function parseRetryAfter(headers: HeaderSource, now: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined) {
    const value = Number.parseFloat(ms);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const after = header(headers, 'retry-after');
  if (after === undefined) return undefined;
  const seconds = Number.parseFloat(after);
  if (Number.isFinite(seconds) && seconds >= 0 && /^\s*[\d.]+\s*$/.test(after))
    return Math.ceil(seconds * 1000);
  const date = Date.parse(after);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** The kind of an HTTP failure status. 408 and 409 are transient, like 5xx. */
export function kindOfStatus(status: number): LlmCallErrorKind {
  if (status === 429) return 'rate_limit';
  if (status === 401 || status === 403) return 'auth';
  if (status === 408) return 'timeout';
  if (status >= 500 || status === 409) return 'server';
  return 'bad_request';
}

/** What to do about each kind, appended to messages so an operator reading a log can act. */
const ADVICE: Record<LlmCallErrorKind, string> = {
  rate_limit: 'rate limited; retry after the delay the server asked for',
  server: 'the provider failed on its side; retry with backoff',
  timeout: 'no answer within the timeout; retry, or raise the timeout',
  auth: 'the API key was refused; check the key variable in the environment',
  bad_request:
    'the request was refused as invalid; this is a bug or a model/limit mismatch, retrying will not help',
  connection: 'could not reach the provider; check the base URL and the network',
  aborted: 'the call was cancelled',
};

export interface HttpFailure {
  provider: string;
  model: string;
  status: number;
  headers?: HeaderSource;
  /** The provider's error text; redacted before use. */
  detail?: string | null;
  requestId?: string | null;
  /** The server's own retry hint (`x-should-retry`), which wins over the status. */
  shouldRetry?: boolean;
}

/** An LlmCallError for an HTTP error response. `redact` strips secrets from the provider's text. */
export function httpCallError(failure: HttpFailure, redact: (text: string) => string): LlmCallError {
  const kind = kindOfStatus(failure.status);
  const detail = failure.detail ? `: ${redact(failure.detail)}` : '';
  const retryAfterMs = parseRetryAfter(failure.headers);
  return new LlmCallError(
    `${failure.provider} ${failure.model} answered ${failure.status}${detail} (${ADVICE[kind]})`,
    {
      kind,
      provider: failure.provider,
      status: failure.status,
      ...(failure.shouldRetry !== undefined && { retryable: failure.shouldRetry }),
      ...(retryAfterMs !== undefined && { retryAfterMs }),
      ...(failure.requestId && { requestId: failure.requestId }),
    },
  );
}

/** An LlmCallError for a failure without an HTTP status: timeout, connection, abort. */
export function transportCallError(
  provider: string,
  model: string,
  kind: 'timeout' | 'connection' | 'aborted',
  detail: string,
): LlmCallError {
  const what = kind === 'timeout' ? 'timed out' : kind === 'aborted' ? 'was aborted' : 'could not connect';
  const who = model ? `${provider} ${model}` : provider;
  return new LlmCallError(`${who} call ${what}${detail ? `: ${detail}` : ''} (${ADVICE[kind]})`, {
    kind,
    provider,
    ...(detail && { cause: new Error(detail) }),
  });
}
