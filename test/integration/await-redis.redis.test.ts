import { describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../src/scheduler/logger.js';
import { awaitRedis } from '../../src/scheduler/redis-connection.js';
import { redisUrl } from '../helpers/redis.js';
import { freePort } from '../helpers/redis-server.js';

/** `mlos run --redis` and `mlos worker` wait for Redis at start, and give up with what to check. */
describe('awaitRedis', () => {
  it.skipIf(!inject('redisAvailable'))('returns once the server answers', async () => {
    await expect(awaitRedis(redisUrl(), silentLogger, 5000)).resolves.toBeUndefined();
  });

  it.skipIf(!inject('redisAvailable'))(
    'refuses at once a database the server does not have (ioredis would go on in database 0)',
    async () => {
      const base = redisUrl().replace(/\/\d*$/, '');
      await expect(awaitRedis(`${base}/1`, silentLogger, 5000)).resolves.toBeUndefined();
      const waits: unknown[] = [];
      await expect(
        awaitRedis(`${base}/9999`, { ...silentLogger, warn: (obj) => waits.push(obj) }, 20_000),
      ).rejects.toThrow(
        `Redis at ${base}/9999 has no database 9999 (ERR DB index is out of range): name one the server has, e.g. redis://HOST:PORT/0`,
      );
      // Refused on the first answer: no "waiting for Redis", no retry until the deadline.
      expect(waits).toEqual([]);
    },
  );

  it('gives up after its time with the server and the reason, having said once that it waits', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const waits: string[] = [];
    await expect(
      awaitRedis(
        url,
        { ...silentLogger, warn: (obj) => waits.push((obj as { reason: string }).reason) },
        1200,
      ),
    ).rejects.toThrow(
      `Redis at ${url} does not answer (ECONNREFUSED): is redis-server running there, and does --redis name it (redis://HOST:PORT)?`,
    );
    expect(waits).toEqual(['ECONNREFUSED']);
  });
});
