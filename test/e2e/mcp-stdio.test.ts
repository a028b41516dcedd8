import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ResourceListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUARD_TOOLS } from '../../src/kernel/tools.js';
import { BIN, runCli, tempDir } from '../helpers/cli.js';
import { call, data, text } from '../helpers/guard.js';

/** `mlos mcp` over stdio, spawned from the built binary, driven by the real MCP client. */
describe('mlos mcp (stdio)', () => {
  let dir: string;
  let cleanup: () => void;
  let client: Client;

  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    expect(runCli(['init'], { cwd: dir }).code).toBe(0);
    expect(runCli(['identity', 'sync'], { cwd: dir }).code).toBe(0);
    client = new Client({ name: 'stdio-test', version: '0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp', '--db', join(dir, 'mlos.db')],
        env: getDefaultEnvironment(),
        cwd: dir,
        stderr: 'pipe',
      }),
    );
  });
  afterAll(async () => {
    await client.close();
    cleanup();
  });

  it('serves every guard tool with operator scope', async () => {
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([...GUARD_TOOLS].sort());
  });

  it('creates needs, reads them back as resources and views, and compiles a boot payload', async () => {
    const a = data<{ id: string }>(
      await call(client, 'create_need', { title: 'Kernel boots', tags: ['kernel'] }),
    );
    const need = await client.readResource({ uri: `mlos://needs/${a.id}` });
    expect(JSON.parse((need.contents[0] as { text: string }).text).title).toBe('Kernel boots');
    const problem = await client.readResource({ uri: 'mlos://views/default/PROBLEM.md' });
    expect((problem.contents[0] as { text: string }).text).toContain('Kernel boots');
    const view = await call(client, 'get_view', { file: 'PROBLEM.md' });
    expect(text(view)).toContain('Kernel boots');
    const pack = await call(client, 'get_pack', { need_id: a.id, identity: 'architect', budget: 2000 });
    expect(text(pack)).toContain('Kernel boots');
    const boot = await client.getPrompt({ name: 'boot', arguments: { identity: 'architect', need: a.id } });
    const bootText = (boot.messages[0]!.content as { text: string }).text;
    expect(bootText).toContain('ML OS Architect');
    expect(bootText).toContain('Kernel boots');
  });

  it('tells the client that resources changed when another process writes', async () => {
    let changed = 0;
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => {
      changed++;
    });
    expect(runCli(['need', 'add', 'Written by the CLI', '--tags', 'kernel'], { cwd: dir }).code).toBe(0);
    const deadline = Date.now() + 5000;
    while (changed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(changed).toBeGreaterThan(0);
  });

  it('refuses bad calls with isError and a reason, and unknown resources with an error', async () => {
    const bad = await call(client, 'update_need', {
      id: 'need_01AAAAAAAAAAAAAAAAAAAAAAAA',
      version: 1,
      title: 'x',
    });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toContain('does not exist');
    await expect(
      client.readResource({ uri: 'mlos://needs/need_01AAAAAAAAAAAAAAAAAAAAAAAA' }),
    ).rejects.toThrow(/does not exist/);
  });
});
