import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../bin/mlos.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `mlos` binary (npm test builds first) in `cwd`, as a user would. */
export function runCli(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): CliResult {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  if (!options.env?.['MLOS_DB']) delete env['MLOS_DB'];
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** A fresh temp folder, removed by the returned cleanup. */
export function tempDir(prefix = 'mlos-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
