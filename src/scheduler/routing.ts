import type { Identity } from '../kernel/identity/schema.js';

/** What routing knows of an identity at one moment. */
export interface RoutingSlot {
  readonly identity: Identity;
  /** Tasks it may run at once (sum over its registered agents, or its capacity when embedded). */
  readonly capacity: number;
  /** Its live (queued or running) tasks. */
  readonly load: number;
}

/**
 * The identity a need graduates to: the one whose primary scope best matches the need's tags
 * (most tags in common), among those with free capacity; ties go to the lower load, then the
 * name. An orphaned need (escalated) may also go to an identity whose peripheral scope meets it.
 * Returns undefined when no identity with capacity matches. Pure.
 */
export function routeNeed(
  tags: readonly string[],
  slots: readonly RoutingSlot[],
  options: { orphaned?: boolean } = {},
): RoutingSlot | undefined {
  let best: { slot: RoutingSlot; score: number } | undefined;
  for (const slot of slots) {
    if (slot.load >= slot.capacity) continue;
    const primary = tags.filter((t) => slot.identity.scope.primary.includes(t)).length;
    const peripheral = options.orphaned
      ? tags.filter((t) => slot.identity.scope.peripheral.includes(t)).length
      : 0;
    // Primary matches always outrank peripheral ones.
    const score = primary * 1000 + peripheral;
    if (score === 0) continue;
    if (
      !best ||
      score > best.score ||
      (score === best.score &&
        (slot.load < best.slot.load ||
          (slot.load === best.slot.load && slot.identity.name < best.slot.identity.name)))
    ) {
      best = { slot, score };
    }
  }
  return best?.slot;
}
