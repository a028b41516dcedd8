import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type {
  JsonSchemaType,
  JsonSchemaValidator,
  jsonSchemaValidator,
} from '@modelcontextprotocol/sdk/validation/index.js';

/** Distinct schemas kept compiled at most (the guard has a few dozen; clients see the same ones). */
const MAX_SCHEMAS = 512;

/**
 * JSON Schema validators for MCP clients and servers, compiled once per distinct schema and
 * shared by every client and server of the process. The SDK's default builds a new Ajv instance
 * per client and server and compiles each tool's output schema on every `tools/list`: a worker
 * opens a guard client per task, which made that the largest cost of a short session. Schemas
 * are keyed by their JSON text, since every listing yields new objects.
 */
export class SharedSchemaValidator implements jsonSchemaValidator {
  readonly #ajv = new AjvJsonSchemaValidator();
  readonly #compiled = new Map<string, JsonSchemaValidator<unknown>>();

  getValidator<T>(schema: JsonSchemaType): JsonSchemaValidator<T> {
    const key = JSON.stringify(schema);
    let validator = this.#compiled.get(key);
    if (!validator) {
      if (this.#compiled.size >= MAX_SCHEMAS) this.#compiled.clear();
      validator = this.#ajv.getValidator<unknown>(schema);
      this.#compiled.set(key, validator);
    }
    return validator as JsonSchemaValidator<T>;
  }
}

export const sharedSchemaValidator = new SharedSchemaValidator();
