import { identityFromPin } from '../kernel/identity/index.js';
import type { Identity } from '../kernel/identity/schema.js';
import type { Store } from '../store/index.js';
import type { GuardCompiler, GuardDeps } from './session.js';

export interface GuardDepsOptions {
  readonly leaseMs?: number;
  readonly runId?: string | null;
  /** See GuardDeps.maxAttempts (default: no limit). */
  readonly maxAttempts?: number | null;
  /** See GuardDeps.retryDelayMs (default 0: no wait). */
  readonly retryDelayMs?: number;
  readonly compiler?: GuardCompiler;
  readonly log?: (message: string, error?: unknown) => void;
}

export const DEFAULT_LEASE_MS = 180_000;

/**
 * The guard's dependencies over one store. Identities come from the pinned bytes in the
 * database (cached by hash), never from files.
 */
export function createGuardDeps(store: Store, options: GuardDepsOptions = {}): GuardDeps {
  const cache = new Map<string, Identity>();
  return {
    store,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    runId: options.runId ?? null,
    maxAttempts: options.maxAttempts ?? null,
    retryDelayMs: options.retryDelayMs ?? 0,
    identityOf: (name) => {
      const pin = store.identities.require(name);
      const key = `${name}:${pin.hash}`;
      let identity = cache.get(key);
      if (!identity) {
        identity = identityFromPin(pin);
        cache.set(key, identity);
      }
      return identity;
    },
    ...(options.compiler && { compiler: options.compiler }),
    log:
      options.log ??
      ((message, error) => {
        process.stderr.write(
          `mlos guard: ${message}${error ? `: ${(error as Error).stack ?? String(error)}` : ''}\n`,
        );
      }),
  };
}
