import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/index.js';
import { type CliResult, runCli, tempDir } from '../helpers/cli.js';
import { freePort } from '../helpers/redis-server.js';
import { spawnMlos, waitFor } from '../helpers/run.js';

/** Runs `body` in a folder of its own with a CLI bound to it; the folder is removed after, also on failure. */
async function inOwnFolder(
  body: (own: string, here: (...args: string[]) => CliResult) => unknown,
): Promise<void> {
  const { dir: own, cleanup } = tempDir();
  try {
    await body(own, (...args) => runCli(args, { cwd: own }));
  } finally {
    cleanup();
  }
}

/** What an operator does around `mlos run`: status, cancel, pause, health and metrics. */
describe('operating mlos from the CLI', { timeout: 120_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  const mlos = (...args: string[]) => runCli(args, { cwd: dir });
  beforeAll(() => {
    ({ dir, cleanup } = tempDir());
    expect(mlos('init').code).toBe(0);
    expect(mlos('identity', 'sync').code).toBe(0);
  });
  afterAll(() => cleanup());

  it('cancels a task through the guard, bumping the fencing token; a second cancel is refused', () => {
    const need = mlos('need', 'add', 'Cancel me', '--tags', 'kernel').stdout.trim();
    const store = Store.open(join(dir, 'mlos.db'));
    const task = store.tasks.create(need, 'architect');
    const before = store.leases.require(need).fencingToken;
    store.close();
    const r = mlos('task', 'cancel', task.id, '--reason', 'wrong approach');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`task ${task.id} cancelled`);
    const again = mlos('task', 'cancel', task.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cancelled → cancelled is not allowed \(cancelled is final\)/);
    const after = Store.open(join(dir, 'mlos.db'));
    expect(after.leases.require(need).fencingToken).toBeGreaterThan(before);
    expect(after.tasks.require(task.id).error).toBe('wrong approach');
    after.close();
  });

  it('retries failed needs after an outage: status points at them, retry sets their attempts aside', () => {
    const failed = mlos('need', 'add', 'Failed while the model was down', '--tags', 'kernel').stdout.trim();
    const fine = mlos('need', 'add', 'Never failed', '--tags', 'kernel').stdout.trim();
    const store = Store.open(join(dir, 'mlos.db'));
    for (let i = 0; i < 3; i++) {
      const { task } = store.claims.claim(failed, { identity: 'architect', leaseMs: 60_000 });
      store.tasks.transition(task.id, 'failed', { error: 'model unavailable' });
    }
    store.needs.setFlags(failed, { unmetSince: store.clock.now(), orphaned: true });
    store.close();
    expect(mlos('status').stdout).toContain(
      `${failed} ORPHANED "Failed while the model was down", 3 failed attempts (mlos need retry ${failed})`,
    );

    // A need with nothing to retry, named with one that has: refused, and neither is changed.
    const mixed = mlos('need', 'retry', failed, fine);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr.trim()).toBe(
      `mlos: need ${fine} has no failed attempt since its last success or retry: nothing to retry (it graduates as usual)`,
    );
    expect(mlos('need', 'retry').stderr.trim()).toBe('mlos: name the needs to retry, or pass --all-failed');

    const r = mlos('need', 'retry', '--all-failed', '--reason', 'endpoint is back');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${failed} retried: its failed attempts no longer count`);
    expect(mlos('need', 'retry', '--all-failed').stdout.trim()).toBe(
      'no open need has a failed attempt: nothing to retry',
    );
    expect(mlos('status').stdout).not.toContain(failed);
    const after = Store.open(join(dir, 'mlos.db'));
    expect(after.needs.require(failed)).toMatchObject({ orphaned: false, unmetSince: null });
    expect(after.events.forNeed(failed)[0]?.payload).toEqual({
      setAside: 3,
      failuresFrom: 3,
      reason: 'endpoint is back',
    });
    after.close();
  });

  it('pauses and resumes an identity through the guard', () => {
    expect(mlos('identity', 'pause', 'janitor').stdout).toContain('paused janitor');
    expect(mlos('identity', 'list').stdout).toMatch(/janitor.*paused/);
    expect(mlos('identity', 'resume', 'janitor').stdout).toContain('resumed janitor');
  });

  it('serves /healthz and /metrics while running, and status reports the run', async () => {
    const port = await freePort();
    const run = spawnMlos(['run', '--demo', '--listen', `127.0.0.1:${port}`, '--log-format', 'json'], dir);
    await waitFor(() => run.output().includes('mlos run started'), 30_000, 'the run to start');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    await waitFor(
      async () =>
        (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).includes(
          'mlos_needs{status="resolved"}',
        ),
      30_000,
      'metrics',
    );
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const name of [
      'mlos_needs',
      'mlos_tasks',
      'mlos_queue_depth',
      'mlos_tokens_total',
      'mlos_cost_usd_total',
      'mlos_takeovers_total',
      'mlos_lease_expiries_total',
      'mlos_identity_held',
    ]) {
      expect(metrics).toContain(`# TYPE ${name} `);
    }
    expect(metrics).toContain('mlos_identity_held{identity="architect"} 0');
    const status = JSON.parse(mlos('status', '--json').stdout) as {
      supervisor: { alive: boolean };
      agents: unknown[];
    };
    expect(status.supervisor.alive).toBe(true);
    expect(status.agents.length).toBe(3);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    const stopped = JSON.parse(mlos('status', '--json').stdout) as { supervisor: unknown; agents: unknown[] };
    expect(stopped.supervisor).toBeNull();
    expect(stopped.agents).toEqual([]);
  });

  it('--until-idle stops when what is left waits for an identity, and says how many wait and for what', () => {
    return inOwnFolder(async (_own, here) => {
      expect(here('init').code).toBe(0);
      expect(here('need', 'add', 'Nobody watches this', '--tags', 'astronomy').code).toBe(0);
      const run = here(
        'run',
        '--until-idle',
        '--log-format',
        'json',
        '--provider',
        'scripted',
        '--model',
        'noop',
      );
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(
        'idle: no need any runnable identity can work on now; 1 need waits for a runnable identity whose scope covers it',
      );
      expect(run.stdout).toContain(
        'mlos run stopped (idle): 0 needs resolved, 0 tokens, $0.0000 in this run; 1 open or active remain',
      );
    });
  });

  it('after an outage: the run stops on the escalated need and names the retry; retried, the next run resolves it', () => {
    return inOwnFolder(async (own, here) => {
      expect(here('init').code).toBe(0);
      const need = here('need', 'add', 'Call the flaky API', '--tags', 'kernel').stdout.trim();
      // A model that fails every session, as during an outage.
      writeFileSync(
        join(own, 'down.yaml'),
        'rules:\n  - steps:\n      - tool: finish\n        args: { outcome: failed, summary: the endpoint is down, reason: simulated outage }\n',
      );
      const model = (m: string) => ['--provider', 'scripted', '--model', m, '--log-format', 'json'];
      const outage = here(
        'run',
        '--until-idle',
        '--max-attempts',
        '1',
        '--retry-delay',
        '0',
        ...model('./down.yaml'),
      );
      expect(outage.code, outage.stderr).toBe(0);
      expect(outage.stdout + outage.stderr).toContain(
        'idle: no need any runnable identity can work on now; 1 escalated need waits for an operator (mlos status lists it; mlos need retry --all-failed tries the failed ones again once their cause is fixed)',
      );
      expect(here('status').stdout).toContain(
        `ORPHANED "Call the flaky API", 1 failed attempt (mlos need retry ${need})`,
      );
      expect(here('need', 'retry', '--all-failed').stdout.trim()).toBe(
        `${need} retried: its failed attempts no longer count`,
      );
      const after = here('run', '--until-idle', '--max-attempts', '1', ...model('noop'));
      expect(after.code, after.stderr).toBe(0);
      expect(after.stdout).toContain('mlos run stopped (idle): 1 need resolved,');
      // The closing line counts what its run resolved, not the database.
      const again = here('run', '--until-idle', ...model('noop'));
      expect(again.stdout).toContain('mlos run stopped (idle): 0 needs resolved, 0 tokens');
    });
  });

  it('--run-tokens: needs wait rather than fail when no task fits in what is left, and the run stops', () => {
    return inOwnFolder(async (own) => {
      // The demo's identities allow 100,000 to 200,000 tokens per task: none fits in 20,000.
      const run = runCli(['run', '--demo', '--run-tokens', '20000', '--log-format', 'json'], { cwd: own });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain('identity architect is budget-blocked for the rest of this run');
      expect(run.stdout).toContain(
        'mlos run stopped (run token budget cannot cover another task): 0 needs resolved',
      );
      // The demo wrote the example identities, as `mlos init` does: the operator can read them.
      expect(run.stderr).toContain('demo: wrote 3 example identities to identities/');
      expect(runCli(['identity', 'list'], { cwd: own }).stdout).toMatch(
        /^architect\s+pinned\s+[0-9a-f]{12}\s+yes\s+identities\/architect\.md$/m,
      );
      expect(runCli(['identity', 'lint'], { cwd: own }).stdout).toContain('ok: 3 identities');
      const store = Store.open(join(own, 'mlos.db'));
      try {
        expect(store.tasks.listByStatus(['failed', 'lost'])).toEqual([]);
        expect(store.needs.list().filter((n) => n.orphaned)).toEqual([]);
      } finally {
        store.close();
      }
    });
  });

  it('refuses to start when a model cannot be set up (a missing API key), naming the identities', () => {
    return inOwnFolder(async (own) => {
      expect(runCli(['init'], { cwd: own }).code).toBe(0);
      const run = runCli(['run', '--until-idle', '--provider', 'anthropic', '--model', 'claude-test'], {
        cwd: own,
        env: { ANTHROPIC_API_KEY: '' },
      });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(
        "mlos: cannot set up the agents' models: architect, context-manager, janitor: anthropic:claude-test needs an API key: set ANTHROPIC_API_KEY in the environment",
      );
      // Refused before the supervisor ran: no task was created, so no attempt was spent.
      const store = Store.open(join(own, 'mlos.db'));
      try {
        expect(store.tasks.listByStatus(['queued', 'running', 'failed', 'lost'])).toEqual([]);
      } finally {
        store.close();
      }
    });
  });

  it('answers SIGINT in the middle of a backlog of scripted sessions, not once the backlog is done', async () => {
    return inOwnFolder(async (own, here) => {
      expect(here('init').code).toBe(0);
      const store = Store.open(join(own, 'mlos.db'));
      store.transaction(() => {
        for (let i = 0; i < 3000; i++) store.needs.create({ title: `noop ${i}`, tags: ['kernel'] });
      });
      store.close();
      // The noop model never waits for I/O: the event loop must still get turns between sessions.
      const run = spawnMlos(
        ['run', '--provider', 'scripted', '--model', 'noop', '--log-format', 'json'],
        own,
      );
      await waitFor(
        () => run.output().includes('"msg":"session ended: resolved"'),
        30_000,
        'the first session',
      );
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(0);
      expect(run.output()).toContain('"msg":"SIGINT: draining"');
      const stopped = /mlos run stopped \(SIGINT\): (\d+) needs resolved.*; (\d+) open or active remain/.exec(
        run.output(),
      );
      expect(stopped, run.output().slice(-2000)).not.toBeNull();
      expect(Number(stopped![2])).toBeGreaterThan(0);
    });
  });

  it('drains on SIGHUP (a closed terminal) as on SIGTERM, and exits 0', async () => {
    return inOwnFolder(async (own) => {
      const run = spawnMlos(['run', '--demo', '--log-format', 'json'], own);
      await waitFor(() => run.output().includes('mlos run started'), 30_000, 'the run to start');
      run.child.kill('SIGHUP');
      expect(await run.exited).toBe(0);
      expect(run.output()).toContain('"msg":"SIGHUP: draining"');
      expect(run.output()).toContain('mlos run stopped (SIGHUP)');
      expect(JSON.parse(runCli(['status', '--json'], { cwd: own }).stdout).supervisor).toBeNull();
    });
  });
});
