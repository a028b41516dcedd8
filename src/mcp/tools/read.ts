import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { NEED_STATUSES, type Need } from '../../store/index.js';
import { ok } from '../result.js';
import type { GuardSession } from '../session.js';
import { defineTool } from './define.js';

const needLine = (n: Need) =>
  `${n.id} P${n.priority} ${n.status} ${n.scope} "${n.title}"${n.tags.length ? ` [${n.tags.join(',')}]` : ''}`;

/** Read tools: get_need, search_needs, get_pack, expand_pointer, get_view. */
export function registerReadTools(server: McpServer, session: GuardSession): void {
  const { store } = session;

  defineTool(server, session, {
    name: 'get_need',
    description: 'A need in full: fields, lease, dependencies, tasks, artifacts.',
    output: () => ({
      need: z.record(z.string(), z.unknown()),
      lease: z.record(z.string(), z.unknown()),
      dependsOn: z.array(z.record(z.string(), z.unknown())),
      tasks: z.array(z.record(z.string(), z.unknown())),
      artifacts: z.array(z.record(z.string(), z.unknown())),
    }),
    input: () => ({ id: z.string().describe('need id') }),
    readOnly: true,
    run: ({ id }) => {
      const need = store.needs.require(id);
      const lease = store.leases.require(id);
      const dependsOn = store.edges.from(id, 'depends_on').map((e) => {
        const dep = store.needs.require(e.to);
        return { id: dep.id, status: dep.status, title: dep.title };
      });
      const tasks = store.tasks.forNeed(id).map((t) => ({
        id: t.id,
        attempt: t.attempt,
        status: t.status,
        identity: t.identity,
        outcome: t.outcome,
        summary: t.summary,
        error: t.error,
      }));
      const artifacts = store.artifacts.forNeed(id).map((a) => ({ id: a.id, kind: a.kind, title: a.title }));
      const data = { need, lease, dependsOn, tasks, artifacts };
      const text = [
        needLine(need),
        `version ${need.version}; lease ${lease.taskId ? `held by ${lease.taskId}` : 'free'} (token ${lease.fencingToken})`,
        need.body,
        need.acceptance && `acceptance: ${need.acceptance}`,
        ...dependsOn.map((d) => `depends_on ${d.id} ${d.status} "${d.title}"`),
        ...tasks.map(
          (t) =>
            `task ${t.id} #${t.attempt} ${t.status}${t.outcome ? ` ${t.outcome}` : ''}: ${t.summary ?? t.error ?? ''}`,
        ),
        ...artifacts.map((a) => `artifact ${a.id} ${a.kind} "${a.title}"`),
      ]
        .filter(Boolean)
        .join('\n');
      return ok(text, data);
    },
  });

  defineTool(server, session, {
    name: 'search_needs',
    description:
      'Find needs by status, tags (any), scope or text; newest-priority first. Paginated by cursor.',
    output: () => ({ needs: z.array(z.record(z.string(), z.unknown())), nextCursor: z.string().nullable() }),
    input: () => ({
      status: z.array(z.enum(NEED_STATUSES)).optional(),
      tags: z.array(z.string()).optional(),
      scope: z.string().optional(),
      text: z.string().optional(),
      limit: z.number().int().min(1).max(200).optional().describe('default 50'),
      cursor: z.string().optional().describe('from the previous page'),
    }),
    readOnly: true,
    run: (args) => {
      const limit = args.limit ?? 50;
      const offset = args.cursor ? Number.parseInt(args.cursor, 10) || 0 : 0;
      const needs = store.needs.list({
        ...(args.status && { status: args.status }),
        ...(args.tags && { tagsAny: args.tags }),
        ...(args.scope && { scope: args.scope }),
        ...(args.text && { text: args.text }),
        limit: limit + 1,
        offset,
      });
      const page = needs.slice(0, limit);
      const next = needs.length > limit ? String(offset + limit) : null;
      const items = page.map((n) => ({
        id: n.id,
        title: n.title,
        status: n.status,
        priority: n.priority,
        scope: n.scope,
        tags: n.tags,
        version: n.version,
      }));
      const text = page.length
        ? page.map(needLine).join('\n') + (next ? `\nmore: cursor ${next}` : '')
        : 'no needs match';
      return ok(text, { needs: items, nextCursor: next });
    },
  });

  defineTool(server, session, {
    name: 'get_pack',
    description: 'The context pack of a need within a token budget (what did not fit becomes pointers).',
    output: () => ({ tokens: z.number(), sha256: z.string() }),
    input: () => ({
      need_id: z.string(),
      budget: z.number().int().min(256).max(200_000).optional().describe('tokens, default 8000'),
      identity: z.string().optional().describe('operator only: whose view (agents get their own)'),
    }),
    readOnly: true,
    run: ({ need_id, budget, identity: name }) => {
      const compiler = requireCompiler(session);
      const identity =
        session.principal.kind === 'agent'
          ? session.principal.identity
          : name
            ? session.deps.identityOf(name)
            : firstTaskIdentity(session, need_id);
      store.needs.require(need_id);
      const pack = compiler.pack(need_id, identity, budget ?? 8000);
      return ok(pack.text, { tokens: pack.tokens, sha256: pack.sha256 });
    },
  });

  defineTool(server, session, {
    name: 'expand_pointer',
    description: 'The full content behind a pointer line of a context pack.',
    output: () => ({ tokens: z.number() }),
    input: () => ({
      pointer: z.string().describe('e.g. ptr:art_…'),
      budget: z.number().int().min(64).max(200_000).optional(),
    }),
    readOnly: true,
    run: ({ pointer, budget }) => {
      const expanded = requireCompiler(session).expandPointer(pointer, budget ?? 8000);
      return ok(expanded.text, { tokens: expanded.tokens });
    },
  });

  defineTool(server, session, {
    name: 'get_view',
    description: 'A compiled view: PROBLEM.md, README.md, graph.md or needs/<id>.md of a workspace.',
    output: () => ({ seq: z.number() }),
    input: () => ({
      file: z.string().describe('e.g. PROBLEM.md'),
      workspace: z.string().optional().describe('default "default"'),
    }),
    readOnly: true,
    run: ({ file, workspace }) => {
      const view = requireCompiler(session).view(workspace ?? 'default', file);
      return ok(view.text, { seq: view.seq });
    },
  });
}

function requireCompiler(session: GuardSession) {
  const compiler = session.deps.compiler;
  if (!compiler) throw new Error('the guard was started without a compiler');
  return compiler;
}

function firstTaskIdentity(session: GuardSession, needId: string) {
  const tasks = session.store.tasks.forNeed(needId);
  const last = tasks[tasks.length - 1];
  if (last) return session.deps.identityOf(last.identity);
  const pins = session.store.identities.list();
  if (!pins[0]) throw new Error('no identity is pinned: run mlos identity sync');
  return session.deps.identityOf(pins[0].name);
}
