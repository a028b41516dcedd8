import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MlosError, type Store } from '../store/index.js';

/**
 * Calls a guard tool with operator scope over the in-memory transport: operator commands of the
 * CLI pass the same guard as every other writer. Returns the structured result; a refusal is
 * thrown as an MlosError carrying the guard's reason. The guard (the MCP SDK, the context
 * compilers, the tokenizer) is loaded on the first call, so commands that only read start fast.
 */
export async function callGuardAsOperator(
  store: Store,
  tool: string,
  args: Record<string, unknown>,
): Promise<{ text: string; data: Record<string, unknown> }> {
  const { connectInMemory, createGuardDeps, createGuardServer, OPERATOR } = await import('../mcp/index.js');
  const server = createGuardServer(createGuardDeps(store.as('operator')), OPERATOR);
  const client = await connectInMemory(server, 'mlos-cli');
  try {
    const result = (await client.callTool({ name: tool, arguments: args })) as CallToolResult;
    const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
    if (result.isError) throw new MlosError('refused', text.replace(new RegExp(`^${tool} refused: `), ''));
    return { text, data: (result.structuredContent ?? {}) as Record<string, unknown> };
  } finally {
    await client.close();
    await server.close();
  }
}
