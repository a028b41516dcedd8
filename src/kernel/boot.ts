import type { Need } from '../store/index.js';
import { BudgetExceededError, canonicalJson, NotFoundError, sha256 } from '../store/index.js';
import {
  type Awareness,
  compileAwareness,
  DEFAULT_AWARENESS_TOKENS,
  loadAwarenessState,
} from './awareness.js';
import type { Identity } from './identity/schema.js';
import { type ContextPack, compilePack } from './pack/compile.js';
import type { AwarenessSource, PackSource } from './pack/source.js';
import { formatCount, TOKEN_ENCODING, type TokenCounter, tokenCounterFor } from './tokens.js';
import { KERNEL_INVARIANTS } from './tools.js';

/**
 * The boot payload of an agent session: L1 identity and L2 awareness as system blocks, the L3
 * context pack and the task statement as the first user message, the allowed tools, and where
 * the prompt-cache breakpoints go. Laid out from most to least stable, so a provider's prefix
 * cache hits: L1 is the same bytes for every task and agent of one identity, L2 for every task
 * of one identity at one need state.
 */

/** The default budget of a whole boot payload (system blocks and first message), in model tokens. */
export const DEFAULT_BOOT_BUDGET = 16_000;

export type BootSection = 'l1-identity' | 'l2-awareness' | 'l3-pack' | 'task';

export interface BootBlock {
  readonly section: BootSection;
  readonly text: string;
  /** Model tokens of `text`. */
  readonly tokens: number;
  /** A cache breakpoint goes right after this block (Anthropic: `cache_control` on it). */
  readonly cacheBreakpoint: boolean;
}

export interface BootPayload {
  readonly identity: string;
  readonly identityHash: string;
  readonly needId: string;
  readonly budget: number;
  /** Model tokens of all blocks together: never more than `budget`. */
  readonly tokens: number;
  readonly encoding: typeof TOKEN_ENCODING;
  readonly factor: number;
  /** [L1 identity, L2 awareness]. */
  readonly system: readonly BootBlock[];
  /** The first user message: [L3 pack, task statement]. */
  readonly messages: readonly { readonly role: 'user'; readonly content: readonly BootBlock[] }[];
  /** The guard tools the session may call: the identity's allow-list, sorted. */
  readonly tools: readonly string[];
  /** The sections after which a cache breakpoint goes, in order. */
  readonly breakpoints: readonly BootSection[];
  /** Every section with its size, most stable first. */
  readonly sections: readonly { readonly section: BootSection; readonly tokens: number }[];
  readonly pack: ContextPack;
  /** sha256 over the canonical JSON of system, messages, tools and breakpoints. */
  readonly sha256: string;
}

export interface BootOptions {
  /** When leases and not_before are judged for awareness; by default the source's clock. */
  readonly now?: number;
  /** The cap of the awareness block (default 2,000 tokens); it does not depend on the need. */
  readonly awarenessTokens?: number;
  readonly counter?: TokenCounter;
  /**
   * The identity's awareness block, compiled a moment ago at the same cap, to use instead of
   * compiling it again (see the guard compiler's `awarenessMaxAgeMs`).
   */
  readonly awareness?: Awareness;
}

/**
 * Layer 1 as text: who the agent is (name and pinned hash), its objective, the kernel invariants,
 * and the identity file as pinned (its prompt when no source is held). Rendered from the Identity
 * alone, so it is byte-identical for every task and agent of one identity.
 */
export function renderIdentityBlock(identity: Identity): string {
  const lines = [
    `# Identity: ${identity.name}`,
    `You are an agent of mlos running the identity "${identity.name}" (pinned sha256 ${identity.hash}).`,
    '',
    '## Objective',
    identity.objective.trim(),
    '',
    '## Kernel invariants (the guard enforces them; they hold whatever else this prompt says)',
    ...KERNEL_INVARIANTS.map((rule, i) => `${i + 1}. ${rule}`),
    '',
    '## Your identity file, as pinned',
    (identity.source.trim() ? identity.source : identity.prompt).trim(),
  ];
  return `${lines.join('\n')}\n`;
}

/** An identity's awareness block (L2) over the need state at `options.now` (default: the source's clock). */
export function compileAwarenessNow(
  source: AwarenessSource,
  identity: Identity,
  options: Pick<BootOptions, 'now' | 'awarenessTokens' | 'counter'> = {},
): Awareness {
  const state = loadAwarenessState(source, identity, options.now ?? source.now());
  return compileAwareness(identity, state, options.awarenessTokens ?? DEFAULT_AWARENESS_TOKENS, {
    counter: options.counter ?? tokenCounterFor(identity.model),
  });
}

/** What the session is asked to do, closing the first user message. */
export function renderTaskStatement(need: Need): string {
  const ending =
    need.mode === 'standing'
      ? 'This need is standing: it is never resolved. Finish with `finish` as progressed (say what you did), blocked or failed.'
      : 'Finish with `finish`: resolved (its acceptance is met), progressed (it stays open), blocked (after creating the sub-needs and depends_on edges) or failed (say why).';
  return [
    '## Your task',
    `Work on need ${need.id}: "${need.title.replace(/\s+/g, ' ').trim()}" (p${need.priority}, ${need.status}).`,
    'The context pack above holds what is known about it; expand its pointers with expand_pointer when you need what was left out.',
    'Act only through your tools, and heartbeat as you make progress.',
    ending,
    '',
  ].join('\n');
}

/**
 * Compiles the boot payload of a session of `identity` on `needId` within `budget` model tokens
 * (system blocks and first message; tool definitions are the guard's and not counted here).
 * L1 is measured, L2 gets its own cap, the task statement is measured, and the pack gets what is
 * left. Throws a BudgetExceededError naming the sizes when the budget leaves no room for a pack.
 */
export function compileBootPayload(
  source: PackSource & AwarenessSource,
  identity: Identity,
  needId: string,
  budget: number,
  options: BootOptions = {},
): BootPayload {
  const counter = options.counter ?? tokenCounterFor(identity.model);
  const need = source.need(needId);
  if (!need) throw new NotFoundError('need', needId, 'list needs with `mlos need list`');

  const l1 = renderIdentityBlock(identity);
  const l1Tokens = counter.count(l1);
  const awareness = options.awareness ?? compileAwarenessNow(source, identity, { ...options, counter });
  const task = renderTaskStatement(need);
  const taskTokens = counter.count(task);
  const packBudget = budget - l1Tokens - awareness.tokens - taskTokens;
  const breakdown = `identity ${formatCount(l1Tokens)}, awareness ${formatCount(awareness.tokens)}, task statement ${formatCount(taskTokens)} tokens`;
  if (packBudget <= 0) {
    throw new BudgetExceededError(
      `a boot budget of ${formatCount(budget)} tokens leaves no room for a context pack of ${needId} (${breakdown}): raise --budget`,
    );
  }
  let pack: ContextPack;
  try {
    pack = compilePack(source, needId, identity, packBudget, { counter });
  } catch (error) {
    if (!(error instanceof BudgetExceededError)) throw error;
    throw new BudgetExceededError(
      `a boot budget of ${formatCount(budget)} tokens leaves ${formatCount(packBudget)} for the context pack of ${needId} (${breakdown}), too little: raise --budget`,
    );
  }

  const system: BootBlock[] = [
    { section: 'l1-identity', text: l1, tokens: l1Tokens, cacheBreakpoint: true },
    { section: 'l2-awareness', text: awareness.text, tokens: awareness.tokens, cacheBreakpoint: true },
  ];
  const content: BootBlock[] = [
    { section: 'l3-pack', text: pack.text, tokens: pack.tokens, cacheBreakpoint: false },
    { section: 'task', text: task, tokens: taskTokens, cacheBreakpoint: false },
  ];
  const messages = [{ role: 'user' as const, content }];
  const blocks = [...system, ...content];
  const tools = [...identity.tools].sort();
  const breakpoints = blocks.filter((b) => b.cacheBreakpoint).map((b) => b.section);
  const hashed = {
    system: system.map((b) => ({ text: b.text, cache: b.cacheBreakpoint })),
    messages: messages.map((m) => ({ role: m.role, content: m.content.map((b) => b.text) })),
    tools,
  };
  return {
    identity: identity.name,
    identityHash: identity.hash,
    needId: need.id,
    budget,
    tokens: blocks.reduce((s, b) => s + b.tokens, 0),
    encoding: TOKEN_ENCODING,
    factor: counter.factor,
    system,
    messages,
    tools,
    breakpoints,
    sections: blocks.map((b) => ({ section: b.section, tokens: b.tokens })),
    pack,
    sha256: sha256(canonicalJson(hashed)),
  };
}
