import { Command, CommanderError } from 'commander';
import { MlosError } from '../store/index.js';
import { registerAgentCommands } from './commands/agent.js';
import { registerArtifactCommands } from './commands/artifact.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommand } from './commands/backup.js';
import { registerCompileCommand } from './commands/compile.js';
import { registerIdentityCommands } from './commands/identity.js';
import { registerInitCommand } from './commands/init.js';
import { registerLinkCommands } from './commands/link.js';
import { registerMcpCommand } from './commands/mcp.js';
import { registerNeedCommands } from './commands/need.js';
import { registerPackCommands } from './commands/pack.js';
import { registerRunCommand } from './commands/run.js';
import { registerSimCommand } from './commands/sim.js';
import { registerStatusCommands } from './commands/status.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerWorkspaceCommands } from './commands/workspace.js';
import { VERSION } from './version.js';

/** Exit codes: 0 ok, 1 failure, 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function buildProgram(): Command {
  const program = new Command('mlos')
    .description(
      'An operating system for LLM agents: a need graph, compiled views, and a round table of agents.',
    )
    .version(VERSION)
    .option('--db <path>', 'the mlos database (default: $MLOS_DB or ./mlos.db)')
    .option('--durable', 'synchronous=FULL: every commit survives a power cut (slower)')
    .option('--verbose', 'print error details and stack traces')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerInitCommand(program);
  registerNeedCommands(program);
  registerPackCommands(program);
  registerLinkCommands(program);
  registerArtifactCommands(program);
  registerWorkspaceCommands(program);
  registerAuditCommands(program);
  registerBackupCommand(program);
  registerCompileCommand(program);
  registerIdentityCommands(program);
  registerMcpCommand(program);
  registerRunCommand(program);
  registerStatusCommands(program);
  registerAgentCommands(program);
  registerWorkerCommand(program);
  registerSimCommand(program);
  for (const command of allCommands(program)) command.exitOverride();
  return program;
}

function* allCommands(command: Command): Generator<Command> {
  for (const sub of command.commands) {
    yield sub;
    yield* allCommands(sub);
  }
}

/** Runs the CLI and returns the exit code; errors print one clear line (details with --verbose). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    // A command that fails without throwing (a run that lost its lock, an agent whose task failed)
    // sets process.exitCode; main takes it over as its result (bin/mlos.js sets it back).
    const code = process.exitCode;
    process.exitCode = undefined;
    return typeof code === 'number' ? code : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
      if (error.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    const verbose = argv.includes('--verbose');
    reportError(error, verbose);
    return error instanceof MlosError && error.code === 'usage' ? EXIT.usage : EXIT.failure;
  }
}

function reportError(error: unknown, verbose: boolean): void {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`mlos: ${message}\n`);
  if (!verbose) {
    if (!(error instanceof MlosError))
      process.stderr.write('(an unexpected error: run with --verbose for details)\n');
    return;
  }
  if (error instanceof Error) {
    process.stderr.write(`${error.stack ?? ''}\n`);
    if (error.cause)
      process.stderr.write(`caused by: ${String((error.cause as Error).stack ?? error.cause)}\n`);
  }
}
