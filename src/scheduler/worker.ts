import { hostname } from 'node:os';
import type { LlmProvider } from '../agents/provider.js';
import {
  runAgentSession,
  type SessionEvent,
  type SessionLimits,
  type SessionResult,
} from '../agents/session.js';
import type { Identity } from '../kernel/identity/schema.js';
import type { GuardConnector } from './connector.js';
import { type Logger, silentLogger } from './logger.js';
import type { Consumer, JobEnd, QueuedJob, TaskQueue } from './task-queue.js';

export interface WorkerOptions {
  readonly queue: TaskQueue;
  readonly connector: GuardConnector;
  /** The identities this worker hosts. */
  readonly identities: readonly string[];
  /** Sessions at once across its identities. */
  readonly concurrency: number;
  /** The provider and model of an identity (its model field, after overrides). */
  readonly providerFor: (identity: Identity) => { provider: LlmProvider; model: string };
  readonly limits?: Partial<SessionLimits>;
  readonly heartbeatMs?: number;
  readonly log?: Logger;
  readonly name?: string;
  /** The registered agent of an identity on this worker, recorded on the tasks it runs. */
  readonly agentIdFor?: (identity: string) => string | undefined;
  readonly onSessionEvent?: (taskId: string, event: SessionEvent) => void;
  readonly onSessionEnd?: (taskId: string, result: SessionResult | null) => void;
}

/**
 * A worker takes jobs of its identities from the queue and runs one agent session per job. The
 * job is only a doorbell: a job whose task is no longer queued ends as superseded.
 */
export class Worker {
  readonly name: string;
  readonly #o: WorkerOptions;
  readonly #log: Logger;
  #consumer: Consumer | undefined;
  #running = 0;

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
    this.name = options.name ?? `${hostname()}:${process.pid}`;
  }

  get running(): number {
    return this.#running;
  }

  start(): void {
    if (this.#consumer) return;
    this.#consumer = this.#o.queue.consume(this.#o.identities, (job, signal) => this.#run(job, signal), {
      concurrency: this.#o.concurrency,
    });
  }

  /** Stops taking jobs; running sessions get `timeoutMs` to finish, then are aborted. Idempotent. */
  async close(timeoutMs = 30_000): Promise<void> {
    const consumer = this.#consumer;
    this.#consumer = undefined;
    await consumer?.close(timeoutMs);
  }

  async #run(job: QueuedJob, signal: AbortSignal): Promise<JobEnd> {
    const started = await this.#o.connector.startTask(job.taskId, this.#o.agentIdFor?.(job.identity));
    if (!started) {
      this.#log.debug({ task: job.taskId }, 'job superseded: its task is no longer queued');
      return 'superseded';
    }
    this.#running++;
    let result: SessionResult | null = null;
    try {
      const { provider, model } = this.#o.providerFor(started.identity);
      result = await runAgentSession({
        client: started.client,
        provider,
        model,
        task: {
          id: started.taskId,
          needId: started.needId,
          identity: started.identity,
          needTitle: started.needTitle,
          needTags: started.needTags,
        },
        signal,
        ...(this.#o.limits && { limits: this.#o.limits }),
        ...(this.#o.heartbeatMs !== undefined && { heartbeatMs: this.#o.heartbeatMs }),
        ...(this.#o.onSessionEvent && { onEvent: (e) => this.#o.onSessionEvent!(started.taskId, e) }),
      });
      this.#log.info(
        {
          task: started.taskId,
          need: started.needId,
          identity: started.identity.name,
          outcome: result.outcome,
          turns: result.turns,
        },
        `session ended: ${result.outcome}`,
      );
    } catch (error) {
      this.#log.error(
        { err: error, task: started.taskId },
        'session crashed; its lease will expire and the need be retried',
      );
    } finally {
      this.#running--;
      await started.close().catch(() => undefined);
      this.#o.onSessionEnd?.(started.taskId, result);
    }
    return 'done';
  }
}
