import type { StoreContext } from '../context.js';
import { NotFoundError } from '../errors.js';
import { NameSchema, parseInput, Sha256Schema } from '../schemas.js';
import type { IdentityPin } from '../types.js';

interface PinRow {
  name: string;
  hash: string;
  content: string;
  drift_hash: string | null;
  paused: number;
  pinned_at: number;
}

/** Identity pins: the sha256 and exact bytes of each identity file the operator accepted. */
export class IdentityRepository {
  readonly #ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  get(name: string): IdentityPin | undefined {
    const row = this.#ctx.prepare<[string], PinRow>('SELECT * FROM identity_pins WHERE name = ?').get(name);
    return row && toPin(row);
  }

  require(name: string): IdentityPin {
    const pin = this.get(name);
    if (!pin) throw new NotFoundError('identity', name, 'list identities with `mlos identity list`');
    return pin;
  }

  list(): IdentityPin[] {
    return this.#ctx.prepare<[], PinRow>('SELECT * FROM identity_pins ORDER BY name').all().map(toPin);
  }

  /**
   * Pins `name` to `hash` and the exact bytes. A first pin writes `identity.pinned`; a re-pin
   * (accepting drift) writes `identity.accepted` with the old and new hash and clears drift.
   */
  pin(name: string, hash: string, content: string): IdentityPin {
    parseInput(NameSchema, name, 'identity name');
    parseInput(Sha256Schema, hash, `hash of identity ${name}`);
    return this.#ctx.write(() => {
      const old = this.get(name);
      if (old && old.hash === hash && old.driftHash === null) return old;
      this.#ctx
        .prepare(
          `INSERT INTO identity_pins (name, hash, content, pinned_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, content = excluded.content,
             drift_hash = NULL, pinned_at = excluded.pinned_at`,
        )
        .run(name, hash, content, this.#ctx.now());
      this.#ctx.emit(
        old
          ? { kind: 'identity.accepted', entity: name, payload: { oldHash: old.hash, newHash: hash } }
          : { kind: 'identity.pinned', entity: name, payload: { hash } },
      );
      return this.require(name);
    });
  }

  /** Records that the file of `name` no longer matches its pin (once per distinct drifted hash). */
  markDrift(name: string, driftHash: string): IdentityPin {
    parseInput(Sha256Schema, driftHash, `drifted hash of identity ${name}`);
    return this.#ctx.write(() => {
      const pin = this.require(name);
      if (pin.driftHash === driftHash) return pin;
      this.#ctx.prepare('UPDATE identity_pins SET drift_hash = ? WHERE name = ?').run(driftHash, name);
      this.#ctx.emit({
        kind: 'identity.drifted',
        entity: name,
        payload: { pinnedHash: pin.hash, fileHash: driftHash },
      });
      return this.require(name);
    });
  }

  /** Clears a drift mark when the file is back to its pinned bytes. */
  clearDrift(name: string): IdentityPin {
    return this.#ctx.write(() => {
      const pin = this.require(name);
      if (pin.driftHash === null) return pin;
      this.#ctx.prepare('UPDATE identity_pins SET drift_hash = NULL WHERE name = ?').run(name);
      this.#ctx.emit({ kind: 'identity.restored', entity: name, payload: { hash: pin.hash } });
      return this.require(name);
    });
  }

  setPaused(name: string, paused: boolean): IdentityPin {
    return this.#ctx.write(() => {
      const pin = this.require(name);
      if (pin.paused === paused) return pin;
      this.#ctx.prepare('UPDATE identity_pins SET paused = ? WHERE name = ?').run(paused ? 1 : 0, name);
      this.#ctx.emit({ kind: paused ? 'identity.paused' : 'identity.resumed', entity: name, payload: {} });
      return this.require(name);
    });
  }
}

function toPin(row: PinRow): IdentityPin {
  return {
    name: row.name,
    hash: row.hash,
    content: row.content,
    driftHash: row.drift_hash,
    paused: row.paused === 1,
    pinnedAt: row.pinned_at,
  };
}
