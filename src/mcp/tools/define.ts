import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { visibleTools } from '../principal.js';
import { guarded } from '../result.js';
import type { GuardSession } from '../session.js';

export interface ToolSpec<S extends z.ZodRawShape> {
  readonly name: string;
  readonly description: string;
  /**
   * The argument and result shapes, as functions: called once per tool name for the process
   * (a guard server is built per task, and building zod shapes each time was most of its cost).
   */
  readonly input: () => S;
  readonly output?: () => z.ZodRawShape;
  readonly readOnly?: boolean;
  /** `meta` is the call's `_meta`: data the client sends the guard that the model never sees. */
  readonly run: (
    args: z.infer<z.ZodObject<S>>,
    meta: Readonly<Record<string, unknown>>,
  ) => CallToolResult | Promise<CallToolResult>;
}

/** Registers a tool if this session's principal may see it; failures become isError results. */
export function defineTool<S extends z.ZodRawShape>(
  server: McpServer,
  session: GuardSession,
  spec: ToolSpec<S>,
): void {
  if (!visibleTools(session.principal).includes(spec.name)) return;
  const schemas = schemasOf(spec);
  server.registerTool(
    spec.name,
    {
      description: spec.description,
      inputSchema: schemas.input,
      ...(schemas.output && { outputSchema: schemas.output }),
      annotations: { readOnlyHint: spec.readOnly ?? false },
    },
    // The SDK's callback type is generic over the shape; our spec already fixed it.
    ((args: z.infer<z.ZodObject<S>>, extra: { _meta?: Record<string, unknown> }) =>
      guarded(spec.name, () => spec.run(args, extra._meta ?? {}), session.deps.log)) as never,
  );
}

/**
 * A tool's input and output as zod objects, built once per tool name: a guard server is built per
 * principal (per agent task), and the shapes of one tool never differ between servers.
 */
const builtSchemas = new Map<string, { input: z.ZodObject; output: z.ZodObject | undefined }>();

function schemasOf(spec: Pick<ToolSpec<z.ZodRawShape>, 'name' | 'input' | 'output'>): {
  input: z.ZodObject;
  output: z.ZodObject | undefined;
} {
  let built = builtSchemas.get(spec.name);
  if (!built) {
    built = { input: z.object(spec.input()), output: spec.output && z.object(spec.output()) };
    builtSchemas.set(spec.name, built);
  }
  return built;
}
