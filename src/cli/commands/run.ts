import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { displayPath } from '../../kernel/identity/index.js';
import { guardTokens } from '../../mcp/http-io.js';
import { seedDemo } from '../../scheduler/demo.js';
import { type RuntimeCounters, renderMetrics } from '../../scheduler/metrics.js';
import type { Runtime } from '../../scheduler/runtime.js';
import type { TickStats } from '../../scheduler/supervisor.js';
import { Store, UsageError } from '../../store/index.js';
import { globalOptions, parseDuration, parsePositiveIntFlag, parseRedisUrl } from '../context.js';
import { createLogger, type LogFormat } from '../logging.js';
import { writeExampleIdentities } from './init.js';
import { parseHostPort } from './mcp.js';
import { ProgressLine } from './progress.js';

interface RunFlags {
  redis?: string;
  listen?: string;
  untilIdle?: boolean;
  demo?: boolean;
  workers: boolean;
  concurrency: number;
  lease: string;
  heartbeat: string;
  loop: string;
  maxAttempts: number;
  retryDelay: string;
  drain: string;
  identities: string;
  provider?: string;
  model?: string;
  baseUrl?: string;
  runTokens?: number;
  logFormat?: LogFormat;
  views: boolean;
  takeover: boolean;
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(
      'run the supervisor and (unless --no-workers) agents until stopped: graduation, queue, round table',
    )
    .option('--demo', 'seed a demo need graph and play scripted agents: no API key, no Redis')
    .option('--until-idle', 'exit 0 once no actionable or active need remains')
    .option(
      '--redis <url>',
      'distributed mode: BullMQ queues and the need bus on this Redis',
      parseRedisUrl('--redis'),
    )
    .option('--listen <host:port>', 'serve the guard over HTTP (+ /healthz, /metrics) for remote workers')
    .option('--no-workers', 'host no agents in this process (remote workers only)')
    .option(
      '--concurrency <n>',
      'agent sessions at once in this process',
      parsePositiveIntFlag('--concurrency'),
      4,
    )
    .option('--identities <dir>', 'the identities folder to pin and watch', 'identities')
    .option(
      '--lease <duration>',
      'how long a lease lasts without progress (longer than one model call)',
      '3m',
    )
    .option('--heartbeat <duration>', 'how often sessions and agents report progress', '5s')
    .option('--loop <duration>', 'pause between supervisor ticks', '500ms')
    .option(
      '--max-attempts <n>',
      'failed or lost attempts before a need is escalated',
      parsePositiveIntFlag('--max-attempts'),
      3,
    )
    .option(
      '--retry-delay <duration>',
      'wait before a failed or lost need is tried again, doubled per failure (0 retries at once)',
      '30s',
    )
    .option('--drain <duration>', 'on SIGINT/SIGTERM, how long running sessions may finish', '30s')
    .option(
      '--provider <name>',
      'override every identity’s provider (anthropic, openai, openai-compatible, scripted)',
    )
    .option('--model <model>', 'override every identity’s model')
    .option('--base-url <url>', 'override the provider base URL (OpenAI-compatible local servers)')
    .option('--run-tokens <n>', 'token budget of this whole run', parsePositiveIntFlag('--run-tokens'))
    .option('--log-format <format>', 'json or pretty (default: pretty on a TTY, else json)')
    .option('--no-views', 'do not keep the workspaces’ views compiled')
    .option('--no-takeover', 'embedded agents take no unmet needs over (the round-table loop stays off)')
    .action(async (flags: RunFlags, command: Command) => {
      // Loaded here, not at the CLI's start: every other command starts without the scheduler,
      // the agents' SDKs and BullMQ.
      const [{ createAdapters }, { Runtime }] = await Promise.all([
        import('../../scheduler/adapters.js'),
        import('../../scheduler/runtime.js'),
      ]);
      const { db, durable } = globalOptions(command);
      const format: LogFormat = flags.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json');
      if (format !== 'json' && format !== 'pretty') throw new UsageError('--log-format is json or pretty');
      const progress = process.stderr.isTTY && format === 'pretty' ? new ProgressLine() : undefined;
      const log = createLogger(format, 'info', () => progress?.clear());
      // Every flag is checked before the database is opened, the demo writes or a connection is
      // opened, so a typo never leaves any of them behind.
      const timing = {
        leaseMs: parseDuration(flags.lease, '--lease'),
        heartbeatMs: parseDuration(flags.heartbeat, '--heartbeat'),
        loopMs: parseDuration(flags.loop, '--loop'),
        drainMs: parseDuration(flags.drain, '--drain'),
        // 0, 0s, 0ms…: retry at once (parseDuration refuses a zero duration).
        retryDelayMs: /^0+(\.0+)?(ms|s|m|h|d|w)?$/.test(flags.retryDelay.trim())
          ? 0
          : parseDuration(flags.retryDelay, '--retry-delay'),
      };
      const listenAt = flags.listen ? parseHostPort(flags.listen) : undefined;
      // Refused off loopback without tokens before any is made up and printed.
      const guard = listenAt && guardTokens(listenAt.host, process.env);
      if (timing.heartbeatMs >= timing.leaseMs)
        log.warn(
          { heartbeatMs: timing.heartbeatMs, leaseMs: timing.leaseMs },
          `--heartbeat ${flags.heartbeat} is not shorter than --lease ${flags.lease}: a session's lease may end between two of its heartbeats and its work be taken over; make the heartbeat a third of the lease or less`,
        );
      const store = Store.open(db, { durable, actor: 'supervisor' });
      let runtime: Runtime | undefined;
      let opened:
        | { queue: { close(ms?: number): Promise<void> }; bus: { close(): Promise<void> } }
        | undefined;
      try {
        const identitiesDir = resolve(flags.identities);
        const overrides = { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl };
        if (flags.demo) {
          const seeded = seedDemo(store);
          log.info(
            { seeded },
            seeded ? `demo: seeded ${seeded} needs` : 'demo: the database already has needs',
          );
          // As `mlos init` does: the operator can then read, lint and edit what the agents run.
          if (!existsSync(identitiesDir)) {
            const files = writeExampleIdentities(identitiesDir);
            log.info(
              { identities: displayPath(identitiesDir) },
              `demo: wrote ${files.length} example identities to ${displayPath(identitiesDir)}/`,
            );
          }
          overrides.provider ??= 'scripted';
          overrides.model ??= 'demo';
        }
        const namespace = namespaceOf(db);
        const adapters = await createAdapters({ redisUrl: flags.redis, namespace, log });
        opened = adapters;
        const { queue, bus } = adapters;
        const counters: RuntimeCounters = { takeovers: 0, leaseExpiries: 0, graduated: 0 };
        let listen: ConstructorParameters<typeof Runtime>[0]['listen'];
        if (listenAt && guard) {
          for (const line of guard.generated) process.stderr.write(`${line}\n`);
          const { operatorToken, workerToken, tokensConfigured } = guard;
          listen = { ...listenAt, operatorToken, workerToken, tokensConfigured, namespace };
        }
        let idleTicks = 0;
        let lastStats: TickStats | undefined;
        let finishIdle: (() => void) | undefined;
        let fatal: ((reason: string) => void) | undefined;
        const lockLost = new Promise<string>((r) => {
          fatal = r;
        });
        const idle = new Promise<void>((r) => {
          finishIdle = r;
        });
        let finishSpent: (() => void) | undefined;
        const spent = new Promise<void>((r) => {
          finishSpent = r;
        });
        // The closing line counts what this run resolved, not what the database holds.
        const startSeq = store.events.headSeq();
        runtime = new Runtime({
          store,
          queue,
          bus,
          identitiesDir,
          embeddedWorkers: flags.workers,
          concurrency: flags.concurrency,
          leaseMs: timing.leaseMs,
          heartbeatMs: timing.heartbeatMs,
          loopMs: timing.loopMs,
          maxAttempts: flags.maxAttempts,
          retryDelayMs: timing.retryDelayMs,
          providerOverrides: overrides,
          env: process.env,
          compileViews: flags.views,
          backgroundCheckpoints: true,
          takeover: flags.takeover,
          runTokenLimit: flags.runTokens ?? null,
          log,
          ...(listen && { listen }),
          metricsRoute: async (req, res) => {
            if (req.url !== '/metrics' || req.method !== 'GET' || !runtime) return false;
            const depth = await queue.depth(store.identities.list().map((p) => p.name));
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
            res.end(renderMetrics(store, counters, depth, runtime.runId));
            return true;
          },
          onFatal: () => fatal?.('lock lost'),
          afterTick: (stats) => {
            lastStats = stats;
            counters.graduated += stats.graduated;
            counters.leaseExpiries += stats.expired;
            counters.takeovers += stats.takeovers;
            progress?.render(store, runtime!.runningSessions, runtime!.runId);
            // --run-tokens spent down to less than any identity's task: the run is over, once no
            // task is queued or running anywhere (remote workers' sessions included). Cheapest
            // checks first: most ticks stop at the budget.
            if (
              flags.runTokens !== undefined &&
              runtime!.runningSessions === 0 &&
              runtime!.runBudgetSpent()
            ) {
              const work = store.scheduling.pendingWork();
              if (work.running === 0 && work.queued === 0) finishSpent?.();
            }
            if (flags.untilIdle && stats.idle && runtime!.runningSessions === 0) {
              if (++idleTicks >= 2) finishIdle?.();
            } else {
              idleTicks = 0;
            }
          },
        });
        await runtime.start();
        log.info(
          {
            db,
            mode: flags.redis ? 'distributed' : 'embedded',
            guard: runtime.url ?? null,
            workers: flags.workers,
          },
          'mlos run started',
        );
        const signalled = new Promise<string>((r) => {
          let count = 0;
          const onSignal = (signal: string) => {
            if (++count > 1) {
              log.error({ signal }, 'second signal: exiting now');
              process.exit(130);
            }
            r(signal);
          };
          // SIGHUP too: a run started from a terminal that closes (an ssh session dropped) drains
          // like one stopped on purpose, instead of dying with its sessions mid-call.
          for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
            process.on(signal, () => onSignal(signal));
        });
        const reason = await Promise.race([
          signalled,
          lockLost,
          idle.then(() => 'idle'),
          spent.then(() => 'run token budget cannot cover another task'),
        ]);
        if (reason === 'lock lost') process.exitCode = 1;
        progress?.clear();
        const left = reason === 'idle' ? openNow(store) : { open: 0, escalated: 0 };
        const waits = lastStats && left.open > 0 ? idleWaits(lastStats, left) : '';
        log.info(
          {
            reason,
            ...(waits && {
              escalated: left.escalated,
              budgetBlocked: lastStats?.budgetBlocked,
              unroutable: lastStats?.unroutable,
            }),
          },
          reason !== 'idle'
            ? `${reason}: draining`
            : waits
              ? `idle: no need any runnable identity can work on now; ${waits}`
              : 'idle: no actionable or active need remains',
        );
        await runtime.close(timing.drainMs);
        progress?.clear();
        const counts = store.needs.counts();
        const of = (status: string) =>
          counts.filter((c) => c.status === status).reduce((n, c) => n + c.count, 0);
        const unfinished = of('open') + of('active');
        const tokens = store.budgets.totals(runtime.runId);
        const resolved = store.events.needsWithEventSince(startSeq, 'need.resolved');
        process.stdout.write(
          `mlos run stopped (${reason}): ${resolved} ${resolved === 1 ? 'need' : 'needs'} resolved, ${tokens.tokens} tokens, $${tokens.costUsd.toFixed(4)} in this run${unfinished ? `; ${unfinished} open or active remain` : ''}\n`,
        );
      } finally {
        if (runtime) await runtime.close(0).catch(() => undefined);
        else if (opened) {
          await opened.queue.close(1000).catch(() => undefined);
          await opened.bus.close().catch(() => undefined);
        }
        store.close();
      }
    });
}

/** Queue and bus names derive from the database path, so two databases never share a queue. */
function namespaceOf(db: string): string {
  let h = 0;
  for (const c of resolve(db)) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return `db${h.toString(36)}`;
}

/** Open needs (an idle run has no active one). */
function openNow(store: Store): { open: number; escalated: number } {
  const open = store.needs.list({ status: ['open'] });
  return { open: open.length, escalated: open.filter((n) => n.orphaned).length };
}

/** What an idle run leaves waiting, and why, in words (empty when nothing is left open). */
function idleWaits(stats: TickStats, { open, escalated }: { open: number; escalated: number }): string {
  const parts: string[] = [];
  if (escalated > 0)
    parts.push(
      `${escalated} escalated ${escalated === 1 ? 'need waits' : 'needs wait'} for an operator (mlos status lists ${escalated === 1 ? 'it' : 'them'}; mlos need retry --all-failed tries the failed ones again once their cause is fixed)`,
    );
  if (stats.budgetBlocked > 0)
    parts.push(
      `${stats.budgetBlocked} ${stats.budgetBlocked === 1 ? 'need waits' : 'needs wait'} for an identity whose budget left (today's, or this run's --run-tokens) cannot cover another task`,
    );
  if (stats.unroutable > 0)
    parts.push(
      `${stats.unroutable} ${stats.unroutable === 1 ? 'need waits' : 'needs wait'} for a runnable identity whose scope covers ${stats.unroutable === 1 ? 'it' : 'them'} (add one, or accept or resume a drifted or paused one)`,
    );
  const others = open - escalated - stats.budgetBlocked - stats.unroutable;
  if (others > 0)
    parts.push(
      `${others} more ${others === 1 ? 'waits' : 'wait'} on dependencies, a later start (--not-before) or a standing need's next round (mlos need list --status open)`,
    );
  return parts.join('; ');
}
