import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { UserError } from '../../store/index.js';
import { ok } from '../result.js';
import type { GuardSession } from '../session.js';
import { defineTool } from './define.js';

/** Operator-only tools (agent tokens never see them): graduate, cancel_task, pause/resume_identity. */
export function registerOperatorTools(server: McpServer, session: GuardSession): void {
  const { store } = session;

  defineTool(server, session, {
    name: 'graduate',
    description: 'Turn an actionable need into a queued task for an identity.',
    output: () => ({ taskId: z.string(), attempt: z.number() }),
    input: () => ({ need_id: z.string(), identity: z.string() }),
    run: ({ need_id, identity }) => {
      const task = store.transaction(() => {
        const pin = store.identities.require(identity);
        if (pin.driftHash)
          throw new UserError(`identity ${identity} has drifted from its pin: accept it first`);
        const actionable = store.needs.isActionable(need_id, store.clock.now());
        if (!actionable.ok) throw new UserError(actionable.reason);
        return store.tasks.create(need_id, identity, { queue: identity });
      });
      return ok(`graduated ${need_id} into task ${task.id} for ${identity}`, {
        taskId: task.id,
        attempt: task.attempt,
      });
    },
  });

  defineTool(server, session, {
    name: 'cancel_task',
    description: 'Cancel a queued or running task; its lease is revoked (fencing token bumped).',
    output: () => ({ taskId: z.string(), status: z.string() }),
    input: () => ({ task_id: z.string(), reason: z.string().optional() }),
    run: ({ task_id, reason }) => {
      const task = store.tasks.cancel(task_id, reason ?? 'cancelled by the operator');
      return ok(`task ${task.id} cancelled; need ${task.needId} is free again`, {
        taskId: task.id,
        status: task.status,
      });
    },
  });

  for (const [name, paused] of [
    ['pause_identity', true],
    ['resume_identity', false],
  ] as const) {
    defineTool(server, session, {
      name,
      description: paused
        ? 'Stop giving new work to an identity.'
        : 'Give work again to an identity that is paused, or held after its model was unavailable (the hold ends now).',
      output: () => ({ name: z.string(), paused: z.boolean(), holdEnded: z.boolean() }),
      input: () => ({ name: z.string() }),
      run: ({ name: identity }) => {
        const { pin, holdEnded } = store.transaction(() => {
          const pin = store.identities.setPaused(identity, paused);
          // Resuming is the operator's word that the model is back: the hold and its count end.
          const holdEnded = !paused && store.identities.releaseHold(identity, 'operator');
          return { pin, holdEnded };
        });
        return ok(
          `identity ${pin.name} ${paused ? 'paused' : 'resumed'}${holdEnded ? ' (its hold ended)' : ''}`,
          {
            name: pin.name,
            paused: pin.paused,
            holdEnded,
          },
        );
      },
    });
  }
}
