import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { MlosError } from '../store/index.js';
import type { Principal } from './principal.js';
import { sharedSchemaValidator } from './schema-validator.js';
import { type GuardDeps, GuardSession } from './session.js';
import { registerLifecycleTools } from './tools/lifecycle.js';
import { registerOperatorTools } from './tools/operator.js';
import { registerReadTools } from './tools/read.js';
import { registerWriteTools } from './tools/write.js';

/** The `_meta` key of the `boot` prompt carrying the structured payload (blocks, breakpoints). */
export const BOOT_META = 'mlos/boot';

export const GUARD_INSTRUCTIONS =
  'mlos guard: every read and write of the need graph. Errors explain what to change; the database is unchanged after any refusal.';

/**
 * Builds the guard for one principal: the tools it may see, the compiled views and packs as
 * resources, and the boot payload as a prompt. One server definition serves every transport.
 */
export function createGuardServer(deps: GuardDeps, principal: Principal, version = '0.1.0'): McpServer {
  const session = new GuardSession(deps, principal);
  const server = new McpServer(
    { name: 'mlos', version },
    { instructions: GUARD_INSTRUCTIONS, jsonSchemaValidator: sharedSchemaValidator },
  );
  registerReadTools(server, session);
  registerWriteTools(server, session);
  registerLifecycleTools(server, session);
  registerOperatorTools(server, session);
  registerResources(server, session);
  registerPrompts(server, session);
  return server;
}

function registerResources(server: McpServer, session: GuardSession): void {
  const { store, deps } = session;
  const rethrow = (fn: () => { contents: { uri: string; mimeType: string; text: string }[] }) => {
    try {
      return fn();
    } catch (error) {
      if (error instanceof MlosError) throw new McpError(ErrorCode.InvalidParams, error.message);
      throw error;
    }
  };

  server.registerResource(
    'need',
    new ResourceTemplate('mlos://needs/{id}', { list: undefined }),
    { mimeType: 'application/json', description: 'A need as JSON' },
    (uri, { id }) =>
      rethrow(() => {
        const need = store.needs.require(String(id));
        return {
          contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(need, null, 2) }],
        };
      }),
  );

  const compiler = deps.compiler;
  if (!compiler) return;
  server.registerResource(
    'view',
    new ResourceTemplate('mlos://views/{workspace}/{file}', {
      list: () => ({
        resources: store.workspaces
          .list()
          .flatMap((w) =>
            compiler
              .listViews(w.name)
              .map((file) => ({ uri: `mlos://views/${w.name}/${file}`, name: `${w.name}/${file}` })),
          ),
      }),
    }),
    { mimeType: 'text/markdown', description: 'A compiled view (PROBLEM.md, README.md, graph.md)' },
    (uri, { workspace, file }) =>
      rethrow(() => {
        const view = compiler.view(String(workspace), decodeURIComponent(String(file)));
        return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: view.text }] };
      }),
  );
  server.registerResource(
    'pack',
    new ResourceTemplate('mlos://packs/{needId}', { list: undefined }),
    { mimeType: 'text/markdown', description: 'The context pack of a need (default budget 8000 tokens)' },
    (uri, { needId }) =>
      rethrow(() => {
        const id = String(needId);
        const identity =
          session.principal.kind === 'agent'
            ? session.principal.identity
            : deps.identityOf(ownerIdentity(session, id));
        const pack = compiler.pack(id, identity, 8000);
        return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: pack.text }] };
      }),
  );
}

/** The boot prompt's argument shape, built once (a guard server is built per task). */
let bootArgsShape:
  | { identity: z.ZodString; need: z.ZodString; budget: z.ZodOptional<z.ZodString> }
  | undefined;
function bootArgs() {
  bootArgsShape ??= { identity: z.string(), need: z.string(), budget: z.string().optional() };
  return bootArgsShape;
}

function registerPrompts(server: McpServer, session: GuardSession): void {
  const compiler = session.deps.compiler;
  if (!compiler) return;
  server.registerPrompt(
    'boot',
    {
      description: 'The boot payload of an identity for a need: identity, awareness and context pack.',
      argsSchema: bootArgs(),
    },
    ({ identity, need, budget }) => {
      try {
        const principal = session.principal;
        if (principal.kind === 'agent' && principal.identity.name !== identity) {
          throw new MlosError('forbidden', `an agent of ${principal.identity.name} may only boot as itself`);
        }
        const boot = compiler.boot(session.deps.identityOf(identity), need, budget ? Number(budget) : 16_000);
        // A session booting for its own task records what it saw: the pack's hash is provenance.
        // Under its fence, like every write of a task-bound session: a stale one is refused here.
        const task = principal.kind === 'agent' ? principal.task : undefined;
        if (task?.needId === need)
          session.write(() => session.store.tasks.recordBoot(task.id, boot.packSha256));
        const text = [...boot.system.map((b) => b.text), boot.first].join('\n\n');
        return {
          description: `boot payload of ${identity} for ${need}: ${boot.tokens} tokens, sha256 ${boot.sha256}`,
          messages: [{ role: 'user', content: { type: 'text', text } }],
          _meta: { [BOOT_META]: boot },
        };
      } catch (error) {
        if (error instanceof MlosError) throw new McpError(ErrorCode.InvalidParams, error.message);
        throw error;
      }
    },
  );
}

function ownerIdentity(session: GuardSession, needId: string): string {
  const tasks = session.store.tasks.forNeed(needId);
  const last = tasks[tasks.length - 1];
  if (last) return last.identity;
  const pin = session.store.identities.list()[0];
  if (!pin) throw new MlosError('no_identity', 'no identity is pinned: run mlos identity sync first');
  return pin.name;
}
