import type { LlmProvider, LlmRequest, LlmResponse } from '../../agents/provider.js';
import { LlmCallError, transportCallError } from '../../agents/provider-error.js';
import type { Sleep } from '../../agents/retry.js';

/** What happens to one session's model (decided at its first call). */
export type ModelFault =
  | { readonly kind: 'none' }
  | { readonly kind: 'hang' }
  | { readonly kind: 'slow'; readonly factor: number };

export interface FaultyProviderOptions {
  readonly inner: LlmProvider;
  /** The fault of the session of a task. */
  readonly decide: (taskId: string) => ModelFault;
  /** The inner provider's own latency per call, in ms (what `slow` multiplies). */
  readonly latencyMs: number;
  /** The sleep of the incarnation that runs the sessions (see Epoch). */
  readonly sleep: Sleep;
  /** Counters shared by every incarnation's provider: sessions that hung, slow ones, calls refused by an outage. */
  readonly counts: { hangs: number; slow: number; outageCalls: number };
  /** When the model outage of an identity under way now ends (null: none), and the retry-after it asks. */
  readonly outage?: { readonly until: (identity: string) => number | null; readonly retryAfterMs: number };
}

/**
 * The simulator's model faults on top of the scripted provider, per session (keyed by task id):
 *  - hang: the session's first model call never answers; it ends only at the call's timeout, as a
 *    real SDK's would (`timeout`, which the session retries). Meanwhile the session's heartbeats go
 *    on without progress, so its lease is not renewed: the supervisor classifies it hung and the
 *    need is retried or taken over; the session's next write is refused as stale.
 *  - slow: every call of the session takes `factor` times the usual latency (2–100×), so some
 *    calls outlast the lease.
 * And per call: during a model outage of the session's identity, every call is answered 429 after
 * the usual latency, with a retry-after.
 */
export class FaultyProvider implements LlmProvider {
  readonly name = 'scripted' as const;
  readonly #o: FaultyProviderOptions;
  readonly #fault = new Map<string, ModelFault>();

  constructor(options: FaultyProviderOptions) {
    this.#o = options;
  }

  async complete(request: LlmRequest): Promise<LlmResponse> {
    const identity = request.context?.identity;
    if (this.#o.outage && identity !== undefined && this.#o.outage.until(identity) !== null) {
      await this.#wait(this.#o.latencyMs, request);
      this.#o.counts.outageCalls++;
      throw new LlmCallError(
        `scripted ${request.model} answered 429: the model is unavailable (simulated outage)`,
        {
          kind: 'rate_limit',
          provider: 'scripted',
          status: 429,
          retryAfterMs: this.#o.outage.retryAfterMs,
        },
      );
    }
    const key = request.context?.taskId ?? '';
    let fault = this.#fault.get(key);
    if (!fault) {
      fault = this.#o.decide(key);
      this.#fault.set(key, fault);
      if (fault.kind === 'hang') {
        this.#o.counts.hangs++;
        await this.#wait(request.timeoutMs, request);
        throw transportCallError(
          'scripted',
          request.model,
          'timeout',
          `no answer within ${request.timeoutMs} ms (simulated hang)`,
        );
      }
      if (fault.kind === 'slow') this.#o.counts.slow++;
    }
    if (fault.kind === 'slow') {
      const extra = (fault.factor - 1) * this.#o.latencyMs;
      await this.#wait(extra, request);
    }
    return this.#o.inner.complete(request);
  }

  /** Waits on the incarnation's sleep; a cancelled session's wait ends the call as aborted. */
  async #wait(ms: number, request: LlmRequest): Promise<void> {
    try {
      await this.#o.sleep(ms, request.signal);
    } catch {
      throw transportCallError('scripted', request.model, 'aborted', '');
    }
  }
}
