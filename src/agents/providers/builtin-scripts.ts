// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references, resolved by the scripted provider.
import type { ScriptInput } from './script-schema.js';

/*
 * Built-in scripts, loadable by name (`model: scripted:demo` in an identity file). They are code
 * constants rather than files so that the published package (which ships dist/ only) has them.
 * They are validated by the same schema as script files.
 */

/** Finishes resolved at once with a short summary: the model of an identity that names none. */
const DEFAULT_SCRIPT: ScriptInput = {
  name: 'default',
  description: 'Resolve every need at once, without reading it.',
  rules: [
    {
      steps: [
        {
          tool: 'finish',
          args: {
            outcome: 'resolved',
            summary: 'Scripted default model: marked ${need.id} resolved without doing any work.',
          },
        },
      ],
    },
  ],
};

/** The least a session can do: one finish call. For benchmarks of the machinery around the model. */
const NOOP_SCRIPT: ScriptInput = {
  name: 'noop',
  description: 'One finish call, nothing else (benchmarks).',
  rules: [{ steps: [{ tool: 'finish', args: { outcome: 'resolved', summary: 'noop' } }] }],
};

const readNeed = { tool: 'get_need', args: { id: '${need.id}' }, as: 'need' } as const;

/**
 * A standing need is never resolved (the guard refuses it): its round of work ends as progressed,
 * and it graduates again on its cadence. Played in place of the resolving finish that follows it.
 */
const finishStanding = (summary: string) =>
  ({
    when: { path: 'steps.need.need.mode', equals: 'standing' },
    tool: 'finish',
    args: { outcome: 'progressed', summary: `${summary} (a standing need: done for this round)` },
  }) as const;

/**
 * A small, plausible session per example identity. The architect blocks a need tagged
 * `architecture` on its first attempt (one with no dependencies yet) with a sub-need for a design
 * record, and resolves it once that sub-need is met and the need comes back.
 */
const DEMO_SCRIPT: ScriptInput = {
  name: 'demo',
  description: 'Plausible sessions for the example identities (architect, context-manager, janitor).',
  rules: [
    {
      name: 'architect on an architecture need',
      match: { identity: 'architect', tags: ['architecture'] },
      steps: [
        { ...readNeed, say: 'Reading the need before touching the structure.' },
        {
          tool: 'add_note',
          args: {
            need_id: '${need.id}',
            title: 'Structural review',
            content:
              'Checked "${steps.need.need.title}" against the layering rule (store ← kernel ← agents): the change must keep dependencies pointing down and be enforced by code, not by memory.',
          },
        },
        {
          when: { path: 'steps.need.dependsOn.length', equals: 0 },
          say: 'This needs a recorded design decision before anyone builds on it.',
          tool: 'finish',
          args: {
            outcome: 'blocked',
            summary: 'Blocked on a design decision record; resume once it is written.',
            sub_needs: [
              {
                title: 'Record the design decision for: ${steps.need.need.title}',
                body: 'Write down the options considered, the decision and its reason, as a note on ${need.id}.',
                tags: ['kernel', 'methodology'],
                acceptance: 'a decision note with options, choice and reason exists on the parent need',
              },
            ],
          },
        },
        finishStanding('The design decision is recorded and the structure holds.'),
        {
          tool: 'finish',
          args: {
            outcome: 'resolved',
            summary: 'The design decision is recorded and the structure holds; resolved.',
          },
        },
      ],
    },
    {
      name: 'architect',
      match: { identity: 'architect' },
      steps: [
        readNeed,
        {
          tool: 'add_note',
          args: {
            need_id: '${need.id}',
            title: 'Architect review',
            content:
              'Reviewed "${steps.need.need.title}": consistent with the kernel layering; no structural change needed.',
          },
        },
        finishStanding('Reviewed by the architect.'),
        { tool: 'finish', args: { outcome: 'resolved', summary: 'Reviewed and resolved by the architect.' } },
      ],
    },
    {
      name: 'context-manager',
      match: { identity: 'context-manager' },
      steps: [
        readNeed,
        { tool: 'get_pack', args: { need_id: '${need.id}' }, as: 'pack' },
        {
          tool: 'add_note',
          args: {
            need_id: '${need.id}',
            title: 'Context check',
            content:
              'The context pack for "${steps.need.need.title}" was compiled within its budget; pointers cover what was left out.',
          },
        },
        finishStanding('Context verified.'),
        { tool: 'finish', args: { outcome: 'resolved', summary: 'Context verified; resolved.' } },
      ],
    },
    {
      name: 'janitor',
      match: { identity: 'janitor' },
      steps: [
        readNeed,
        {
          tool: 'add_note',
          args: {
            need_id: '${need.id}',
            title: 'Cleanup',
            content:
              'Checked "${steps.need.need.title}" and its tags ${steps.need.need.tags}; nothing left untidy.',
          },
        },
        finishStanding('Cleaned up.'),
        { tool: 'finish', args: { outcome: 'resolved', summary: 'Cleaned up; resolved.' } },
      ],
    },
    {
      name: 'anyone else',
      steps: [
        readNeed,
        {
          tool: 'add_note',
          args: {
            need_id: '${need.id}',
            title: 'Progress',
            content: 'Looked at "${steps.need.need.title}" and did the work it asks for.',
          },
        },
        finishStanding('Done.'),
        { tool: 'finish', args: { outcome: 'resolved', summary: 'Done; resolved.' } },
      ],
    },
  ],
};

/** Built-in scripts by name. */
export const BUILTIN_SCRIPTS: Readonly<Record<string, ScriptInput>> = {
  default: DEFAULT_SCRIPT,
  demo: DEMO_SCRIPT,
  noop: NOOP_SCRIPT,
};
