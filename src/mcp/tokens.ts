import { createHmac, timingSafeEqual } from 'node:crypto';
import * as z from 'zod';

/**
 * Agent tokens: a signed, expiring statement of which identity (and, for a session, which task
 * and fencing token) the bearer acts as. The signing key is kept in the database, so tokens
 * survive a supervisor restart; the fencing token inside makes a stale session's writes fail.
 */
export const AgentClaimsSchema = z.strictObject({
  v: z.literal(1),
  identity: z.string(),
  agentId: z.string().optional(),
  task: z.string().optional(),
  need: z.string().optional(),
  fence: z.number().int().optional(),
  exp: z.number().int(),
});
export type AgentClaims = z.infer<typeof AgentClaimsSchema>;

const PREFIX = 'mlos_at_';

export function signAgentToken(claims: AgentClaims, key: string): string {
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${PREFIX}${body}.${mac(body, key)}`;
}

/** The claims of a valid, unexpired token, or a reason it was refused. */
export function verifyAgentToken(
  token: string,
  key: string,
  now: number,
): { ok: true; claims: AgentClaims } | { ok: false; reason: string } {
  if (!token.startsWith(PREFIX)) return { ok: false, reason: 'not an agent token' };
  const [body, sig] = token.slice(PREFIX.length).split('.');
  if (!body || !sig) return { ok: false, reason: 'malformed token' };
  if (!safeEqual(sig, mac(body, key))) return { ok: false, reason: 'bad signature' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed token' };
  }
  const claims = AgentClaimsSchema.safeParse(parsed);
  if (!claims.success) return { ok: false, reason: 'malformed token' };
  if (claims.data.exp <= now) return { ok: false, reason: 'token expired' };
  return { ok: true, claims: claims.data };
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function mac(body: string, key: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}
