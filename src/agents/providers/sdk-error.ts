import type { LlmRequest } from '../provider.js';
import { type HeaderSource, httpCallError, LlmCallError, transportCallError } from '../provider-error.js';

// biome-ignore lint/suspicious/noExplicitAny: error classes of the vendor SDKs, matched with instanceof.
type ErrorClass = abstract new (...args: any[]) => Error;

/** The error classes of one Stainless-generated SDK (Anthropic's and OpenAI's share this shape). */
export interface SdkErrorClasses {
  readonly base: ErrorClass;
  readonly api: ErrorClass;
  readonly abort: ErrorClass;
  readonly timeout: ErrorClass;
  readonly connection: ErrorClass;
}

interface ApiErrorShape {
  status?: unknown;
  headers?: HeaderSource & { get(name: string): string | null };
  requestID?: string | null;
}

/**
 * Maps an SDK error to our LlmCallError (what the loop can retry, and why), with secrets redacted.
 * `detailOf` picks the provider's own message out of an API error. Anything else is returned as is.
 */
export function sdkCallError(
  provider: 'anthropic' | 'openai',
  classes: SdkErrorClasses,
  error: unknown,
  request: LlmRequest,
  redact: (text: string) => string,
  detailOf: (error: Error) => string,
): unknown {
  const model = request.model;
  if (error instanceof classes.abort || request.signal?.aborted)
    return transportCallError(provider, model, 'aborted', '');
  if (error instanceof classes.timeout) {
    return transportCallError(provider, model, 'timeout', `no answer within ${request.timeoutMs} ms`);
  }
  if (error instanceof classes.connection)
    return transportCallError(provider, model, 'connection', redact(error.message));
  if (error instanceof classes.api && typeof (error as ApiErrorShape).status === 'number') {
    const api = error as Error & ApiErrorShape;
    const shouldRetry = api.headers?.get('x-should-retry');
    return httpCallError(
      {
        provider,
        model,
        status: api.status as number,
        ...(api.headers && { headers: api.headers }),
        detail: detailOf(api),
        requestId: api.requestID ?? null,
        ...(shouldRetry === 'true' || shouldRetry === 'false' ? { shouldRetry: shouldRetry === 'true' } : {}),
      },
      redact,
    );
  }
  if (error instanceof classes.base) {
    return new LlmCallError(`${provider} ${model} call failed: ${redact(error.message)}`, {
      kind: 'bad_request',
      provider,
    });
  }
  return error;
}

/**
 * Runs one SDK request with an abort signal of its own that follows `signal`. The Anthropic and
 * OpenAI SDKs add an abort listener to the signal of every request and never remove it: given a
 * session's or a worker's long-lived signal, they piled up one per model call for the life of the
 * run (Node warns past ten). The request's own signal is dropped with the request.
 */
export async function withRequestSignal<T>(
  signal: AbortSignal | undefined,
  request: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (!signal) return request(undefined);
  const own = new AbortController();
  const follow = () => own.abort(signal.reason);
  if (signal.aborted) follow();
  else signal.addEventListener('abort', follow, { once: true });
  try {
    return await request(own.signal);
  } finally {
    signal.removeEventListener('abort', follow);
  }
}
