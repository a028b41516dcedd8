import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/index.js';
import { runCli, tempDir } from '../helpers/cli.js';

/** The CLI end to end through the built binary, in a temp folder, as a user runs it. */
describe('mlos CLI', () => {
  let dir: string;
  let cleanup: () => void;
  const mlos = (...args: string[]) => runCli(args, { cwd: dir });
  const snapshot = () => {
    const store = Store.open(join(dir, 'mlos.db'));
    try {
      return { head: store.events.headSeq(), needs: store.needs.list().length };
    } finally {
      store.close();
    }
  };

  beforeAll(() => {
    ({ dir, cleanup } = tempDir());
  });
  afterAll(() => cleanup());

  it('commands that only read refuse a folder with no database and create none', () => {
    for (const args of [['status'], ['need', 'list'], ['audit', 'verify'], ['compile', '--check']]) {
      const r = mlos(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim()).toBe(
        `mlos: no database at ${join(dir, 'mlos.db')}: run \`mlos init\` (or \`mlos run --demo\`) in this folder, or name an existing one with --db or MLOS_DB`,
      );
    }
    expect(existsSync(join(dir, 'mlos.db'))).toBe(false);
  });

  it('init creates the database and copies the example identities', () => {
    const r = mlos('init');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('created database');
    expect(readFileSync(join(dir, 'identities', 'architect.md'), 'utf8')).toContain('name: architect');
    expect(mlos('init').stdout).toContain('already existed');
  });

  it('adds, lists, shows, updates and resolves needs', () => {
    const a = mlos('need', 'add', 'Kernel testable', '--tags', 'kernel,architecture', '--priority', '1');
    expect(a.code).toBe(0);
    const idA = a.stdout.trim();
    expect(idA).toMatch(/^need_[0-9A-Z]{26}$/);
    const b = mlos(
      'need',
      'add',
      'Boot test',
      '--tags',
      'kernel',
      '--depends-on',
      idA,
      '--acceptance',
      'test passes',
    );
    const idB = b.stdout.trim();

    const list = JSON.parse(mlos('need', 'list', '--json').stdout) as { id: string; priority: number }[];
    expect(list.map((n) => n.id)).toEqual([idA, idB]);
    expect(mlos('need', 'list', '--tag', 'architecture').stdout).toContain('Kernel testable');
    expect(mlos('need', 'list', '--status', 'resolved').stdout).toContain('no needs match');

    const shown = JSON.parse(mlos('need', 'show', idB, '--json').stdout) as {
      dependsOn: string[];
      acceptance: string;
    };
    expect(shown.dependsOn).toEqual([idA]);
    expect(shown.acceptance).toBe('test passes');

    const upd = mlos('need', 'update', idB, '--priority', '0', '--expect-version', '1', '--json');
    expect(upd.code).toBe(0);
    expect(JSON.parse(upd.stdout).version).toBe(2);
    const stale = mlos('need', 'update', idB, '--priority', '3', '--expect-version', '1');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('is at version 2, not 1');

    expect(mlos('need', 'resolve', idA).stdout).toContain('resolved');
    const again = mlos('need', 'resolve', idA);
    expect(again.code).toBe(0);
    expect(mlos('need', 'drop', idB, '--reason', 'superseded').stdout).toContain('dropped');
    const illegal = mlos('need', 'reopen', idB);
    expect(illegal.code).toBe(0);
  });

  it('links, registers artifacts, and manages workspaces', () => {
    const id = mlos('need', 'add', 'Artifact holder').stdout.trim();
    const file = join(dir, 'notes.md');
    writeFileSync(file, '# Notes\nsome content\n');
    const art = mlos('artifact', 'add', file, '--need', id, '--json');
    expect(art.code).toBe(0);
    const artId = JSON.parse(art.stdout).id as string;
    const again = mlos('artifact', 'add', file, '--need', id);
    expect(again.stdout).toContain('already registered');
    expect(mlos('artifact', 'list', '--need', id).stdout).toContain(artId);

    const other = mlos('need', 'add', 'Other').stdout.trim();
    expect(mlos('link', id, 'depends_on', other).code).toBe(0);
    const cycle = mlos('link', other, 'depends_on', id);
    expect(cycle.code).toBe(1);
    expect(cycle.stderr).toContain(`depends_on cycle refused: ${other} → ${id} → ${other}`);

    expect(mlos('workspace', 'add', 'kernel', '--tags', 'kernel', '--out', 'views-kernel').code).toBe(0);
    const dup = mlos('workspace', 'add', 'kernel', '--out', 'x');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');
    // One folder per workspace: each compile would remove the other's need pages.
    const shared = mlos('workspace', 'add', 'cleanup', '--tags', 'cleanup', '--out', './views/');
    expect(shared.code).toBe(1);
    expect(shared.stderr.trim()).toBe(
      'mlos: --out ./views/ is the folder of workspace default: give each workspace its own folder',
    );
    expect(
      mlos('workspace', 'add', 'kernel', '--tags', 'kernel', '--out', 'views-kernel', '--replace').code,
    ).toBe(0);
    expect(mlos('workspace', 'list').stdout).toMatch(/kernel\s+tags any of kernel/);
  });

  it('refuses bad input with one clear line and leaves the database unchanged', () => {
    const before = snapshot();
    // A command line that cannot mean anything is a usage error (exit 2); input the store refuses,
    // or a file that is not there, is a failure (exit 1).
    const cases: [string[], RegExp, number?][] = [
      [['need', 'add', 'x', '--tags', 'Bad Tag'], /tag "Bad Tag" is malformed/],
      [
        ['need', 'add', 'x', '--priority', '7'],
        /--priority 7 is out of range: use 0 \(highest\) to 4 \(lowest\)/,
        2,
      ],
      [['need', 'add', 'x', '--priority', 'high'], /--priority must be a whole number/, 2],
      [['need', 'add', '   '], /title must not be empty/],
      [
        ['need', 'add', 'x', '--depends-on', 'need_01AAAAAAAAAAAAAAAAAAAAAAAA'],
        /need need_01AAAAAAAAAAAAAAAAAAAAAAAA does not exist/,
      ],
      [['need', 'add', 'x', '--depends-on', 'nope'], /"nope" is not a need id/, 2],
      [['need', 'show', 'need_01AAAAAAAAAAAAAAAAAAAAAAAA'], /does not exist/],
      [
        ['link', 'need_01AAAAAAAAAAAAAAAAAAAAAAAA', 'blocks', 'need_01AAAAAAAAAAAAAAAAAAAAAAAB'],
        /unknown relation "blocks": use one of depends_on/,
      ],
      [['need', 'add', 'x', '--cadence', '1h'], /--cadence needs --standing/, 2],
      [['need', 'list', '--limit', '0'], /--limit must be a whole number of at least 1, not 0/, 2],
      [['need', 'add', 'x', '--standing', '--cadence', 'soon'], /is not a duration/, 2],
      [['artifact', 'add', join(dir, 'missing.txt')], /no such file/],
      [['run', '--concurrency', '0'], /--concurrency must be a whole number of at least 1, not 0/, 2],
      // Checked before the demo seeds its needs.
      [['run', '--demo', '--lease', 'bogus'], /--lease "bogus" is not a duration/, 2],
      [['run', '--max-attempts', '0'], /--max-attempts must be a whole number of at least 1/, 2],
      [['run', '--run-tokens', '-5'], /--run-tokens must be a whole number of at least 1, not -5/, 2],
      [['run', '--redis', 'redis://127.0.0.1:6379/x'], /is not a Redis URL/, 2],
      // Refused before a token is generated and printed (the one-line check below).
      [['run', '--listen', '0.0.0.0:7499'], /refusing to serve the guard on 0\.0\.0\.0 without tokens/],
      [['mcp', '--http', '0.0.0.0:7499'], /refusing to serve the guard on 0\.0\.0\.0 without tokens/],
      [['run', '--redis', 'http://x'], /--redis "http:\/\/x" is not a Redis URL: use redis:\/\/HOST:PORT/, 2],
      [
        ['worker', '--redis', 'localhost:6379', '--mcp', 'http://127.0.0.1:1/mcp'],
        /--redis "localhost:6379" is not a Redis URL/,
        2,
      ],
      [
        ['worker', '--redis', 'redis://127.0.0.1:6379', '--mcp', 'notaurl', '--token', 't'],
        /--mcp notaurl is not an http\(s\) URL: give the guard's MCP endpoint/,
        2,
      ],
      // Checked before anything connects (nothing listens on port 1).
      [
        [
          'worker',
          '--redis',
          'redis://127.0.0.1:6379',
          '--mcp',
          'http://127.0.0.1:1/mcp',
          '--token',
          't',
          '--heartbeat',
          'x',
        ],
        /--heartbeat "x" is not a duration/,
        2,
      ],
    ];
    for (const [args, message, code = 1] of cases) {
      const r = mlos(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const big = join(dir, 'big.txt');
    writeFileSync(big, 'x'.repeat(10 * 1024 * 1024));
    const r = mlos('need', 'add', 'big', '--body-file', big);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the limit is 1048576 bytes (1 MiB)');
    expect(snapshot()).toEqual(before);
  });

  it('stores a title full of SQL metacharacters verbatim', () => {
    const title = `Robert'); DROP TABLE needs; -- "%_\\ ; SELECT * FROM events`;
    const id = mlos('need', 'add', title).stdout.trim();
    expect(JSON.parse(mlos('need', 'show', id, '--json').stdout).title).toBe(title);
  });

  it('usage errors exit 2', () => {
    expect(mlos('need', 'add').code).toBe(2);
    expect(mlos('frobnicate').code).toBe(2);
    expect(mlos('need', 'list', '--bogus').code).toBe(2);
  });

  it('verifies the audit chain and backs up', () => {
    const v = mlos('audit', 'verify', '--json');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).ok).toBe(true);
    const b = mlos('backup', join(dir, 'copy.db'));
    expect(b.code).toBe(0);
    const copy = Store.open(join(dir, 'copy.db'));
    try {
      expect(copy.events.verify().ok).toBe(true);
      expect(copy.needs.list().length).toBe(snapshot().needs);
    } finally {
      copy.close();
    }
    expect(mlos('backup', join(dir, 'copy.db')).stderr).toContain('already exists');
  });
});
