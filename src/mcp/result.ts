import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MlosError, NotClaimableError } from '../store/index.js';

/** The `_meta` key of a refused claim: when it becomes eligible (ms since the epoch), if known. */
export const ELIGIBLE_AT_META = 'mlos/eligibleAt';

/** A successful tool result: a short text rendering for the model plus the structured data. */
export function ok(text: string, data: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text }], structuredContent: data };
}

/** A refusal the model can act on: `isError` with the reason and what to do instead. */
export function refuse(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

/**
 * Runs a tool body and turns every failure into data for the model. mlos errors carry a message
 * written for the caller; anything else is a bug, reported without internals and logged.
 */
export async function guarded(
  tool: string,
  body: () => CallToolResult | Promise<CallToolResult>,
  log: (message: string, error: unknown) => void,
): Promise<CallToolResult> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof NotClaimableError && error.eligibleAt !== null) {
      // For programs (a worker's round-table loop): when to try again, besides the text.
      return {
        ...refuse(`${tool} refused: ${error.message}`),
        _meta: { [ELIGIBLE_AT_META]: error.eligibleAt },
      };
    }
    if (error instanceof MlosError) return refuse(`${tool} refused: ${error.message}`);
    log(`tool ${tool} failed unexpectedly`, error);
    return refuse(
      `${tool} failed because of an internal error in the guard; the database is unchanged. Retry once, then report it.`,
    );
  }
}

/** A refusal error raised inside a tool body: out of scope, wrong principal, and similar. */
export class GuardRefusal extends MlosError {
  constructor(message: string) {
    super('guard_refused', message);
  }
}
