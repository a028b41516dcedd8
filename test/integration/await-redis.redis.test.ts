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
