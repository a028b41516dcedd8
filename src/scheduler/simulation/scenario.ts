// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references, resolved by the scripted provider.

import type { ScriptInput } from '../../agents/providers/script-schema.js';
import { ScriptedProvider } from '../../agents/providers/scripted.js';
import { parseIdentity } from '../../kernel/identity/index.js';
import type { Identity } from '../../kernel/identity/schema.js';
import { createGuardDeps, createKernelCompiler, type GuardDeps } from '../../mcp/index.js';
import { createSeededPrng, type Prng, Store } from '../../store/index.js';
import type { VirtualTime } from './virtual-time.js';

/** Faults injected into a run, as rates in [0, 1]. */
export interface SimFaults {
  /** Per session: the agent running it crashes during the session (its worker stops, restarts later). */
  readonly crash: number;
  /** Per model call attempt, through the scripted provider's seeded failure rates. */
  readonly server: number;
  readonly rate_limit: number;
  readonly timeout: number;
  readonly malformed: number;
}

export const NO_FAULTS: SimFaults = { crash: 0, server: 0, rate_limit: 0, timeout: 0, malformed: 0 };

/** Parses `crash=0.1,server=0.05` (`model` is an alias of `server`). */
export function parseFaults(text: string | undefined): SimFaults {
  const faults: Record<string, number> = { ...NO_FAULTS };
  if (!text) return faults as unknown as SimFaults;
  for (const part of text.split(',').filter(Boolean)) {
    const [rawKey, rawValue] = part.split('=');
    const key = rawKey?.trim() === 'model' ? 'server' : (rawKey?.trim() ?? '');
    const value = Number(rawValue);
    if (!(key in NO_FAULTS)) {
      throw new Error(`unknown fault "${rawKey}": use ${[...Object.keys(NO_FAULTS), 'model'].join(', ')}`);
    }
    if (!Number.isFinite(value) || value < 0 || value > 1) throw new Error(`fault ${key}: a rate in [0, 1]`);
    faults[key] = value;
  }
  const f = faults as unknown as SimFaults;
  if (f.server + f.rate_limit + f.timeout + f.malformed > 1)
    throw new Error('model fault rates add up to more than 1');
  return f;
}

/** Timings of the simulated system, in virtual ms. */
export const SIM_TIMING = {
  leaseMs: 30_000,
  heartbeatMs: 5_000,
  loopMs: 500,
  checkMs: 1_000,
  latencyMs: 400,
  restartMs: 20_000,
  maxAttempts: 10,
} as const;

/** Three scopes over tags a, b, c: each identity owns one and watches the next (overlapping). */
const SCOPES = [
  { name: 'alpha', primary: 'a', peripheral: 'b' },
  { name: 'beta', primary: 'b', peripheral: 'c' },
  { name: 'gamma', primary: 'c', peripheral: 'a' },
] as const;

export const SIM_TAGS = ['a', 'b', 'c'] as const;

function identityText(s: (typeof SCOPES)[number]): string {
  return [
    '---',
    `name: ${s.name}`,
    `objective: Serve the needs tagged ${s.primary} in the simulator.`,
    `scope: { primary: [${s.primary}], peripheral: [${s.peripheral}] }`,
    'model: scripted:default',
    'capacity: 1',
    'budgets: { per_task: 200000, per_day: 1000000000 }',
    'takeover: { grace: 5s, peripheral_delay: 5s, cooldown: 30s, escalation: 5m }',
    '---',
    `You are the simulated ${s.name} agent.`,
    '',
  ].join('\n');
}

/** Reads the need, then resolves it: two model turns, so a crash can land between them. */
export function simScript(faults: SimFaults): ScriptInput {
  return {
    name: 'sim',
    latency_ms: SIM_TIMING.latencyMs,
    failures: {
      rates: {
        server: faults.server,
        rate_limit: faults.rate_limit,
        timeout: faults.timeout,
        malformed: faults.malformed,
      },
      retry_after_ms: 1000,
    },
    rules: [
      {
        steps: [
          { tool: 'get_need', args: { id: '${need.id}' } },
          { tool: 'finish', args: { outcome: 'resolved', summary: 'simulated: done' } },
        ],
      },
    ],
  };
}

export interface SimWorld {
  readonly store: Store;
  readonly deps: GuardDeps;
  readonly identities: readonly Identity[];
  readonly needIds: readonly string[];
  readonly provider: ScriptedProvider;
  /** The faults' own PRNG (never the store's, so faults do not shift ids). */
  readonly faultPrng: Prng;
}

/**
 * The world of one run: an in-memory store on virtual time with seeded ids, the three identities
 * pinned, `needs` needs spread over the tags (about a third depend on one or two earlier needs),
 * the guard's deps, and the scripted provider on virtual sleep.
 */
export function buildWorld(options: {
  readonly seed: number;
  readonly needs: number;
  readonly faults: SimFaults;
  readonly time: VirtualTime;
}): SimWorld {
  const { seed, time } = options;
  const store = Store.open(':memory:', { clock: time.clock, prng: createSeededPrng(seed) });
  const identities = SCOPES.map((s) => parseIdentity(identityText(s), { file: `${s.name}.md` }));
  for (const identity of identities) store.identities.pin(identity.name, identity.hash, identity.source);
  const shape = createSeededPrng(seed ^ 0x5eed);
  const pick = (n: number) => shape.nextUint32() % n;
  const needIds: string[] = [];
  for (let i = 0; i < options.needs; i++) {
    const dependsOn: string[] = [];
    if (i > 0 && pick(3) === 0) {
      dependsOn.push(needIds[pick(i)]!);
      if (i > 1 && pick(2) === 0) dependsOn.push(needIds[pick(i)]!);
    }
    const need = store.needs.create({
      title: `Simulated need ${i + 1}`,
      tags: [SIM_TAGS[pick(SIM_TAGS.length)]!],
      priority: 1 + pick(3),
      dependsOn: [...new Set(dependsOn)],
    });
    needIds.push(need.id);
  }
  const deps = createGuardDeps(store, {
    leaseMs: SIM_TIMING.leaseMs,
    runId: store.budgets.startRun(null),
    compiler: createKernelCompiler(store),
    log: () => {},
  });
  const provider = new ScriptedProvider({
    script: simScript(options.faults),
    source: 'simulator script',
    sleep: time.sleep,
    seed,
  });
  return { store, deps, identities, needIds, provider, faultPrng: createSeededPrng(seed ^ 0xfa17) };
}
