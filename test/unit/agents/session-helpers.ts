// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references.
import type { LlmProvider, LlmRequest } from '../../../src/agents/provider.js';
import { ScriptedProvider, type ScriptInput } from '../../../src/agents/providers/index.js';
import { runAgentSession, type SessionEvent } from '../../../src/agents/session.js';
import type { Identity } from '../../../src/kernel/identity/schema.js';
import type { GuardDeps } from '../../../src/mcp/index.js';
import type { createGuardWorld } from '../../helpers/guard.js';

/** The agent loop's tests' world: the in-memory guard over a store on a manual clock. */
export type World = ReturnType<typeof createGuardWorld>;

/** A script step that finishes with `outcome`. */
export const finish = (outcome: string, extra: Record<string, unknown> = {}) => ({
  tool: 'finish',
  args: { outcome, summary: `${outcome} by the script`, ...extra },
});

/** Counts calls and lets a test act between them. */
export class Spy implements LlmProvider {
  readonly name = 'scripted' as const;
  calls = 0;
  constructor(
    readonly inner: LlmProvider,
    readonly before?: (call: number, request: LlmRequest) => void,
  ) {}
  async complete(request: LlmRequest) {
    this.calls++;
    this.before?.(this.calls, request);
    return this.inner.complete(request);
  }
}

/**
 * Runs one agent session on a need of the current world (`world()`, renewed per test): claims it
 * as the identity, connects a guard client bound to the task and runs the loop with `script`.
 */
export function sessionRunner(world: () => World) {
  return async (
    needId: string,
    script: ScriptInput,
    options: {
      identity?: Identity;
      before?: Spy['before'];
      events?: SessionEvent[];
      /** Collects the name of every guard tool the loop calls. */
      tools?: string[];
      /** Answers instead of the script (for turns the script language cannot express). */
      provider?: LlmProvider;
      /** Hands the session its lease's end; retry waits then pass on the world's clock. */
      lease?: boolean;
      /** Collects the waits the session sleeps. */
      slept?: number[];
      /** Guard settings of this session's client (say, a retry delay, so outages hold). */
      guard?: Partial<GuardDeps>;
      /** The session's heartbeat interval (default: an hour, so none beats). */
      heartbeatMs?: number;
    } = {},
  ) => {
    const identity = options.identity ?? world().identity('architect');
    if (options.identity) world().store.identities.pin(identity.name, identity.hash, identity.source);
    const claim = world().store.claims.claim(needId, { identity: identity.name, leaseMs: 60_000 });
    const client = await world().client(
      {
        kind: 'agent',
        identity,
        task: { id: claim.task.id, needId, fence: claim.fence },
      },
      options.guard,
    );
    if (options.tools) {
      const callTool = client.callTool.bind(client);
      client.callTool = (params, ...rest) => {
        options.tools!.push(params.name);
        return callTool(params, ...rest);
      };
    }
    const provider = new Spy(
      options.provider ?? new ScriptedProvider({ script, sleep: async () => {} }),
      options.before,
    );
    const result = await runAgentSession({
      client,
      provider,
      model: 'test',
      task: { id: claim.task.id, needId, identity, ...(options.lease && { leaseUntil: claim.leaseUntil }) },
      clock: world().clock,
      sleep: async (ms) => {
        options.slept?.push(ms);
        if (options.lease) world().clock.advance(ms);
      },
      heartbeatMs: options.heartbeatMs ?? 3_600_000,
      ...(options.events && { onEvent: (e) => options.events!.push(e) }),
    });
    return { result, provider, taskId: claim.task.id };
  };
}
