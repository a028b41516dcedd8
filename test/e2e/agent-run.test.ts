import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/index.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { WORK_SCRIPT } from '../helpers/run.js';

/** `mlos agent run`: one session in the foreground, each turn printed compactly. */
describe('mlos agent run', { timeout: 60_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  const mlos = (...args: string[]) => runCli(args, { cwd: dir });
  const runScripted = (need: string, script: string) =>
    mlos(
      'agent',
      'run',
      '--identity',
      'architect',
      '--need',
      need,
      '--provider',
      'scripted',
      '--model',
      script,
    );
  beforeAll(() => {
    ({ dir, cleanup } = tempDir());
    expect(mlos('init').code).toBe(0);
  });
  afterAll(() => cleanup());

  it('runs a scripted session to resolution and prints turns, tool calls and the end', () => {
    const need = mlos('need', 'add', 'Check the boot sequence', '--tags', 'kernel').stdout.trim();
    const r = runScripted(need, WORK_SCRIPT);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^architect on ${need} "Check the boot sequence": task task_\\w+, fencing token 1, scripted:`,
      ),
    );
    expect(r.stdout).toMatch(/boot \d+ tokens \(l1-identity \d+, l2-awareness \d+, l3-pack \d+, task \d+\)/);
    expect(r.stdout).toMatch(/turn 1: .* → get_need/);
    expect(r.stdout).toContain('✓ add_note');
    expect(r.stdout).toMatch(/end: resolved after 3 turns, 3 tool calls/);
    const store = Store.open(join(dir, 'mlos.db'));
    expect(store.needs.require(need).status).toBe('resolved');
    expect(
      store.artifacts
        .forNeed(need)
        .map((a) => a.kind)
        .sort(),
    ).toEqual(['note', 'transcript']);
    store.close();
  });

  it('exits 1 with a clear line for an unknown identity, a missing key, or a need that cannot be claimed', () => {
    const need = mlos('need', 'add', 'Another', '--tags', 'kernel').stdout.trim();
    const unknown = mlos('agent', 'run', '--identity', 'ghost', '--need', need);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('identity ghost does not exist');
    const noKey = runCli(
      [
        'agent',
        'run',
        '--identity',
        'architect',
        '--need',
        need,
        '--provider',
        'anthropic',
        '--model',
        'claude-sonnet-5-5',
      ],
      {
        cwd: dir,
        env: { ANTHROPIC_API_KEY: '' },
      },
    );
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('set ANTHROPIC_API_KEY in the environment');
    const resolved = mlos('need', 'add', 'Done already', '--tags', 'kernel').stdout.trim();
    mlos('need', 'resolve', resolved);
    const moot = mlos(
      'agent',
      'run',
      '--identity',
      'architect',
      '--need',
      resolved,
      '--provider',
      'scripted',
    );
    expect(moot.code).toBe(1);
    expect(moot.stderr).toContain('is resolved: there is nothing to claim');
  });

  it('exits 1 when the session ends failed, after printing its end', () => {
    const need = mlos('need', 'add', 'Cannot be done', '--tags', 'kernel').stdout.trim();
    const script = join(dir, 'give-up.yaml');
    writeFileSync(
      script,
      [
        'name: give-up',
        'rules:',
        '  - steps:',
        '      - tool: finish',
        '        args: { outcome: failed, summary: "no way to do it" }',
        '',
      ].join('\n'),
    );
    const r = runScripted(need, script);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/end: failed/);
  });
});
