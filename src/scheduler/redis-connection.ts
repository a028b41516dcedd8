/**
 * Connection helpers of the BullMQ task queue: bounded waits, and quitting or ending ioredis
 * connections whatever their state. Internal to the BullMQ adapter (bullmq-task-queue.ts and
 * bullmq-consumer.ts); ioredis types do not leave this folder.
 */
import type { Redis } from 'ioredis';

/** After a close timeout, how long BullMQ may take to record the aborted jobs before connections are cut. */
export const GRACE_MS = 1000;

/** True when `work` settles within `ms`; false when the time runs out first. */
export async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      expired,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Quits politely when Redis answers, else (or after a grace period) ends the connection. */
export async function shutdown(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready' || !(await within(client.quit(), GRACE_MS))) endForGood(client);
}

/**
 * Ends a connection whatever its state, with an 'end' event. `disconnect()` alone leaves a client
 * that sits between two reconnection attempts in 'reconnecting' forever, and never emits 'end';
 * one more attempt, made while the client is marked as closing, ends it (refused or not).
 */
export function endForGood(client: Redis): void {
  if (client.status === 'end') return;
  client.disconnect();
  if (client.status !== 'reconnecting') return;
  client.connect().then(
    () => client.disconnect(),
    () => {},
  );
}

export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable Redis URL)';
  }
}
