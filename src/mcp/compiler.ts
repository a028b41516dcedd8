import type { Awareness } from '../kernel/awareness.js';
import { compileAwarenessNow, compileBootPayload } from '../kernel/boot.js';
import type { Identity } from '../kernel/identity/schema.js';
import { compilePack } from '../kernel/pack/compile.js';
import { expandPointer } from '../kernel/pack/expand.js';
import { renderView } from '../kernel/views/compile.js';
import { GRAPH_FILE, PROBLEM_FILE, README_FILE } from '../kernel/views/index.js';
import { NotFoundError, type Store } from '../store/index.js';
import type { GuardCompiler } from './session.js';

export interface KernelCompilerOptions {
  /**
   * Boots of one identity within this many ms reuse one awareness block (L2) instead of each
   * compiling its own: under load every boot would otherwise scan the identity's whole scope, and
   * identical L2 bytes across those boots also hit the model provider's prompt cache. 0 (the
   * default) compiles it for every boot; `mlos run` uses DEFAULT_AWARENESS_MAX_AGE_MS.
   */
  readonly awarenessMaxAgeMs?: number;
}

/** How old an awareness block `mlos run` lets a boot reuse, in ms. */
export const DEFAULT_AWARENESS_MAX_AGE_MS = 1000;

/**
 * The guard's window on the kernel compilers: views rendered from the database (not read from
 * disk, so they are never stale), context packs, pointer expansion and boot payloads.
 */
export function createKernelCompiler(store: Store, options: KernelCompilerOptions = {}): GuardCompiler {
  const source = store.packReads;
  const maxAgeMs = options.awarenessMaxAgeMs ?? 0;
  const recent = new Map<string, { at: number; awareness: Awareness }>();
  const awarenessFor = (identity: Identity): Awareness | undefined => {
    if (maxAgeMs <= 0) return undefined;
    const now = store.clock.now();
    const hit = recent.get(identity.hash);
    if (hit && now - hit.at < maxAgeMs && now >= hit.at) return hit.awareness;
    const awareness = compileAwarenessNow(source, identity, { now });
    recent.set(identity.hash, { at: now, awareness });
    return awareness;
  };
  return {
    pack(needId, identity, budget) {
      const pack = compilePack(source, needId, identity, budget);
      return { text: pack.text, tokens: pack.tokens, sha256: pack.sha256 };
    },
    expandPointer(pointer, budget) {
      const expanded = expandPointer(source, pointer, budget);
      return { text: expanded.text, tokens: expanded.tokens };
    },
    view(workspaceName, file) {
      const workspace = store.workspaces.require(workspaceName);
      const view = renderView(store, workspace, file);
      if (!view) {
        throw new NotFoundError(
          'view',
          `${workspaceName}/${file}`,
          'views are PROBLEM.md, README.md, graph.md and needs/<id>.md',
        );
      }
      return { text: view.content, seq: view.seq };
    },
    listViews(workspaceName) {
      store.workspaces.require(workspaceName);
      // The aggregate views; need pages are reached through them. Listing renders nothing.
      return [PROBLEM_FILE, README_FILE, GRAPH_FILE];
    },
    boot(identity: Identity, needId, budget) {
      const awareness = awarenessFor(identity);
      const boot = compileBootPayload(source, identity, needId, budget, awareness && { awareness });
      return {
        system: boot.system.map((b) => ({ text: b.text, cacheBreakpoint: b.cacheBreakpoint })),
        first: boot.messages.flatMap((m) => m.content.map((b) => b.text)).join('\n\n'),
        tools: boot.tools,
        tokens: boot.tokens,
        sha256: boot.sha256,
        packSha256: boot.pack.sha256,
        sections: boot.sections,
      };
    },
  };
}
