import type { Command } from 'commander';
import { guardTokens } from '../../mcp/http-io.js';
import { Store, UsageError } from '../../store/index.js';
import { globalOptions, parseDuration } from '../context.js';
import { VERSION } from '../version.js';

export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('serve the guard over MCP: stdio (operator scope, for IDEs) or Streamable HTTP with --http')
    .option('--http <host:port>', 'serve Streamable HTTP at /mcp instead of stdio (e.g. 127.0.0.1:7411)')
    .option('--lease <duration>', 'how long a claimed lease lasts without progress', '3m')
    .action(async (flags: { http?: string; lease: string }, command: Command) => {
      // Loaded here, not at the CLI's start (see mlos run).
      const [
        { StdioServerTransport },
        {
          createGuardDeps,
          createGuardServer,
          createKernelCompiler,
          GuardHttpServer,
          notifyOnChange,
          OPERATOR,
        },
      ] = await Promise.all([
        import('@modelcontextprotocol/sdk/server/stdio.js'),
        import('../../mcp/index.js'),
      ]);
      // Flags first: a typo opens no database and prints no token.
      const leaseMs = parseDuration(flags.lease, '--lease');
      const at = flags.http ? parseHostPort(flags.http) : undefined;
      // Refused off loopback without tokens before any is made up and printed.
      const tokens = at && guardTokens(at.host, process.env);
      const { db, durable } = globalOptions(command);
      const store = Store.open(db, { durable, actor: 'mcp' });
      const deps = createGuardDeps(store, {
        leaseMs,
        compiler: createKernelCompiler(store),
      });
      if (!at || !tokens) {
        const server = createGuardServer(deps, OPERATOR, VERSION);
        await server.connect(new StdioServerTransport());
        const stopNotify = notifyOnChange(store, () => [server]);
        process.stderr.write(`mlos guard on stdio (operator scope), database ${db}\n`);
        await untilSignal(
          async () => {
            stopNotify();
            await server.close();
            store.close();
          },
          { stdin: true },
        );
        return;
      }
      const { operatorToken, workerToken, tokensConfigured, generated } = tokens;
      const http = new GuardHttpServer(deps, { ...at, operatorToken, workerToken, tokensConfigured });
      const { url } = await http.start();
      process.stderr.write(`mlos guard on ${url}, database ${db}\n`);
      for (const line of generated) process.stderr.write(`${line}\n`);
      await untilSignal(
        async () => {
          await http.close();
          store.close();
        },
        { stdin: false },
      );
    });
}

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new UsageError(`${JSON.stringify(text)} is not HOST:PORT (e.g. 127.0.0.1:7411)`);
  return { host: m[1] ?? m[2]!, port };
}

/** Resolves after SIGINT/SIGTERM (or stdin closing, for stdio clients) once `close` ran; a second signal forces. */
function untilSignal(close: () => Promise<void>, options: { stdin: boolean }): Promise<void> {
  return new Promise((resolve) => {
    let closing = false;
    const stop = () => {
      if (closing) process.exit(130);
      closing = true;
      close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (options.stdin) process.stdin.once('end', stop);
  });
}
