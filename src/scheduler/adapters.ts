import { MemoryNeedBus } from '../roundtable/memory-need-bus.js';
import type { NeedBus } from '../roundtable/need-bus.js';
import { RedisNeedBus } from '../roundtable/redis-need-bus.js';
import { BullmqTaskQueue } from './bullmq-task-queue.js';
import type { Logger } from './logger.js';
import { MemoryTaskQueue } from './memory-task-queue.js';
import { awaitRedis } from './redis-connection.js';
import type { TaskQueue } from './task-queue.js';

export interface AdapterOptions {
  /** Distributed mode when set: BullMQ queues and a Redis Stream bus on this server. */
  readonly redisUrl?: string | undefined;
  /** Keeps the queues and streams of one database apart from another's on a shared Redis. */
  readonly namespace: string;
  readonly log: Logger;
}

/**
 * The queue and bus of a mode: in-process for embedded, Redis for distributed (once the server
 * answers: a UserError after 30 s without). Same code above.
 */
export async function createAdapters(options: AdapterOptions): Promise<{ queue: TaskQueue; bus: NeedBus }> {
  if (!options.redisUrl) {
    return {
      queue: new MemoryTaskQueue({ log: options.log }),
      bus: new MemoryNeedBus({
        onError: (error) => options.log.warn({ err: error }, 'need bus subscriber failed'),
      }),
    };
  }
  await awaitRedis(options.redisUrl, options.log);
  return {
    queue: new BullmqTaskQueue({ url: options.redisUrl, namespace: options.namespace, log: options.log }),
    bus: new RedisNeedBus({
      url: options.redisUrl,
      namespace: options.namespace,
      onError: (error, context) => options.log.warn({ err: error, context }, `need bus: ${context}`),
    }),
  };
}
