export { assertRunnable, claimAsAgent } from './agent-claim.js';
export {
  createKernelCompiler,
  DEFAULT_AWARENESS_MAX_AGE_MS,
  type KernelCompilerOptions,
} from './compiler.js';
export { createGuardDeps, DEFAULT_LEASE_MS, type GuardDepsOptions } from './deps.js';
export { BOOT_META, createGuardServer, GUARD_INSTRUCTIONS } from './guard.js';
export { type GuardHttpOptions, GuardHttpServer } from './http.js';
export { GUARD_NOW_HEADER, isLoopback } from './http-io.js';
export { connectInMemory } from './in-memory.js';
export { notifyOnChange } from './notify.js';
export { actorOf, inView, OPERATOR, type Principal, visibleTools } from './principal.js';
export { ELIGIBLE_AT_META } from './result.js';
export { SharedSchemaValidator, sharedSchemaValidator } from './schema-validator.js';
export type { BootForAgent, GuardCompiler, GuardDeps } from './session.js';
export { type AgentClaims, signAgentToken, verifyAgentToken } from './tokens.js';
export { TRANSCRIPT_META } from './tools/lifecycle.js';
