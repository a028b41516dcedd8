// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScript } from '../../../../src/agents/providers/script-schema.js';
import { BUILTIN_SCRIPT_NAMES, loadScript } from '../../../../src/agents/providers/scripted.js';
import { UserError } from '../../../../src/store/errors.js';

const finish = { tool: 'finish', args: { outcome: 'resolved', summary: 'done' } };

function problem(value: unknown): string {
  try {
    parseScript(value, 'my.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as UserError).message;
  }
  throw new Error('the script was accepted');
}

describe('parseScript', () => {
  it('names the field of a wrong type', () => {
    expect(problem({ rules: [{ steps: [{ tool: 3 }, finish] }] })).toMatch(
      /^my\.yaml: rules\[0\]\.steps\[0\]\.tool: must be a tool name/,
    );
    expect(problem({ rules: [{ steps: [{ tool: 'x', fail: ['boom'] }, finish] }] })).toMatch(
      /rules\[0\]\.steps\[0\]\.fail\[0\]: must be one of rate_limit, server, timeout, malformed/,
    );
    expect(problem({ rules: [{ steps: [{ args: {} }, finish] }] })).toMatch(
      /rules\[0\]\.steps\[0\]: needs a tool .* or say/,
    );
  });

  it('refuses unknown fields (typos)', () => {
    expect(problem({ rules: [{ steps: [{ tool: 'x', arg: {} }, finish] }] })).toMatch(
      /rules\[0\]\.steps\[0\].*arg/,
    );
  });

  it('refuses a reference to a label no earlier step defines, listing the labels', () => {
    const msg = problem({
      rules: [
        {
          steps: [
            { tool: 'create_need', args: { title: 't' }, as: 'sub' },
            { tool: 'link', args: { to: '${steps.subb.id}' } },
            finish,
          ],
        },
      ],
    });
    expect(msg).toBe(
      'my.yaml: rules[0].steps[1].args.to: ${steps.subb.id} refers to "subb", which no earlier step defines with as: (labels so far: sub)',
    );
  });

  it('refuses unknown reference roots and context fields', () => {
    expect(problem({ rules: [{ steps: [{ tool: 'x', args: { a: '${nede.id}' } }, finish] }] })).toMatch(
      /must start with need\., task\., identity or steps\./,
    );
    expect(problem({ rules: [{ steps: [{ tool: 'x', args: { a: '${need.owner}' } }, finish] }] })).toMatch(
      /need\.id, need\.title, need\.tags/,
    );
  });

  it('requires every rule to end with an unconditional finish', () => {
    expect(problem({ rules: [{ steps: [{ tool: 'get_need' }] }] })).toMatch(
      /rules\[0\]\.steps: the last step must be a finish call without when/,
    );
    expect(problem({ rules: [{ steps: [{ ...finish, when: { path: 'need.id', exists: true } }] }] })).toMatch(
      /last step must be a finish/,
    );
  });

  it('needs exactly one operator in when, and failure rates that add up to at most 1', () => {
    expect(problem({ rules: [{ steps: [{ tool: 'x', when: { path: 'need.id' } }, finish] }] })).toMatch(
      /when: needs exactly one of/,
    );
    expect(
      problem({ failures: { rates: { server: 0.7, timeout: 0.5 } }, rules: [{ steps: [finish] }] }),
    ).toMatch(/add up to more than 1/);
  });

  it('refuses an invalid title regex', () => {
    expect(problem({ rules: [{ match: { title: '([' }, steps: [finish] }] })).toMatch(
      /rules\[0\]\.match\.title: is not a valid regular expression/,
    );
  });
});

describe('loadScript', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mlos-script-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads every built-in script by name', () => {
    expect([...BUILTIN_SCRIPT_NAMES].sort()).toEqual(['default', 'demo', 'noop']);
    for (const name of BUILTIN_SCRIPT_NAMES) expect(loadScript(name).rules.length).toBeGreaterThan(0);
  });

  it('loads a YAML file relative to cwd and a JSON file', () => {
    writeFileSync(
      join(dir, 'mine.yaml'),
      [
        'latency_ms: 5',
        'rules:',
        '  - steps:',
        '      - tool: finish',
        '        args: { outcome: resolved, summary: yaml }',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'mine.json'), JSON.stringify({ rules: [{ steps: [finish] }] }));
    expect(loadScript('./mine.yaml', { cwd: dir }).latency_ms).toBe(5);
    expect(loadScript(join(dir, 'mine.json')).rules).toHaveLength(1);
  });

  it('names the file and the field when a file is wrong', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'rules:\n  - steps:\n      - tool: finish\n        args: 3\n');
    expect(() => loadScript('bad.yaml', { cwd: dir })).toThrow(
      /^bad\.yaml: rules\[0\]\.steps\[0\]\.args: must be a mapping/,
    );
  });

  it('says what exists when a name or a file is unknown', () => {
    expect(() => loadScript('demoo')).toThrow(
      /unknown script "demoo": use one of default, demo, noop or a path/,
    );
    expect(() => loadScript('./missing.yaml', { cwd: dir })).toThrow(
      /cannot read .*missing\.yaml \(no such file\)/,
    );
  });

  it('reports a YAML syntax error with the file', () => {
    writeFileSync(join(dir, 'broken.yaml'), 'rules: [\n');
    expect(() => loadScript('broken.yaml', { cwd: dir })).toThrow(/^broken\.yaml: not valid YAML or JSON/);
  });
});
