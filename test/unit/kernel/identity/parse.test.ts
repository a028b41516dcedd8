import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BUDGET_DEFAULTS,
  DEFAULT_MODEL,
  didYouMean,
  IdentityFileError,
  loadIdentityDir,
  parseIdentity,
  safeParseIdentity,
  TAKEOVER_DEFAULTS,
} from '../../../../src/kernel/identity/index.js';
import { AGENT_TOOLS, REQUIRED_TOOLS } from '../../../../src/kernel/tools.js';
import { UserError } from '../../../../src/store/index.js';

const EXAMPLES = resolve(import.meta.dirname, '../../../../identities');
const DOCS = resolve(import.meta.dirname, '../../../../docs/identities.md');
const FILE = 'identities/x.md';

const MINIMAL = ['name: x', 'objective: Keep x tidy.', 'scope: { primary: [cleanup] }'];

function doc(frontMatter: readonly string[], body = '\n# X\n\nDo the work.\n'): string {
  return `---\n${frontMatter.join('\n')}\n---\n${body}`;
}

function errorOf(text: string | Uint8Array, file = FILE): IdentityFileError {
  const result = safeParseIdentity(text, { file });
  if (result.ok) throw new Error(`expected ${file} to fail lint, but it parsed`);
  expect(result.error).toBeInstanceOf(IdentityFileError);
  expect(result.error).toBeInstanceOf(UserError);
  return result.error;
}

describe('the example identities', () => {
  it('lint clean and express the three roles of the seed', () => {
    const loaded = loadIdentityDir(EXAMPLES);
    expect(loaded.errors.map((e) => e.message)).toEqual([]);
    expect(loaded.identities.map((i) => i.name)).toEqual(['architect', 'context-manager', 'janitor']);
    const byName = new Map(loaded.identities.map((i) => [i.name, i]));
    expect(byName.get('architect')!.scope.primary).toEqual(['kernel', 'architecture', 'methodology']);
    expect(byName.get('context-manager')!.scope.primary).toEqual(['context', 'retrieval', 'compilation']);
    expect(byName.get('janitor')!.scope.primary).toEqual(['cleanup', 'schema', 'enforcement']);
    expect(byName.get('janitor')!.takeover.grace).toBe(45_000);
    expect(byName.get('janitor')!.invariants[0]).toContain('does not exist: turn conventions');
  });
});

describe('the documented example', () => {
  it('lints clean', () => {
    const example = /```markdown\n([\s\S]*?)```/.exec(readFileSync(DOCS, 'utf8'))?.[1];
    expect(example).toBeDefined();
    const identity = parseIdentity(example!, { file: 'docs/identities.md (example)', name: 'janitor' });
    expect(identity.model.provider).toBe('anthropic');
    expect(identity.tools).toContain('finish');
  });
});

describe('parseIdentity', () => {
  it('applies every default and maps snake_case keys to the camelCase Identity', () => {
    const identity = parseIdentity(doc(MINIMAL), { file: FILE });
    expect(identity).toMatchObject({
      name: 'x',
      objective: 'Keep x tidy.',
      invariants: [],
      scope: { primary: ['cleanup'], peripheral: [] },
      capacity: 1,
      budgets: { perTask: BUDGET_DEFAULTS.perTask, perDay: BUDGET_DEFAULTS.perDay },
      takeover: { ...TAKEOVER_DEFAULTS },
      prompt: '# X\n\nDo the work.',
    });
    expect(identity.model.spec).toBe(DEFAULT_MODEL);
    expect(identity.tools).toEqual([...AGENT_TOOLS].sort());
  });

  it('always grants the tools a session needs to finish and stay within budget', () => {
    const identity = parseIdentity(doc([...MINIMAL, 'tools: [get_need, get_need]']), { file: FILE });
    expect(identity.tools).toEqual(['get_need', ...REQUIRED_TOOLS].sort());
  });

  it('reads durations, budgets and models', () => {
    const identity = parseIdentity(
      doc([
        ...MINIMAL,
        'model: openai-compatible:llama3@http://127.0.0.1:11434/v1',
        'budgets: { per_task: 1000, per_day: 5000 }',
        'takeover: { grace: 1.5m, peripheral_delay: 250, cooldown: 2h, escalation: 1d }',
      ]),
      { file: FILE },
    );
    expect(identity.model).toEqual({
      provider: 'openai-compatible',
      model: 'llama3',
      baseUrl: 'http://127.0.0.1:11434/v1',
      spec: 'openai-compatible:llama3@http://127.0.0.1:11434/v1',
    });
    expect(identity.budgets).toEqual({ perTask: 1000, perDay: 5000 });
    expect(identity.takeover).toEqual({
      grace: 90_000,
      peripheralDelay: 250,
      cooldown: 7_200_000,
      escalation: 86_400_000,
    });
  });

  it('hashes the exact bytes and keeps them, BOM and CRLF included', () => {
    const text = `\uFEFF${doc(MINIMAL).replace(/\n/g, '\r\n')}`;
    const bytes = Buffer.from(text, 'utf8');
    const identity = parseIdentity(bytes, { file: FILE });
    expect(identity.hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(Buffer.from(identity.source, 'utf8').equals(bytes)).toBe(true);
    expect(identity.prompt).toBe('# X\n\nDo the work.');
  });

  it('returns a deeply frozen identity that cannot be changed by any holder', () => {
    const identity = parseIdentity(doc(MINIMAL), { file: FILE });
    for (const part of [identity, identity.scope, identity.scope.primary, identity.tools, identity.model]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(Object.isFrozen(identity.budgets) && Object.isFrozen(identity.takeover)).toBe(true);
    expect(() => {
      (identity.scope.primary as string[]).push('kernel');
    }).toThrow(TypeError);
    expect(() => {
      (identity as { capacity: number }).capacity = 9;
    }).toThrow(TypeError);
    expect(identity.capacity).toBe(1);
  });
});

interface BadCase {
  readonly title: string;
  readonly text: string | Uint8Array;
  readonly file?: string;
  readonly field: string | null;
  /** Every fragment must appear in the message of the issue about `field`. */
  readonly says: readonly string[];
}

const without = (key: string) => MINIMAL.filter((l) => !l.startsWith(`${key}:`));

const BAD: readonly BadCase[] = [
  {
    title: 'missing name',
    text: doc(without('name')),
    field: 'name',
    says: ['name is required', 'file name'],
  },
  {
    title: 'name other than the file name',
    text: doc(['name: y', ...without('name')]),
    field: 'name',
    says: ['name "y" does not match the file name', 'name: x'],
  },
  {
    title: 'empty scope.primary',
    text: doc([...without('scope'), 'scope: { primary: [] }']),
    field: 'scope.primary',
    says: ['scope.primary must list at least one tag (e.g. [cleanup])'],
  },
  {
    title: 'unknown field, with a suggestion',
    text: doc([...without('scope'), 'scop: { primary: [cleanup] }', 'scope: { primary: [cleanup] }']),
    field: 'scop',
    says: ['unknown field "scop" (did you mean "scope"?)'],
  },
  {
    title: 'unknown nested field, in another spelling',
    text: doc([...MINIMAL, 'budgets: { perTask: 10 }']),
    field: 'budgets.perTask',
    says: ['unknown field "budgets.perTask" (did you mean "budgets.per_task"?)'],
  },
  {
    title: 'nested field that lost its indentation',
    text: doc([...MINIMAL, 'peripheral: [schema]']),
    field: 'peripheral',
    says: ['did you mean "scope.peripheral"?', 'indent it under scope:'],
  },
  {
    title: 'unknown field without any close match',
    text: doc([...MINIMAL, 'colour: blue']),
    field: 'colour',
    says: ['unknown field "colour"', 'the fields here are name, objective'],
  },
  {
    title: 'unknown tool',
    text: doc([...MINIMAL, 'tools: [get_need, get_neds]']),
    field: 'tools[1]',
    says: ['unknown tool "get_neds" (did you mean "get_need"?)'],
  },
  {
    title: 'operator tool',
    text: doc([...MINIMAL, 'tools: [graduate]']),
    field: 'tools[0]',
    says: ['graduate is an operator tool', 'cannot be given to an agent'],
  },
  {
    title: 'bad model spec',
    text: doc([...MINIMAL, 'model: gpt-4o']),
    field: 'model',
    says: ['model must be a model spec', 'anthropic:MODEL', 'not "gpt-4o"'],
  },
  {
    title: 'openai-compatible model without a base URL',
    text: doc([...MINIMAL, 'model: openai-compatible:llama3']),
    field: 'model',
    says: ['needs a model and a base URL', 'openai-compatible:MODEL@http'],
  },
  {
    title: 'bad duration',
    text: doc([...MINIMAL, 'takeover: { grace: soon }']),
    field: 'takeover.grace',
    says: ['takeover.grace must be a duration such as 30s, 5m', 'not "soon"'],
  },
  {
    title: 'zero duration',
    text: doc([...MINIMAL, 'takeover: { cooldown: 0s }']),
    field: 'takeover.cooldown',
    says: ['takeover.cooldown must be a duration'],
  },
  {
    title: 'escalation before peripheral agents may claim',
    text: doc([...MINIMAL, 'takeover: { grace: 5m, peripheral_delay: 5m, escalation: 10m }']),
    field: 'takeover.escalation',
    says: ['takeover.escalation (10m) must be longer than takeover.grace + takeover.peripheral_delay (10m)'],
  },
  {
    title: 'capacity 0',
    text: doc([...MINIMAL, 'capacity: 0']),
    field: 'capacity',
    says: ['capacity must be at least 1'],
  },
  {
    title: 'capacity given as text',
    text: doc([...MINIMAL, 'capacity: "2"']),
    field: 'capacity',
    says: ['capacity must be a whole number from 1 to 64', 'not "2"'],
  },
  {
    title: 'per-task budget above the daily budget',
    text: doc([...MINIMAL, 'budgets: { per_task: 500, per_day: 100 }']),
    field: 'budgets.per_task',
    says: ['budgets.per_task (500) is larger than budgets.per_day (100)'],
  },
  {
    title: 'an invariant that YAML read as a mapping',
    text: doc([...MINIMAL, 'invariants:', '  - A rule: one sentence']),
    field: 'invariants[0]',
    says: ['invariants[0] must be a sentence (quote it when it contains ": ")'],
  },
  {
    title: 'missing objective',
    text: doc(without('objective')),
    field: 'objective',
    says: ['objective is required'],
  },
  {
    title: 'a malformed tag',
    text: doc([...without('scope'), 'scope: { primary: [Clean Up] }']),
    field: 'scope.primary[0]',
    says: ['tag "Clean Up" is malformed'],
  },
  {
    title: 'invalid YAML, with its line in the file',
    text: doc([...without('scope'), 'scope:', '  primary: [cleanup']),
    field: null,
    says: [`${FILE}:5: invalid YAML`, 'indented'],
  },
  {
    title: 'a duplicated key',
    text: doc([...MINIMAL, 'capacity: 1', 'capacity: 2']),
    field: null,
    says: ['invalid YAML: Map keys must be unique'],
  },
  {
    title: 'no front matter',
    text: '# Janitor\n\nClean up.\n',
    field: null,
    says: ['no front matter', "'---'"],
  },
  {
    title: 'front matter never closed',
    text: `---\n${MINIMAL.join('\n')}\n# X\n`,
    field: null,
    says: ["the front matter is not closed: add a line '---'"],
  },
  { title: 'an empty file', text: '', field: null, says: ['the file is empty'] },
  { title: 'empty front matter', text: doc([]), field: null, says: ['the front matter is empty'] },
  {
    title: 'front matter that is a list',
    text: doc(['- a', '- b']),
    field: null,
    says: ['the front matter must be YAML fields', 'not a list'],
  },
  {
    title: 'empty prompt body',
    text: doc(MINIMAL, '\n   \n\n'),
    field: null,
    says: [`${FILE}:6: the prompt is empty`],
  },
  {
    title: 'bytes that are not UTF-8',
    text: Buffer.concat([Buffer.from(doc(MINIMAL)), Buffer.from([0xff, 0xfe])]),
    field: null,
    says: ['not valid UTF-8'],
  },
  {
    title: 'a file name that is not an identity name',
    text: doc(MINIMAL),
    file: 'identities/My Agent.md',
    field: null,
    says: ['the file name "My Agent" is not a valid identity name', 'rename the file'],
  },
];

describe('a bad identity file gets a message naming the file, the field and the fix', () => {
  it.each(BAD)('$title', ({ text, file = FILE, field, says }) => {
    const error = errorOf(text, file);
    const match = error.issues.find((i) => i.field === field);
    expect(match, `no issue about ${field}; got:\n${error.message}`).toBeDefined();
    expect(match!.message.startsWith(`${file}`)).toBe(true);
    if (field !== null) expect(match!.message).toContain(field.replace(/\[\d+\]$/, ''));
    for (const fragment of says) expect(match!.message).toContain(fragment);
    expect(error.message).toContain(match!.message);
    expect(match!.message).not.toMatch(/Invalid input|expected \w+, received/);
  });

  it('reports the line of the field when it is known', () => {
    const error = errorOf(doc([...MINIMAL, 'capacity: 0']));
    expect(error.issues).toEqual([
      expect.objectContaining({
        field: 'capacity',
        line: 5,
        message: expect.stringMatching(/^identities\/x\.md:5: /),
      }),
    ]);
  });

  it('collects every issue of a file instead of stopping at the first', () => {
    const error = errorOf(
      doc(['name: y', 'objective: ""', 'scop: { primary: [a] }', 'capacity: 0', 'tools: [graduate]'], '\n'),
    );
    expect(error.issues.map((i) => i.field)).toEqual(
      expect.arrayContaining(['name', 'objective', 'scope', 'scop', 'capacity', 'tools[0]', null]),
    );
    expect(error.message.split('\n')).toHaveLength(error.issues.length);
  });
});

describe('loadIdentityDir', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('returns the good identities and one error per bad file, skipping README.md', () => {
    dir = mkdtempSync(join(tmpdir(), 'mlos-identities-'));
    writeFileSync(join(dir, 'x.md'), doc(MINIMAL));
    writeFileSync(
      join(dir, 'bad.md'),
      doc(['name: bad', 'objective: o', 'scope: { primary: [] }', 'capacity: 0']),
    );
    writeFileSync(join(dir, 'worse.md'), 'no front matter\n');
    writeFileSync(join(dir, 'README.md'), '# About these identities\n');
    writeFileSync(join(dir, 'notes.txt'), 'not an identity\n');
    const loaded = loadIdentityDir(dir);
    expect(loaded.identities.map((i) => i.name)).toEqual(['x']);
    expect(loaded.files.map((f) => f.name)).toEqual(['bad', 'worse', 'x']);
    expect(loaded.errors.map((e) => e.issues.length)).toEqual([2, 1]);
  });

  it('refuses a folder that does not exist, saying what to do', () => {
    expect(() => loadIdentityDir(join(tmpdir(), 'mlos-no-such-folder'))).toThrow(
      /does not exist: create it with `mlos init`/,
    );
  });
});

describe('didYouMean', () => {
  it('suggests close spellings and nothing for unrelated words', () => {
    const fields = ['name', 'objective', 'scope', 'tools', 'capacity', 'per_task', 'peripheral_delay'];
    expect(didYouMean('scop', fields)).toBe('scope');
    expect(didYouMean('tool', fields)).toBe('tools');
    expect(didYouMean('perTask', fields)).toBe('per_task');
    expect(didYouMean('peripheral-delay', fields)).toBe('peripheral_delay');
    expect(didYouMean('capasity', fields)).toBe('capacity');
    expect(didYouMean('colour', fields)).toBeNull();
  });
});
