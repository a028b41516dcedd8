import { hostname } from 'node:os';
import type { Command } from 'commander';
import { UsageError, UserError } from '../../store/index.js';
import { collectList, parseDuration, parsePositiveIntFlag, parseRedisUrl } from '../context.js';
import { createLogger, type LogFormat } from '../logging.js';

/** A skew between this host's clock and the guard's worth a warning, in ms. */
const CLOCK_SKEW_WARN_MS = 2000;

interface WorkerFlags {
  redis: string;
  mcp: string;
  token?: string;
  identities?: string[];
  concurrency: number;
  heartbeat: string;
  drain: string;
  provider?: string;
  model?: string;
  baseUrl?: string;
  logFormat?: LogFormat;
  takeover: boolean;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('distributed mode: run agents for a remote supervisor (queue on Redis, guard over HTTP)')
    .requiredOption('--redis <url>', 'the Redis of the supervisor’s queues', parseRedisUrl('--redis'))
    .requiredOption('--mcp <url>', 'the guard’s MCP endpoint, e.g. http://127.0.0.1:7411/mcp')
    .option('--token <token>', 'the worker token (default $MLOS_WORKER_TOKEN)')
    .option('--identities <a,b>', 'host only these identities (default: every runnable one)', collectList)
    .option('--concurrency <n>', 'agent sessions at once', parsePositiveIntFlag('--concurrency'), 4)
    .option('--heartbeat <duration>', 'how often agents and sessions report', '5s')
    .option('--drain <duration>', 'on SIGINT/SIGTERM, how long running sessions may finish', '30s')
    .option('--provider <name>', 'override every identity’s provider')
    .option('--model <model>', 'override every identity’s model')
    .option('--base-url <url>', 'override the provider base URL')
    .option('--log-format <format>', 'json or pretty (default: pretty on a TTY, else json)')
    .option('--no-takeover', 'take no unmet needs over: run only what the queue hands out')
    .action(async (flags: WorkerFlags) => {
      const token = flags.token ?? process.env['MLOS_WORKER_TOKEN'];
      if (!token) throw new UsageError('a worker needs the worker token: --token T or MLOS_WORKER_TOKEN');
      // Every flag is checked before anything connects.
      if (!URL.canParse(flags.mcp) || !/^https?:$/.test(new URL(flags.mcp).protocol))
        throw new UsageError(
          `--mcp ${flags.mcp} is not an http(s) URL: give the guard's MCP endpoint, e.g. http://10.0.0.5:7411/mcp`,
        );
      const heartbeatMs = parseDuration(flags.heartbeat, '--heartbeat');
      const drainMs = parseDuration(flags.drain, '--drain');
      // Loaded here, not at the CLI's start (see mlos run).
      const [
        { createProvider, createProviders },
        { RedisNeedBus },
        { BullmqTaskQueue },
        { RemoteConnector },
        { takeoverSeats, Worker },
        { awaitRedis },
      ] = await Promise.all([
        import('../../agents/providers/index.js'),
        import('../../roundtable/redis-need-bus.js'),
        import('../../scheduler/bullmq-task-queue.js'),
        import('../../scheduler/remote-connector.js'),
        import('../../scheduler/worker.js'),
        import('../../scheduler/redis-connection.js'),
      ]);
      // Providers count the tokens of every request: load the tokenizer before the first session.
      (await import('../../kernel/tokens.js')).preloadTokenizer();
      const log = createLogger(flags.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json'));
      // Redis first: agents registered with the guard by a worker that cannot fetch jobs would
      // look live to the supervisor, which would route work to them.
      await awaitRedis(flags.redis, log);
      const connector = new RemoteConnector({ mcpUrl: flags.mcp, workerToken: token });
      const { data: info } = await connector.request<{ namespace: string | null }>('/worker/identities');
      if (!info.namespace)
        throw new UserError(
          `${flags.mcp} is not a supervisor's guard (mlos run --listen): it names no queue namespace`,
        );
      let identities = await connector.identities();
      if (flags.identities) {
        const unknown = flags.identities.filter((n) => !identities.some((i) => i.name === n));
        if (unknown.length) throw new UserError(`not runnable on the guard: ${unknown.join(', ')}`);
        identities = identities.filter((i) => flags.identities!.includes(i.name));
      }
      if (identities.length === 0) throw new UserError('the guard has no runnable identity for this worker');
      // Each model set up now: a missing API key stops the worker here, not in every session.
      const overrides = { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl };
      const providers = createProviders(identities, process.env, overrides);
      const name = `${hostname()}:${process.pid}`;
      const agents: { id: string; identity: string }[] = [];
      for (const identity of identities) {
        const { data } = await connector.request<{ agent_id: string }>('/worker/agents', {
          identity: identity.name,
          capacity: Math.min(identity.capacity, flags.concurrency),
          worker: name,
        });
        agents.push({ id: data.agent_id, identity: identity.name });
      }
      // Lease ends and eligibility times are the guard's: the connector reads them on the guard's
      // clock, corrected from its responses. A large skew still deserves the operator's eye.
      const guardClockOffsetMs = connector.clock.offsetMs;
      if (!connector.clock.synced)
        log.warn(
          {},
          "the guard sends no time (an older mlos run): lease ends are read on this host's clock, so keep the hosts' clocks in sync (NTP)",
        );
      else if (Math.abs(guardClockOffsetMs) >= CLOCK_SKEW_WARN_MS)
        log.warn(
          { guardClockOffsetMs },
          `this host's clock is ${(Math.abs(guardClockOffsetMs) / 1000).toFixed(1)} s ${guardClockOffsetMs > 0 ? 'behind' : 'ahead of'} the guard's: the worker corrects for it, but check the hosts' time sync (NTP)`,
        );
      const queue = new BullmqTaskQueue({ url: flags.redis, namespace: info.namespace, log });
      // The round table watches the need bus the supervisor publishes on the same Redis.
      const bus = flags.takeover
        ? new RedisNeedBus({
            url: flags.redis,
            namespace: info.namespace,
            onError: (error, context) => log.warn({ err: error, context }, `need bus: ${context}`),
          })
        : undefined;
      // What this worker's sessions came to, for its closing line.
      const ended = new Map<string, number>();
      let tokens = 0;
      let costUsd = 0;
      const worker = new Worker({
        onSessionEnd: (_taskId, result) => {
          const outcome = result?.outcome ?? 'crashed';
          ended.set(outcome, (ended.get(outcome) ?? 0) + 1);
          // As the budgets count them: the whole prompt (cached parts included) and the output.
          const u = result?.usage;
          tokens += u ? u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens : 0;
          costUsd += result?.costUsd ?? 0;
        },
        queue,
        connector,
        identities: identities.map((i) => i.name),
        concurrency: flags.concurrency,
        heartbeatMs,
        log,
        name,
        agentIdFor: (identity) => agents.find((a) => a.identity === identity)?.id,
        ...(bus && { takeover: { bus, seats: takeoverSeats(identities, agents, log) } }),
        providerFor: (identity) => {
          const key = `${identity.name}:${identity.hash}`;
          let entry = providers.get(key);
          if (!entry) {
            entry = createProvider(identity.model, process.env, overrides);
            providers.set(key, entry);
          }
          return entry;
        },
      });
      const beat = setInterval(() => {
        void connector
          .request('/worker/heartbeat', {
            agents: agents.map((a) => ({ id: a.id, load: worker.runningOf(a.identity) })),
          })
          .catch((error: unknown) => log.warn({ err: error }, 'agent heartbeat failed'));
      }, heartbeatMs);
      await worker.start();
      log.info(
        {
          worker: name,
          identities: identities.map((i) => i.name),
          guard: flags.mcp,
          takeover: flags.takeover,
          guardClockOffsetMs: connector.clock.offsetMs,
        },
        'mlos worker started',
      );
      const signal = await new Promise<string>((resolve) => {
        let count = 0;
        const stop = (name: string) => {
          if (++count > 1) {
            log.error({ signal: name }, 'second signal: exiting now');
            process.exit(130);
          }
          resolve(name);
        };
        // SIGHUP too (a closed terminal): see mlos run.
        for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, () => stop(name));
      });
      log.info({ signal, drainMs }, `${signal}: draining (a second signal exits at once)`);
      clearInterval(beat);
      await worker.close(drainMs);
      await connector.request('/worker/stop', { agents: agents.map((a) => a.id) }).catch(() => undefined);
      await queue.close(5000);
      await bus?.close();
      await connector.close();
      const sessions = [...ended.values()].reduce((a, b) => a + b, 0);
      const outcomes = [...ended].map(([outcome, n]) => `${n} ${outcome}`).join(', ');
      process.stdout.write(
        `mlos worker stopped (${signal}): ${sessions} ${sessions === 1 ? 'session' : 'sessions'}${outcomes ? ` (${outcomes})` : ''}, ${tokens} tokens, $${costUsd.toFixed(4)}\n`,
      );
    });
}
