import { describe, expect, it } from 'vitest';
import { expectSeedsClean } from './seed-range.js';

describe('simulator seeds', () => {
  it('runs 1,000 seeds of the CI scenario (3 agents, 8 needs, every fault) with no invariant violation', async () => {
    const seen = await expectSeedsClean(1, 1000);
    // The faults did happen: crashes, hangs, slow models, restarts, lost bus events, stale writes
    // refused, identities held after model outages.
    for (const [fault, count] of Object.entries(seen))
      expect({ fault, happened: count > 0 }).toEqual({ fault, happened: true });
  }, 900_000);

  it('runs 200 seeds of it under the central scheduler too', async () => {
    const seen = await expectSeedsClean(1, 200, 'central');
    expect(seen.crashes).toBeGreaterThan(0);
  }, 600_000);
});
