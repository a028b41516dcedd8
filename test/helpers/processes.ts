import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADD_NEEDS = fileURLToPath(new URL('./add-needs.ts', import.meta.url));

export interface WriterReport {
  actor: string;
  created: number;
  resolved: number;
  failed: number;
  errors: string[];
  openError: string | null;
}

export interface Writer {
  readonly child: ChildProcess;
  /** Resolves once the writer has opened the store (or failed to). */
  readonly ready: Promise<void>;
  /** Resolves with the writer's report when it exits. */
  readonly done: Promise<WriterReport>;
}

/** Starts `test/helpers/add-needs.ts` in its own Node process. */
export function startWriter(options: {
  db: string;
  actor: string;
  seed: number;
  ms: number;
  go: string;
  openAfterGo?: boolean;
}): Writer {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      ADD_NEEDS,
      '--db',
      options.db,
      '--actor',
      options.actor,
      '--seed',
      String(options.seed),
      '--ms',
      String(options.ms),
      '--go',
      options.go,
      ...(options.openAfterGo ? ['--open-after-go'] : []),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.includes('ready\n') || stdout.includes('{')) markReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<WriterReport>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      markReady();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) {
        reject(new Error(`writer ${options.actor} exited with ${code}: ${stderr || stdout}`));
        return;
      }
      resolve(JSON.parse(line) as WriterReport);
    });
  });
  return { child, ready, done };
}

/** Starts every writer at once: each waits for the go file after opening the store. */
export async function runWriters(
  db: string,
  go: string,
  actors: readonly string[],
  ms: number,
  options: { openAfterGo?: boolean } = {},
): Promise<WriterReport[]> {
  const writers = actors.map((actor, i) => startWriter({ db, actor, seed: i + 1, ms, go, ...options }));
  await Promise.all(writers.map((w) => w.ready));
  writeFileSync(go, 'go');
  return Promise.all(writers.map((w) => w.done));
}
