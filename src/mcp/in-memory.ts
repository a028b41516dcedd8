import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { sharedSchemaValidator } from './schema-validator.js';

/**
 * Connects a real MCP client to a guard server over the SDK's linked in-memory pair: the
 * embedded transport, used by agents running in the supervisor's process.
 */
export async function connectInMemory(server: McpServer, name = 'mlos-agent'): Promise<Client> {
  const client = new Client({ name, version: '0.1.0' }, { jsonSchemaValidator: sharedSchemaValidator });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  return client;
}
