import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.js';

/** A source of uniform 32-bit integers. Seeded ones make a run reproducible. */
export interface Prng {
  nextUint32(): number;
}

/** sfc32 seeded through splitmix32: small, fast and good enough for ids and jitter. */
export function createSeededPrng(seed: number): Prng {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return {
    nextUint32() {
      const t = (((a + b) >>> 0) + d) >>> 0;
      d = (d + 1) >>> 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) >>> 0;
      c = ((c << 21) | (c >>> 11)) >>> 0;
      c = (c + t) >>> 0;
      return t;
    },
  };
}

/** A PRNG seeded from the operating system: the default outside tests and the simulator. */
export function createRandomPrng(): Prng {
  return createSeededPrng(randomBytes(4).readUInt32LE(0));
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export type IdKind = 'need' | 'task' | 'art' | 'agent' | 'run';

/** Generates sortable, kind-prefixed ids (`need_01J…`): 10 characters of time, 16 of randomness. */
export interface IdGenerator {
  next(kind: IdKind): string;
}

/**
 * ULID-shaped ids from a Clock and a PRNG. Within one millisecond the random part is incremented,
 * so ids from one generator are strictly increasing even when the clock stands still.
 */
export function createIdGenerator(clock: Clock, prng: Prng): IdGenerator {
  let lastTime = -1;
  let lastRandom: number[] = [];
  const freshRandom = (): number[] => Array.from({ length: 16 }, () => prng.nextUint32() % 32);
  return {
    next(kind) {
      const now = Math.max(clock.now(), lastTime);
      if (now === lastTime) {
        lastRandom = increment(lastRandom);
      } else {
        lastTime = now;
        lastRandom = freshRandom();
      }
      return `${kind}_${encodeTime(now)}${lastRandom.map((v) => CROCKFORD[v]).join('')}`;
    },
  };
}

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function increment(digits: number[]): number[] {
  const next = [...digits];
  for (let i = next.length - 1; i >= 0; i--) {
    const v = next[i] ?? 0;
    if (v < 31) {
      next[i] = v + 1;
      return next;
    }
    next[i] = 0;
  }
  throw new RangeError('id space for this millisecond is exhausted');
}
