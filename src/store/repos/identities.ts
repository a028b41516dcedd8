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
  held_until: number | null;
  held_reason: string | null;
  holds: number;
}

/** The hold on `pin` at `now`: until when and why, or null when it gets work. */
export function holdOf(pin: IdentityPin, now: number): { until: number; reason: string } | null {
  return pin.heldUntil !== null && pin.heldUntil > now
    ? { until: pin.heldUntil, reason: pin.heldReason ?? 'its model was unavailable' }
    : null;
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

  /** The identities held at `now` (their model was unavailable), by name. */
  held(now: number): { name: string; until: number; reason: string; holds: number }[] {
    return this.#ctx
      .prepare<[number], { name: string; until: number; reason: string | null; holds: number }>(
        `SELECT name, held_until AS until, held_reason AS reason, holds FROM identity_pins
         WHERE held_until > ? ORDER BY name`,
      )
      .all(now)
      .map((r) => ({ ...r, reason: r.reason ?? 'its model was unavailable' }));
  }

  /**
   * Holds `name` after a task failed because its model was unavailable: no new work until `now`
   * plus `backoff(holds)`, where `holds` counts this hold among the consecutive ones since a task
   * of the identity last ended well (so the wait doubles while the outage lasts), unless the last
   * hold ended more than `forgetAfterMs` ago. A failure while a hold stands (a session that was
   * already running) changes nothing. `identity.held` records each new hold.
   */
  hold(
    name: string,
    reason: string,
    backoff: (holds: number) => number,
    forgetAfterMs = Number.POSITIVE_INFINITY,
  ): IdentityPin {
    return this.#ctx.write(() => {
      const pin = this.require(name);
      const now = this.#ctx.now();
      if (holdOf(pin, now)) return pin;
      // An outage long after the last hold ended starts the count again.
      const recent = pin.heldUntil !== null && now - pin.heldUntil <= forgetAfterMs;
      const holds = recent ? pin.holds + 1 : 1;
      const until = now + Math.max(0, backoff(holds));
      this.#ctx
        .prepare('UPDATE identity_pins SET held_until = ?, held_reason = ?, holds = ? WHERE name = ?')
        .run(until, reason, holds, name);
      this.#ctx.emit({ kind: 'identity.held', entity: name, payload: { until, holds, reason } });
      return this.require(name);
    });
  }

  /**
   * Ends the hold of `name`, and its count of consecutive holds: a task of it ended well
   * (`recovered`), or the operator resumed it (`operator`). Writes `identity.released` when there
   * was a hold or a count to clear; otherwise nothing (one primary-key read, cheap on every finish).
   * Returns whether a hold was still in force.
   */
  releaseHold(name: string, by: 'recovered' | 'operator'): boolean {
    return this.#ctx.write(() => {
      const row = this.#ctx
        .prepare<[string], { held_until: number | null }>(
          'SELECT held_until FROM identity_pins WHERE name = ? AND (holds > 0 OR held_until IS NOT NULL)',
        )
        .get(name);
      if (!row) return false;
      this.#ctx
        .prepare('UPDATE identity_pins SET held_until = NULL, held_reason = NULL, holds = 0 WHERE name = ?')
        .run(name);
      this.#ctx.emit({ kind: 'identity.released', entity: name, payload: { by } });
      return row.held_until !== null && row.held_until > this.#ctx.now();
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
    heldUntil: row.held_until,
    heldReason: row.held_reason,
    holds: row.holds,
  };
}
