export { createKernelCompiler } from './compiler.js';
export { createGuardDeps, DEFAULT_LEASE_MS, type GuardDepsOptions } from './deps.js';
export { BOOT_META, createGuardServer, GUARD_INSTRUCTIONS } from './guard.js';
export { type GuardHttpOptions, GuardHttpServer, isLoopback } from './http.js';
export { connectInMemory } from './in-memory.js';
export { actorOf, inView, OPERATOR, type Principal, visibleTools } from './principal.js';
export type { BootForAgent, GuardCompiler, GuardDeps } from './session.js';
export { type AgentClaims, signAgentToken, verifyAgentToken } from './tokens.js';
export { TRANSCRIPT_META } from './tools/lifecycle.js';
