import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { identityHash } from '../../../src/kernel/identity/index.js';
import { Store } from '../../../src/store/index.js';
import { makeIdentity } from '../../helpers/identity.js';
import { makeTempDir } from '../../helpers/store.js';

/** `mlos pack` and `mlos boot`, run in process against a temp database. */
describe('mlos pack / mlos boot', () => {
  let dir: string;
  let cleanup: () => void;
  let db: string;
  let needId: string;

  const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      stdout += String(chunk);
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
    try {
      const code = await main(['node', 'mlos', '--db', db, ...args]);
      return { code, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  };

  beforeAll(() => {
    ({ dir, cleanup } = makeTempDir('mlos-pack-cli-'));
    db = join(dir, 'mlos.db');
    const store = Store.open(db);
    try {
      // The pin holds real identity-file bytes: the CLI parses them as the kernel does.
      const { source } = makeIdentity({ name: 'janitor' });
      store.identities.pin('janitor', identityHash(source), source);
      const dep = store.needs.create({ title: 'Schema exists', tags: ['schema'] });
      needId = store.needs.create({
        title: 'Clean the workspace',
        body: 'Remove duplicates.',
        tags: ['cleanup'],
        dependsOn: [dep.id],
      }).id;
    } finally {
      store.close();
    }
  });
  afterAll(() => cleanup());

  it('prints the pack, and its accounting on stderr', async () => {
    const r = await run('pack', needId, '--identity', 'janitor', '--budget', '2000');
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(`# Context pack: ${needId} (budget 2,000 tokens, o200k_base)\n`)).toBe(true);
    expect(r.stdout).toContain('Remove duplicates.');
    expect(r.stderr).toMatch(
      /^pack: [\d,]+ of 2,000 tokens · \d+ items · 0 pointers · 0 dropped · sha256 [0-9a-f]{64}\n$/,
    );
  });

  it('prints the pack as JSON with its hash, pointers and what was left out', async () => {
    const r = await run('pack', needId, '--identity', 'janitor', '--json');
    expect(r.code).toBe(0);
    const pack = JSON.parse(r.stdout) as { budget: number; tokens: number; sha256: string; text: string };
    expect(pack.budget).toBe(8000);
    expect(pack.tokens).toBeLessThanOrEqual(8000);
    expect(pack.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(pack).toHaveProperty('omitted.items');
    expect(pack).toHaveProperty('pointers');
  });

  it('prints a boot payload section by section with sizes and breakpoints', async () => {
    const r = await run('boot', 'janitor', '--need', needId, '--budget', '6000');
    expect(r.code).toBe(0);
    const headings = r.stdout.split('\n').filter((l) => l.startsWith('=== '));
    expect(headings[0]).toMatch(/^=== system\[0\] l1-identity · [\d,]+ tokens · cache breakpoint after ===$/);
    expect(headings[1]).toMatch(
      /^=== system\[1\] l2-awareness · [\d,]+ tokens · cache breakpoint after ===$/,
    );
    expect(headings[2]).toMatch(/^=== user\[0\] l3-pack · [\d,]+ tokens ===$/);
    expect(headings[3]).toMatch(/^=== user\[1\] task · [\d,]+ tokens ===$/);
    expect(headings[4]).toMatch(/^=== tools \(\d+\): .*finish.* ===$/);
    expect(headings[5]).toMatch(
      /^=== total [\d,]+ of 6,000 tokens · identity janitor [0-9a-f]{12} · pack sha256/,
    );
    const json = await run('boot', 'janitor', '--need', needId, '--json');
    const payload = JSON.parse(json.stdout) as {
      breakpoints: string[];
      pack: { text?: string; sha256: string };
    };
    expect(payload.breakpoints).toEqual(['l1-identity', 'l2-awareness']);
    expect(payload.pack.text).toBeUndefined();
  });

  it('fails with a clear message for an unpinned identity, a bad budget and a budget too small', async () => {
    const unpinned = await run('pack', needId, '--identity', 'nobody');
    expect(unpinned.code).toBe(1);
    expect(unpinned.stderr).toMatch(
      /identity nobody has no pin in this database: use one of [a-z, -]*janitor[a-z, -]*, or pin a new identity file with `mlos identity sync`/,
    );
    const zero = await run('pack', needId, '--identity', 'janitor', '--budget', '0');
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--budget must be a positive number of tokens, not 0');
    const tiny = await run('boot', 'janitor', '--need', needId, '--budget', '100');
    expect(tiny.code).toBe(1);
    expect(tiny.stderr).toMatch(/a boot budget of 100 tokens leaves no room for a context pack/);
    const missing = await run('pack', 'need_01JAAAAAAAAAAAAAAAAAAAAAAA', '--identity', 'janitor');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('need need_01JAAAAAAAAAAAAAAAAAAAAAAA does not exist');
  });
});
