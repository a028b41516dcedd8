import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { probeRedis, redisUrl } from './redis.js';

/**
 * Before any test: find out whether Redis answers. Suites named `*.redis.test.ts` need it. Without
 * Redis they skip and this prints, loudly, which ones; with MLOS_REQUIRE_REDIS=1 (CI) a missing
 * Redis fails the run instead, so Redis suites can never skip silently there.
 */
export default async function setup(project: TestProject): Promise<void> {
  const url = redisUrl();
  const available = await probeRedis(url);
  project.provide('redisAvailable', available);
  if (available) return;
  if (process.env['MLOS_REQUIRE_REDIS'] === '1') {
    throw new Error(
      `MLOS_REQUIRE_REDIS=1 but Redis does not answer at ${url}: start redis-server or unset it`,
    );
  }
  const suites = findRedisSuites(join(process.cwd(), 'test'));
  const bar = '!'.repeat(78);
  process.stderr.write(
    `\n${bar}\n!! Redis does not answer at ${url}: SKIPPING ${suites.length} Redis suite(s):\n` +
      suites.map((s) => `!!   ${s}\n`).join('') +
      `!! Start redis-server (or set MLOS_TEST_REDIS_URL) to run them.\n${bar}\n\n`,
  );
}

function findRedisSuites(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findRedisSuites(path));
    else if (entry.name.endsWith('.redis.test.ts')) out.push(relative(process.cwd(), path));
  }
  return out.sort();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisAvailable: boolean;
  }
}
