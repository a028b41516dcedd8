/** Shared by the benchmarks that drive real mlos processes: spawning, waiting, ports, Redis. */
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';

const BIN = new URL('../../bin/mlos.js', import.meta.url).pathname;
const children = new Set();

/** SIGKILLs every process spawned by `spawnMlos` that is still running; resolves once they exited. */
export function killAll() {
  for (const p of children)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  return Promise.all([...children].map((p) => p.exited));
}

/** Starts the built CLI with `args` in `cwd`, collecting its output (the last 0.5–1 MB). */
export function spawnMlos(args, cwd, env = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (d) => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const proc = { child, output: () => out, exited };
  children.add(proc);
  exited.then(() => children.delete(proc));
  return proc;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(check, timeoutMs, what, everyMs = 2) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves once `what` appears in the process's output; throws if it exits first. */
export async function started(proc, what, timeoutMs = 30_000) {
  await waitFor(
    () => {
      if (proc.child.exitCode !== null) throw new Error(`process exited before "${what}":\n${proc.output()}`);
      return proc.output().includes(what);
    },
    timeoutMs,
    `"${what}" in the output:\n${proc.output()}`,
    20,
  );
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections at the Redis URL within a second. */
export function redisAnswers(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => done(true));
  });
}

/** The p-quantile of an ascending array (nearest rank). */
export function quantile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}
