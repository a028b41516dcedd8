/**
 * Redis connection helpers: bounded waits, quitting or ending ioredis connections whatever their
 * state (for the BullMQ adapter: bullmq-task-queue.ts and bullmq-consumer.ts), and the wait for
 * Redis at start (createAdapters, mlos worker). ioredis types do not leave this folder.
 */
import { Redis } from 'ioredis';
import { UserError } from '../store/index.js';
import type { Logger } from './logger.js';

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

/**
 * Waits until the Redis server at `url` answers a PING, at most `timeoutMs` (trying every half
 * second: a server still starting, as in docker-compose, gets that long; `log` hears once that it
 * waits); then throws a UserError naming the server and the last reason. At start only: a wrong
 * --redis fails there, instead of reconnecting forever as the adapters do once they ran (so that
 * a Redis restart loses no run).
 */
export async function awaitRedis(url: string, log: Logger, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let reason = 'no answer';
  for (let attempt = 0; ; attempt++) {
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: Math.max(500, Math.min(5000, deadline - Date.now())),
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    // The socket's own error (ECONNREFUSED, ENOTFOUND…) says more than the rejected connect.
    let socketError: { code?: string; message?: string } | undefined;
    client.on('error', (error: { code?: string; message?: string }) => {
      socketError = error;
    });
    try {
      await client.connect();
      await client.ping();
      await checkDatabase(client, url);
      return;
    } catch (error) {
      if (error instanceof UserError) throw error;
      const e = socketError ?? (error as { code?: string; message?: string });
      reason = e.code ?? e.message ?? String(error);
    } finally {
      endForGood(client);
    }
    if (Date.now() + 500 >= deadline)
      throw new UserError(
        `Redis at ${withoutPassword(url)} does not answer (${reason}): is redis-server running there, and does --redis name it (redis://HOST:PORT)?`,
      );
    if (attempt === 0) log.warn({ reason }, `waiting for Redis at ${withoutPassword(url)} to answer`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * ioredis reports a failed SELECT of the URL's database (`redis://…/99` on a server with 16) only
 * as an error event, and goes on in database 0, among other users' keys. Selecting it again here
 * turns that into a refusal at start.
 */
async function checkDatabase(client: Redis, url: string): Promise<void> {
  const db = client.options.db ?? 0;
  if (db === 0) return;
  try {
    await client.select(db);
  } catch (error) {
    throw new UserError(
      `Redis at ${withoutPassword(url)} has no database ${db} (${(error as Error).message}): name one the server has, e.g. redis://HOST:PORT/0 (a default server has 0 to 15)`,
    );
  }
}
