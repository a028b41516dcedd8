import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { ARTIFACT_KINDS, EDGE_RELS } from '../../store/index.js';
import { GuardRefusal, ok } from '../result.js';
import type { GuardSession } from '../session.js';
import { defineTool } from './define.js';

const NewNeedShape = {
  title: z.string(),
  body: z.string().optional(),
  tags: z.array(z.string()).optional(),
  priority: z.number().int().optional().describe('0 highest … 4 lowest, default 2'),
  scope: z.string().optional(),
  acceptance: z.string().optional().describe('what "met" means'),
  depends_on: z.array(z.string()).optional().describe('need ids this one waits for'),
};

/** Write tools: create_need, update_need, link, register_artifact, add_note. */
export function registerWriteTools(server: McpServer, session: GuardSession): void {
  const { store } = session;

  defineTool(server, session, {
    name: 'create_need',
    description: 'Create an open need. Returns its id.',
    output: () => ({ id: z.string(), version: z.number() }),
    input: () => NewNeedShape,
    run: (args) => {
      // Filing a need outside one's own scope is allowed: it reaches the agents whose scope covers it.
      const need = session.write(() =>
        store.needs.create({
          title: args.title,
          ...(args.body !== undefined && { body: args.body }),
          ...(args.tags && { tags: args.tags }),
          ...(args.priority !== undefined && { priority: args.priority }),
          ...(args.scope !== undefined && { scope: args.scope }),
          ...(args.acceptance !== undefined && { acceptance: args.acceptance }),
          ...(args.depends_on && { dependsOn: args.depends_on }),
        }),
      );
      return ok(`created ${need.id}`, { id: need.id, version: need.version });
    },
  });

  defineTool(server, session, {
    name: 'update_need',
    description:
      'Change fields of a need. Pass the version you read; a mismatch is refused with the current one.',
    output: () => ({ id: z.string(), version: z.number() }),
    input: () => ({
      id: z.string(),
      version: z.number().int().describe('the version you read (get_need)'),
      title: z.string().optional(),
      body: z.string().optional(),
      tags: z.array(z.string()).optional(),
      priority: z.number().int().optional(),
      acceptance: z.string().optional(),
    }),
    run: ({ id, version, ...patch }) => {
      const need = session.write(() => {
        session.requireWritable(id);
        const cleaned = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
        if (Object.keys(cleaned).length === 0)
          throw new GuardRefusal('nothing to update: pass at least one field');
        return store.needs.update(id, cleaned, { expectedVersion: version, ...session.fenceFor(id) });
      });
      return ok(`${need.id} is now at version ${need.version}`, { id: need.id, version: need.version });
    },
  });

  defineTool(server, session, {
    name: 'link',
    description: `Add an edge from → to. rel: ${EDGE_RELS.join(', ')}.`,
    output: () => ({ from: z.string(), rel: z.string(), to: z.string() }),
    input: () => ({ from: z.string(), rel: z.string(), to: z.string() }),
    run: ({ from, rel, to }) => {
      const edge = session.write(() => {
        if (from.startsWith('need_')) session.requireWritable(from);
        return store.edges.link(from, rel, to, from.startsWith('need_') ? session.fenceFor(from) : {});
      });
      return ok(`${edge.from} ${edge.rel} ${edge.to}`, { from: edge.from, rel: edge.rel, to: edge.to });
    },
  });

  defineTool(server, session, {
    name: 'register_artifact',
    description: 'Register an artifact (idempotent by content); optionally referenced by a need.',
    output: () => ({ id: z.string(), created: z.boolean() }),
    input: () => ({
      kind: z.enum(ARTIFACT_KINDS),
      title: z.string(),
      uri: z.string().optional(),
      content: z.string().optional(),
      summary: z.string().optional(),
      need_id: z.string().optional(),
    }),
    run: (args) => {
      const result = session.write(() => {
        if (args.need_id) session.requireWritable(args.need_id);
        const r = store.artifacts.add(
          {
            kind: args.kind,
            title: args.title,
            uri: args.uri ?? null,
            content: args.content ?? null,
            summary: args.summary ?? null,
          },
          args.need_id ? { needId: args.need_id, ...session.fenceFor(args.need_id) } : {},
        );
        markProduced(session, r.artifact.id);
        return r;
      });
      return ok(`${result.created ? 'registered' : 'already registered'} ${result.artifact.id}`, {
        id: result.artifact.id,
        created: result.created,
      });
    },
  });

  defineTool(server, session, {
    name: 'add_note',
    description: 'Add a note to a need: a decision, a finding, what a successor must know.',
    output: () => ({ id: z.string() }),
    input: () => ({ need_id: z.string(), title: z.string(), content: z.string() }),
    run: ({ need_id, title, content }) => {
      const { artifact } = session.write(() => {
        session.requireWritable(need_id);
        const r = store.artifacts.add(
          { kind: 'note', title, content },
          { needId: need_id, ...session.fenceFor(need_id) },
        );
        markProduced(session, r.artifact.id);
        return r;
      });
      return ok(`note ${artifact.id} added to ${need_id}`, { id: artifact.id });
    },
  });
}

/**
 * An artifact a session registers is `produced_by` its task; when the session finishes, its
 * transcript is stored and every artifact produced by the task gets a `source_transcript` edge
 * to it (see finish), so any summary can be traced back to its full reasoning.
 */
function markProduced(session: GuardSession, artifactId: string): void {
  if (session.principal.kind !== 'agent' || !session.principal.task) return;
  session.store.edges.link(artifactId, 'produced_by', session.principal.task.id);
}
