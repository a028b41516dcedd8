import type { Identity } from '../kernel/identity/schema.js';
import { GUARD_TOOLS } from '../kernel/tools.js';
import type { Fence, Need } from '../store/index.js';

/**
 * Who is calling the guard. The operator sees every tool and every need. An agent sees only its
 * identity's tools and writes only its writable set: the needs in its view (tags meeting its
 * watch tags) plus any need whose lease its task holds. A task-bound agent carries the fence of
 * its task, which the guard applies to every write it makes.
 */
export type Principal =
  | { readonly kind: 'operator' }
  | {
      readonly kind: 'agent';
      readonly identity: Identity;
      /** The agent instance (for claims and heartbeats), when known. */
      readonly agentId?: string;
      /** Present when the principal is one session working on one task. */
      readonly task?: { readonly id: string; readonly needId: string; readonly fence: Fence };
    };

export const OPERATOR: Principal = { kind: 'operator' };

export function visibleTools(principal: Principal): readonly string[] {
  return principal.kind === 'operator' ? GUARD_TOOLS : principal.identity.tools;
}

export function describePrincipal(principal: Principal): string {
  if (principal.kind === 'operator') return 'operator';
  return principal.task
    ? `agent ${principal.identity.name} (task ${principal.task.id})`
    : `agent ${principal.identity.name}`;
}

/** The actor written into the event log for this principal's writes. */
export function actorOf(principal: Principal): string {
  if (principal.kind === 'operator') return 'operator';
  return principal.task
    ? `agent:${principal.identity.name}:${principal.task.id}`
    : `agent:${principal.identity.name}`;
}

/** True when the need's tags meet the identity's watch tags (primary or peripheral). */
export function inView(identity: Identity, need: Pick<Need, 'tags'>): boolean {
  const watch = new Set([...identity.scope.primary, ...identity.scope.peripheral]);
  return need.tags.some((t) => watch.has(t));
}
