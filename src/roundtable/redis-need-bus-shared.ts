/**
 * What RedisNeedBus and its subscriptions share: the resolved configuration and key names, the
 * stream and snapshot format (the Lua scripts that write them, the schemas and decoders that read
 * them back), and connection helpers. Internal to the Redis need bus: ioredis types stay in this
 * folder's redis-need-bus*.ts files.
 */
import { Redis, type RedisOptions } from 'ioredis';
import * as z from 'zod';
import { MlosError, NEED_STATUSES } from '../store/index.js';
import type { NeedSnapshot } from './need-bus.js';

/** RedisNeedBusOptions with defaults applied and key names derived from the namespace. */
export interface RedisBusConfig {
  readonly url: string;
  readonly stream: string;
  readonly snapshot: string;
  readonly maxLen: number;
  readonly blockMs: number;
  readonly batchSize: number;
  readonly maxBackoffMs: number;
  readonly commandTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly onError: (error: unknown, context: string) => void;
}

/**
 * Appends events to the stream in seq order, atomically. Stream ids are `<seq>-0`, so a reader
 * resumes after seq N by reading after id `N-0`. Seqs at or below the stream's newest entry are
 * skipped: a restarted publisher re-publishing from its cursor, or a retried publish whose reply
 * was lost, adds nothing twice. KEYS[1] stream; ARGV[1] maxLen, then (seq, event JSON) pairs.
 */
export const PUBLISH_LUA = `
local top = 0
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if newest[1] then top = tonumber(string.match(newest[1][1], '^(%d+)')) end
local added = 0
for i = 2, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > top then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'seq', ARGV[i], 'event', ARGV[i + 1])
    top = seq
    added = added + 1
  end
end
return added`;

/**
 * Replaces the snapshot unless the stored one is newer. The snapshot is a hash {seq, json}, so the
 * check and the subscribers' "is it ahead of me?" read need not decode the JSON. Returns -1 when
 * stored, else the stored (newer) seq. KEYS[1] snapshot; ARGV[1] seq; ARGV[2] JSON.
 */
export const SNAPSHOT_LUA = `
local current = redis.call('HGET', KEYS[1], 'seq')
if current and tonumber(current) > tonumber(ARGV[1]) then return tonumber(current) end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'json', ARGV[2])
return -1`;

export const BusEventSchema = z.looseObject({
  seq: z.number().int().positive(),
  at: z.number(),
  kind: z.string(),
  entity: z.string(),
  needId: z.string().nullable(),
});

export const NeedSnapshotSchema = z.object({
  seq: z.number().int().nonnegative(),
  needs: z.array(
    z.looseObject({
      id: z.string(),
      title: z.string(),
      status: z.enum(NEED_STATUSES),
      priority: z.number(),
      scope: z.string(),
      tags: z.array(z.string()),
      actionable: z.boolean(),
      leaseTask: z.string().nullable(),
      leaseExpiresAt: z.number().nullable(),
      fencingToken: z.number(),
      unmetSince: z.number().nullable(),
      orphaned: z.boolean(),
    }),
  ),
});

export type StreamEntry = readonly [id: string, fields: readonly string[]];

/** The entries of a one-stream XREAD reply (RESP2 array or RESP3 map shape). */
export function streamEntries(reply: unknown): readonly StreamEntry[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply))
    return ((reply[0] as [string, StreamEntry[]] | undefined)?.[1] ?? []) as StreamEntry[];
  return (Object.values(reply as Record<string, StreamEntry[]>)[0] ?? []) as StreamEntry[];
}

export function seqOfId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export async function readSnapshot(conn: Redis, key: string): Promise<NeedSnapshot | null> {
  const json = await conn.hget(key, 'json');
  if (json === null) return null;
  try {
    return NeedSnapshotSchema.parse(JSON.parse(json)) as NeedSnapshot;
  } catch (error) {
    throw new MlosError('bus_bad_snapshot', `${key} does not hold a need snapshot: ${String(error)}`, {
      cause: error,
    });
  }
}

export function connect(config: RedisBusConfig, name: string, extra: RedisOptions): Redis {
  const conn = new Redis(config.url, {
    connectionName: name,
    retryStrategy: (times) => backoff(times, config.maxBackoffMs),
    ...extra,
  });
  conn.on('error', (error) => config.onError(error, `${name} connection`));
  return conn;
}

/** QUIT, bounded: a connection that does not answer in time is dropped. */
export async function quit(conn: Redis, ms: number): Promise<void> {
  if (conn.status === 'ready')
    await withTimeout(
      conn.quit().catch(() => undefined),
      ms,
    );
  if (conn.status !== 'end') conn.disconnect();
}

export async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

export function backoff(attempt: number, max: number): number {
  return Math.min(max, 50 * 2 ** Math.min(attempt - 1, 16));
}
