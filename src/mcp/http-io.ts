import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { UserError } from '../store/errors.js';

/** Request and response plumbing of the guard's HTTP server. */

const MAX_BODY = 4 * 1024 * 1024;

/**
 * Every guard response carries the guard's time (epoch ms) in this header: a worker on another
 * host reads lease ends and eligibility times against it, not against its own clock.
 */
export const GUARD_NOW_HEADER = 'x-mlos-now';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** A guard reachable off this machine must demand tokens the operator set, not ones it made up. */
export function refuseOpenBindWithoutTokens(host: string, tokensConfigured: boolean): void {
  if (!isLoopback(host) && !tokensConfigured)
    throw new UserError(
      `refusing to serve the guard on ${host} without tokens: set MLOS_OPERATOR_TOKEN and MLOS_WORKER_TOKEN, or bind 127.0.0.1`,
    );
}

/** The guard's bearer tokens for `mlos run --listen` and `mlos mcp --http`. */
export interface GuardTokens {
  readonly operatorToken: string;
  readonly workerToken: string;
  /** Both came from the environment (required off loopback). */
  readonly tokensConfigured: boolean;
  /** One line per token made up here, for the operator to read once (they are not stored). */
  readonly generated: readonly string[];
}

/**
 * The tokens from MLOS_OPERATOR_TOKEN and MLOS_WORKER_TOKEN, each missing one made up; refused
 * before any is made up when `host` is off loopback and either is missing.
 */
export function guardTokens(host: string, env: NodeJS.ProcessEnv): GuardTokens {
  const tokensConfigured = Boolean(env['MLOS_OPERATOR_TOKEN'] && env['MLOS_WORKER_TOKEN']);
  refuseOpenBindWithoutTokens(host, tokensConfigured);
  const generated: string[] = [];
  const token = (name: string, prefix: string, what: string) => {
    const given = env[name];
    if (given) return given;
    const made = `${prefix}${randomBytes(24).toString('base64url')}`;
    generated.push(`${what} token (generated): ${made}`);
    return made;
  };
  return {
    operatorToken: token('MLOS_OPERATOR_TOKEN', 'mlos_op_', 'operator'),
    workerToken: token('MLOS_WORKER_TOKEN', 'mlos_wk_', 'worker'),
    tokensConfigured,
    generated,
  };
}

export const INVALID = Symbol('invalid body');

export async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      sendJson(res, 413, { error: `request body over ${MAX_BODY} bytes` });
      return INVALID;
    }
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    sendJson(res, 400, {
      jsonrpc: '2.0',
      error: { code: -32700, message: 'parse error: the body is not JSON' },
      id: null,
    });
    return INVALID;
  }
}

export function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
  return m?.[1]?.trim();
}

export function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
