import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { SessionEvent } from '../../agents/session.js';
import { syncIdentities } from '../../kernel/identity/index.js';
import { Store, UserError } from '../../store/index.js';
import { globalOptions, parseDuration, parsePositiveIntFlag } from '../context.js';

interface AgentRunFlags {
  identity: string;
  need: string;
  provider?: string;
  model?: string;
  baseUrl?: string;
  maxTurns: number;
  lease: string;
  identities: string;
  json?: boolean;
}

export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('run one agent session in the foreground');
  agent
    .command('run')
    .description('claim a need for an identity and run one session on it, printing each turn')
    .requiredOption('--identity <name>', 'the identity to run as (pinned)')
    .requiredOption('--need <id>', 'the need to work on')
    .option(
      '--provider <name>',
      'override the identity’s provider (anthropic, openai, openai-compatible, scripted)',
    )
    .option('--model <model>', 'override the identity’s model')
    .option('--base-url <url>', 'override the base URL (OpenAI-compatible local servers)')
    .option('--max-turns <n>', 'model calls at most', parsePositiveIntFlag('--max-turns'), 40)
    .option('--lease <duration>', 'how long the lease lasts without progress', '3m')
    .option('--identities <dir>', 'identities folder to pin first, if present', 'identities')
    .option('--json', 'print each session event as a JSON line')
    .action(async (flags: AgentRunFlags, command: Command) => {
      // Loaded here, not at the CLI's start (see mlos run).
      const [
        { createProvider },
        { runAgentSession },
        { connectInMemory, createGuardDeps, createGuardServer, createKernelCompiler },
      ] = await Promise.all([
        import('../../agents/providers/index.js'),
        import('../../agents/session.js'),
        import('../../mcp/index.js'),
      ]);
      const { db, durable } = globalOptions(command);
      const store = Store.open(db, { durable, actor: 'cli' });
      try {
        const dir = resolve(flags.identities);
        if (existsSync(dir)) syncIdentities(store, dir);
        const runId = store.budgets.startRun();
        const deps = createGuardDeps(store, {
          leaseMs: parseDuration(flags.lease, '--lease'),
          runId,
          compiler: createKernelCompiler(store),
        });
        const identity = deps.identityOf(flags.identity);
        const pin = store.identities.require(flags.identity);
        if (pin.driftHash)
          throw new UserError(
            `identity ${flags.identity} has drifted from its pin: review and run mlos identity accept ${flags.identity}`,
          );
        const { provider, model } = createProvider(identity.model, process.env, {
          provider: flags.provider,
          model: flags.model,
          baseUrl: flags.baseUrl,
        });
        const claim = store
          .as(`agent:${identity.name}`)
          .claims.claim(flags.need, { identity: identity.name, leaseMs: deps.leaseMs });
        const need = store.needs.require(flags.need);
        const server = createGuardServer(deps, {
          kind: 'agent',
          identity,
          task: { id: claim.task.id, needId: need.id, fence: claim.fence },
        });
        const client = await connectInMemory(server, `mlos-agent-${identity.name}`);
        const out = (line: string) => process.stdout.write(`${line}\n`);
        out(
          `${identity.name} on ${need.id} "${need.title}": task ${claim.task.id}, fencing token ${claim.fence.token}, ${provider.name}:${model}`,
        );
        const print = (e: SessionEvent) => {
          if (flags.json) return out(JSON.stringify(e));
          switch (e.kind) {
            case 'boot':
              return out(
                `boot ${e.tokens} tokens (${e.sections.map((s) => `${s.section} ${s.tokens}`).join(', ')})`,
              );
            case 'turn':
              return out(
                `turn ${e.turn}: in ${e.usage.inputTokens}+${e.usage.cacheReadTokens} cached, out ${e.usage.outputTokens}` +
                  (e.text ? ` · "${e.text.slice(0, 100)}"` : '') +
                  (e.calls.length ? ` → ${e.calls.join(', ')}` : ''),
              );
            case 'tool':
              return out(
                `  ${e.isError ? '✗' : '✓'} ${e.name}: ${e.text.replace(/\s+/g, ' ').slice(0, 140)}`,
              );
            case 'retry':
              return out(`  retry ${e.attempt} in ${e.delayMs} ms: ${e.reason}`);
            case 'end':
              return out(
                `end: ${e.result.outcome}${e.result.reason ? ` (${e.result.reason})` : ''} after ${e.result.turns} turns, ${e.result.toolCalls} tool calls, $${e.result.costUsd.toFixed(4)}`,
              );
          }
        };
        const controller = new AbortController();
        process.once('SIGINT', () => controller.abort());
        let result: Awaited<ReturnType<typeof runAgentSession>>;
        try {
          result = await runAgentSession({
            client,
            provider,
            model,
            task: {
              id: claim.task.id,
              needId: need.id,
              identity,
              needTitle: need.title,
              needTags: need.tags,
              leaseUntil: claim.leaseUntil,
            },
            limits: { maxTurns: flags.maxTurns },
            onEvent: print,
            signal: controller.signal,
          });
        } catch (error) {
          // The session never got going (boot failed, the guard refused…): give the need back.
          const task = store.tasks.get(claim.task.id);
          if (task?.status === 'running')
            store.tasks.transition(task.id, 'failed', { error: `session crashed: ${String(error)}` });
          throw error;
        } finally {
          await client.close();
          await server.close();
          store.budgets.stopRun(runId);
        }
        if (result.outcome === 'failed' || result.outcome === 'lease_lost' || result.outcome === 'aborted')
          process.exitCode = 1;
      } finally {
        store.close();
      }
    });
}
