import { afterAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';

// The built binary (npm test builds first), as a user runs it.
describe('mlos sim', () => {
  const cwd = tempDir('mlos-sim-cli-');
  afterAll(() => cwd.cleanup());

  it('runs seeds over worker threads and sums them up, exit 0', () => {
    const r = runCli(
      [
        'sim',
        '--agents',
        '3',
        '--needs',
        '6',
        '--seeds',
        '4',
        '--jobs',
        '2',
        '--summary',
        '--faults',
        'crash=0.2,bus_loss=0.1',
      ],
      { cwd: cwd.dir },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^4\/4 seeds, 0 failing, 0 invariant violations/m);
    expect(r.stdout).toMatch(/^4 seeds, 0 with invariant violations or not drained, 0 violations$/m);
    expect(r.code).toBe(0);
  });

  it('prints one report per seed, the same for the same seed', () => {
    const args = [
      'sim',
      '--agents',
      '3',
      '--needs',
      '6',
      '--seed',
      '7',
      '--json',
      '--faults',
      'crash=0.3,hang=0.1',
    ];
    const a = runCli(args, { cwd: cwd.dir });
    const b = runCli([...args, '--scheduler', 'central'], { cwd: cwd.dir });
    const report = JSON.parse(a.stdout);
    expect(report).toMatchObject({ seed: 7, scheduler: 'roundtable', drained: true, violations: [] });
    expect(JSON.parse(b.stdout)).toMatchObject({
      seed: 7,
      scheduler: 'central',
      takeovers: 0,
      drained: true,
    });
    expect(JSON.parse(runCli(args, { cwd: cwd.dir }).stdout)).toEqual(report);
  });

  it('exits 1 on a seed that does not drain, with its violations and the tail of its trace', () => {
    // One alpha agent cannot see the needs tagged c: they are never resolved.
    const r = runCli(['sim', '--agents', '1', '--needs', '6', '--max-virtual-minutes', '5'], {
      cwd: cwd.dir,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/NOT drained in 29\d\.\d s virtual/);
    expect(r.stdout).toMatch(/VIOLATION every need resolved at \+\d+ ms on need_/);
    expect(r.stderr).toMatch(
      /1 of 1 seeds broke an invariant or did not drain: rerun one with --seed <it> --seeds 1/,
    );
    expect(r.stdout).toMatch(/last events:\n {4}#\d+ \+\d+ms /);
  });

  it('refuses an unknown fault, naming the ones it knows; --help documents every fault', () => {
    const r = runCli(['sim', '--faults', 'explode=0.1'], { cwd: cwd.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown fault "explode": use crash, agent_crash, hang, slow/);
    const none = runCli(['sim', '--needs', '0'], { cwd: cwd.dir });
    expect(none.code).toBe(2);
    expect(none.stderr.trim()).toBe('mlos: --needs must be at least 1, not 0');
    const help = runCli(['sim', '--help'], { cwd: cwd.dir }).stdout;
    for (const fault of [
      'crash',
      'agent_crash',
      'hang',
      'slow',
      'bus_loss',
      'bus_dup',
      'bus_reorder',
      'supervisor_restart',
      'worker_restart',
      'outage',
    ])
      expect(help).toMatch(new RegExp(`^  ${fault} +per `, 'm'));
  });
});
