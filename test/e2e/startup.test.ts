import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';

/**
 * The CLI loads what a command needs when the command runs: `mlos status` or `mlos need add`
 * must not pay for the scheduler, BullMQ, the MCP SDK, the model SDKs or the tokenizer's tables
 * (together ~0.7 s and ~110 MB at every start). A module hook records every module the process
 * loads, ESM and CommonJS, and the test checks which packages were among them.
 */
const HEAVY = [
  'bullmq',
  'ioredis',
  '@modelcontextprotocol/sdk',
  'openai',
  '@anthropic-ai/sdk',
  'gpt-tokenizer',
];

const HOOKS = `
export async function initialize({ port }) { globalThis.port = port; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  globalThis.port.postMessage(result.url);
  return result;
}`;

const REGISTER = `
import { register, createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const seen = [];
port1.on('message', (url) => seen.push(url));
port1.unref();
register(new URL('./hooks.mjs', import.meta.url), { data: { port: port2 }, transferList: [port2] });
process.on('exit', () => {
  const cjs = Object.keys(createRequire(import.meta.url).cache);
  writeFileSync(process.env.MLOS_TEST_LOADED, [...seen, ...cjs].join('\\n'));
});`;

describe('CLI start', () => {
  let dir: string;
  let cleanup: () => void;

  /** The packages of HEAVY a run of `mlos ...args` loaded. */
  const heavyLoaded = (...args: string[]): { code: number; stderr: string; heavy: string[] } => {
    const loaded = join(dir, 'loaded.txt');
    writeFileSync(loaded, '');
    const r = runCli(args, {
      cwd: dir,
      env: {
        NODE_OPTIONS: `--import ${pathToFileURL(join(dir, 'register.mjs')).href}`,
        MLOS_TEST_LOADED: loaded,
      },
    });
    const files = readFileSync(loaded, 'utf8').split('\n');
    const heavy = HEAVY.filter((p) => files.some((f) => f.includes(`/node_modules/${p}/`)));
    return { code: r.code, stderr: r.stderr, heavy };
  };

  beforeAll(() => {
    ({ dir, cleanup } = tempDir());
    writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
    writeFileSync(join(dir, 'register.mjs'), REGISTER);
  });
  afterAll(() => cleanup());

  it('records the packages a command loads (the hook works)', () => {
    // Compiling a pack counts tokens, and mlos mcp loads the guard: both are seen.
    expect(heavyLoaded('init').code).toBe(0);
    expect(runCli(['identity', 'sync'], { cwd: dir }).code).toBe(0);
    const id = runCli(['need', 'add', 'probe', '--tags', 'kernel'], { cwd: dir }).stdout.trim();
    const pack = heavyLoaded('pack', id, '--identity', 'architect');
    expect(pack.code, pack.stderr).toBe(0);
    expect(pack.heavy).toContain('gpt-tokenizer');
    const sim = heavyLoaded('sim', '--agents', '1', '--needs', '1', '--seed', '1');
    expect(sim.code, sim.stderr).toBe(0);
    expect(sim.heavy).toContain('@modelcontextprotocol/sdk');
  });

  it('loads none of the heavy packages for commands that do not use them', () => {
    for (const args of [
      ['status'],
      ['need', 'add', 'light', '--tags', 'docs'],
      ['need', 'list'],
      ['identity', 'list'],
      ['compile'],
      ['audit', 'verify'],
      ['run', '--help'],
    ]) {
      const r = heavyLoaded(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.heavy, args.join(' ')).toEqual([]);
    }
  });
});
