import { randomBytes } from 'node:crypto';
import type { StoreContext } from '../context.js';

/**
 * Secrets kept in the database (bookkeeping, no events): the key that signs agent tokens lives
 * here so that a supervisor restart does not invalidate running sessions.
 */
export class SecretRepository {
  readonly #ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  /** The named secret, created (32 random bytes, hex) on first use. */
  getOrCreate(name: string): string {
    return this.#ctx.write(() => {
      const row = this.#ctx
        .prepare<[string], { value: string }>('SELECT value FROM secrets WHERE name = ?')
        .get(name);
      if (row) return row.value;
      const value = randomBytes(32).toString('hex');
      this.#ctx.prepare('INSERT INTO secrets (name, value) VALUES (?, ?)').run(name, value);
      return value;
    });
  }
}
