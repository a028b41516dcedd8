import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GUARD_TOOLS } from '../../../src/kernel/tools.js';
import { OPERATOR, type Principal } from '../../../src/mcp/index.js';
import { call, createGuardWorld } from '../../helpers/guard.js';

/** A reference to an id created earlier in the run, resolved when the call is made. */
type Ref = { ref: 'need' | 'task' | 'art'; index: number };

const str = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    'kernel',
    'Bad Tag',
    "'; DROP TABLE needs; --",
    'need_01AAAAAAAAAAAAAAAAAAAAAAAA',
    'ptr:art_x',
  ),
);
const num = fc.oneof(fc.integer({ min: -3, max: 10 }), fc.constantFrom(0, 1, 5000, 1e9, 2.5, -1));
const ref = (kind: Ref['ref']) => fc.record({ ref: fc.constant(kind), index: fc.nat(12) });
const value = fc.oneof(
  str,
  num,
  fc.boolean(),
  fc.constant(null),
  fc.array(str, { maxLength: 3 }),
  ref('need'),
);

const argArbs: Record<string, fc.Arbitrary<unknown>> = {
  id: fc.oneof(ref('need'), str),
  need_id: fc.oneof(ref('need'), ref('need'), str),
  from: fc.oneof(ref('need'), ref('art'), str),
  to: fc.oneof(ref('need'), ref('art'), str),
  task_id: fc.oneof(ref('task'), str),
  title: fc.oneof(str, fc.constant('A real title')),
  body: str,
  tags: fc.oneof(fc.constant(['kernel']), fc.constant(['cleanup']), fc.array(str, { maxLength: 3 })),
  priority: num,
  scope: fc.oneof(str, fc.constant('Sprint_X')),
  acceptance: str,
  depends_on: fc.array(fc.oneof(ref('need'), str), { maxLength: 2 }),
  version: num,
  rel: fc.constantFrom('depends_on', 'references', 'child_of', 'blocks', 'supersedes'),
  kind: fc.constantFrom('note', 'file', 'url', 'result', 'bogus'),
  uri: str,
  content: str,
  summary: str,
  pointer: str,
  budget: num,
  file: fc.constantFrom('PROBLEM.md', 'README.md', '../etc/passwd', 'nope.md'),
  workspace: fc.constantFrom('default', 'nope', 'Bad'),
  identity: fc.constantFrom('architect', 'janitor', 'context-manager', 'ghost'),
  name: fc.constantFrom('architect', 'janitor', 'ghost'),
  turns: num,
  tokens: num,
  tool_calls: num,
  outcome: fc.constantFrom('resolved', 'progressed', 'blocked', 'failed', 'maybe'),
  reason: str,
  sub_needs: fc.array(fc.record({ title: str, tags: fc.constant(['kernel']) }), { maxLength: 2 }),
  reservation_id: num,
  input_tokens: num,
  output_tokens: num,
  fencing_token: num,
  status: fc.array(fc.constantFrom('open', 'active', 'resolved', 'bogus'), { maxLength: 2 }),
  text: str,
  limit: num,
  cursor: str,
};

const callArb = fc.record({
  tool: fc.constantFrom(...GUARD_TOOLS, 'no_such_tool'),
  args: fc.dictionary(fc.constantFrom(...Object.keys(argArbs)), value, { maxKeys: 6 }).chain((base) =>
    fc
      .record(
        Object.fromEntries(Object.keys(argArbs).map((k) => [k, fc.option(argArbs[k]!, { nil: undefined })])),
      )
      .map((specific) => ({
        ...base,
        ...Object.fromEntries(Object.entries(specific).filter(([, v]) => v !== undefined)),
      })),
  ),
  as: fc.constantFrom('operator', 'architect', 'janitor'),
});

describe('guard fuzz', () => {
  it('survives 2,000 generated calls across every tool with the chain intact', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    let calls = 0;
    const internal: string[] = [];
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(callArb, { minLength: 200, maxLength: 200 }), async (script) => {
          const world = createGuardWorld();
          const ids = { need: [] as string[], task: [] as string[], art: [] as string[] };
          const principals: Record<string, Principal> = {
            operator: OPERATOR,
            architect: { kind: 'agent', identity: world.identity('architect') },
            janitor: { kind: 'agent', identity: world.identity('janitor') },
          };
          const clients = Object.fromEntries(
            await Promise.all(
              Object.entries(principals).map(async ([k, p]) => [k, await world.client(p)] as const),
            ),
          );
          const resolve = (v: unknown): unknown => {
            if (Array.isArray(v)) return v.map(resolve);
            if (v && typeof v === 'object' && 'ref' in v) {
              const r = v as Ref;
              const pool = ids[r.ref];
              return pool.length ? pool[r.index % pool.length] : `${r.ref}_01AAAAAAAAAAAAAAAAAAAAAAAA`;
            }
            return v;
          };
          try {
            for (const step of script) {
              const args = Object.fromEntries(Object.entries(step.args).map(([k, v]) => [k, resolve(v)]));
              const result = await call(clients[step.as]!, step.tool, args);
              calls++;
              if (
                result.isError &&
                /internal error|Output validation error/.test(JSON.stringify(result.content))
              ) {
                internal.push(
                  `${step.tool} ${JSON.stringify(args).slice(0, 200)} → ${JSON.stringify(result.content).slice(0, 200)}`,
                );
              }
              expect(typeof (result.isError ?? false)).toBe('boolean');
              const sc = result.structuredContent as Record<string, unknown> | undefined;
              if (!result.isError && sc) {
                if (step.tool === 'create_need' && typeof sc['id'] === 'string') ids.need.push(sc['id']);
                if (typeof sc['taskId'] === 'string') ids.task.push(sc['taskId']);
                if (
                  step.tool !== 'create_need' &&
                  typeof sc['id'] === 'string' &&
                  sc['id'].startsWith('art_')
                )
                  ids.art.push(sc['id']);
                for (const sub of (sc['subNeeds'] as string[] | undefined) ?? []) ids.need.push(sub);
              }
            }
            expect(world.store.events.verify().ok).toBe(true);
            for (const id of ids.need)
              expect(
                world.store.tasks.forNeed(id).filter((t) => t.status === 'queued' || t.status === 'running')
                  .length,
              ).toBeLessThanOrEqual(1);
          } finally {
            await world.close();
          }
        }),
        { numRuns: 10 },
      );
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(calls).toBeGreaterThanOrEqual(2000);
    expect(unhandled).toEqual([]);
    // Every refusal is an mlos error with a message for the model, never an internal failure.
    expect(internal).toEqual([]);
  });
});
