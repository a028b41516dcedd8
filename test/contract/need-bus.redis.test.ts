import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { RedisNeedBus, type RedisNeedBusOptions } from '../../src/roundtable/redis-need-bus.js';
import { probeRedis, redisUrl } from '../helpers/redis.js';
import {
  busEvents,
  expectTimeline,
  type NeedBusHarness,
  needBusContract,
  Recorder,
  snapshotAt,
} from './need-bus-suite.js';

const TEST_OPTIONS = { blockMs: 100, maxBackoffMs: 100 } as const;

/** A bus on the shared test Redis under a fresh namespace; cleanup deletes its keys. */
async function redisHarness(
  options: Partial<RedisNeedBusOptions> = {},
): Promise<NeedBusHarness & { bus: RedisNeedBus }> {
  const errors: unknown[] = [];
  const bus = new RedisNeedBus({
    url: redisUrl(),
    namespace: `mlos-test:${randomUUID()}`,
    ...TEST_OPTIONS,
    onError: (error) => errors.push(error),
    ...options,
  });
  return {
    bus,
    errors,
    async cleanup() {
      await bus.close();
      const admin = new Redis(redisUrl());
      try {
        await admin.del(bus.keys.stream, bus.keys.snapshot);
      } finally {
        admin.disconnect();
      }
    },
  };
}

describe.skipIf(!inject('redisAvailable'))('RedisNeedBus', () => {
  needBusContract('redis', () => redisHarness());

  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const harness = async (options: Partial<RedisNeedBusOptions> = {}) => {
    const h = await redisHarness(options);
    cleanups.push(() => h.cleanup());
    return h;
  };

  it("resyncs with reason 'trimmed' when the stream was trimmed past a slow subscriber", async () => {
    const { bus } = await harness({ maxLen: 10 });
    const recorder = new Recorder();
    await bus.subscribe(recorder);
    await bus.publish(busEvents(1, 5));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5]);
    await bus.publishSnapshot(snapshotAt(1000));
    // One atomic publish: the subscriber's next read finds 6… trimmed away.
    await bus.publish(busEvents(6, 1005));
    const admin = new Redis(redisUrl());
    cleanups.push(async () => admin.disconnect());
    const [oldest] = await admin.xrange(bus.keys.stream, '-', '+', 'COUNT', 1);
    expect(Number(oldest![0].split('-')[0])).toBeGreaterThan(6);
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5, 'trimmed@1000', 1001, 1002, 1003, 1004, 1005]);
  });

  it('holds a trimmed subscriber until a snapshot past its position exists', async () => {
    const { bus } = await harness({ maxLen: 10 });
    const recorder = new Recorder();
    const sub = await bus.subscribe(recorder);
    await bus.publish(busEvents(1, 3));
    await expectTimeline(recorder, ['start@0', 1, 2, 3]);
    await bus.publish(busEvents(4, 1003));
    // A few read cycles with no usable snapshot: nothing past the hole may be delivered.
    await new Promise((resolve) => setTimeout(resolve, 3 * TEST_OPTIONS.blockMs));
    expect(recorder.timeline).toEqual(['start@0', 1, 2, 3]);
    expect(sub.seq).toBe(3);
    await bus.publishSnapshot(snapshotAt(1001));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 'trimmed@1001', 1002, 1003]);
  });

  it('delivers each seq once when a restarted publisher re-publishes from an older cursor', async () => {
    const { bus } = await harness();
    const recorder = new Recorder();
    await bus.subscribe(recorder);
    await bus.publish(busEvents(1, 3));
    const restarted = new RedisNeedBus({
      url: redisUrl(),
      namespace: bus.keys.stream.replace(/:bus:events$/, ''),
      ...TEST_OPTIONS,
    });
    cleanups.push(() => restarted.close());
    await restarted.publish(busEvents(2, 5));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5]);
    const admin = new Redis(redisUrl());
    cleanups.push(async () => admin.disconnect());
    expect(await admin.xlen(bus.keys.stream)).toBe(5);
    // A snapshot stored by one instance binds the other.
    await restarted.publishSnapshot(snapshotAt(8));
    await expect(bus.publishSnapshot(snapshotAt(7))).rejects.toMatchObject({ code: 'bus_snapshot_behind' });
    // …and covers a jump the other publishes.
    await bus.publish(busEvents(9, 9));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5, 'seq_jump@8', 9]);
  });

  it('survives its Redis server stopping and restarting mid-subscription', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    let server = await startRedisServer(port);
    const errors: unknown[] = [];
    const bus = new RedisNeedBus({
      url,
      namespace: 'restart',
      ...TEST_OPTIONS,
      onError: (e) => errors.push(e),
    });
    cleanups.push(async () => {
      await bus.close();
      await stopRedisServer(server);
    });
    const recorder = new Recorder();
    await bus.subscribe(recorder);
    await bus.publish(busEvents(1, 3));
    await expectTimeline(recorder, ['start@0', 1, 2, 3]);

    await stopRedisServer(server);
    // While it is down, reconnects are refused and reported, and a publish waits for it.
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 5_000, interval: 10 });
    // The restarted server is empty (no persistence): the publisher stores a fresh snapshot first.
    const storing = bus.publishSnapshot(snapshotAt(10));
    server = await startRedisServer(port);
    await storing;
    await bus.publish(busEvents(11, 12));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 'reconnect@10', 11, 12]);
  });

  it('after a connection blip, resyncs only from a snapshot at or past its position', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const server = await startRedisServer(port);
    const bus = new RedisNeedBus({ url, namespace: 'blip', ...TEST_OPTIONS, onError: () => undefined });
    const admin = new Redis(url);
    cleanups.push(async () => {
      admin.disconnect();
      await bus.close();
      await stopRedisServer(server);
    });
    const recorder = new Recorder();
    await bus.subscribe(recorder);
    await bus.publishSnapshot(snapshotAt(2));
    await bus.publish(busEvents(1, 4));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 4]);
    // The snapshot (2) is behind the subscriber (4): no resync; the next event proves nothing was lost.
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await bus.publish(busEvents(5, 5));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5]);
    // A snapshot at the subscriber's position: the reconnect delivers it.
    await bus.publishSnapshot(snapshotAt(5));
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await bus.publish(busEvents(6, 6));
    await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5, 'reconnect@5', 6]);
  });

  it('closes promptly while Redis is unreachable, aborting a pending subscribe', async () => {
    const errors: unknown[] = [];
    const bus = new RedisNeedBus({
      url: `redis://127.0.0.1:${await freePort()}`,
      ...TEST_OPTIONS,
      onError: (e) => errors.push(e),
    });
    const subscribing = bus.subscribe(new Recorder());
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 5_000, interval: 10 });
    await bus.close();
    await expect(subscribing).rejects.toMatchObject({ code: 'bus_closed' });
    await expect(bus.publish(busEvents(1, 1))).rejects.toMatchObject({ code: 'bus_closed' });
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function startRedisServer(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await vi.waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if (!(await probeRedis(`redis://127.0.0.1:${port}`)))
        throw new Error(`redis-server on ${port} not up yet`);
    },
    { timeout: 5_000, interval: 20 },
  );
  return child;
}

async function stopRedisServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}
