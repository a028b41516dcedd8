export { Checkpointer, type CheckpointerOptions } from './checkpointer.js';
export * from './clock.js';
export { FENCE_FIELD } from './context.js';
export * from './errors.js';
export { canonicalJson, type VerifyResult } from './event-log.js';
export { sha256 } from './hash.js';
export * from './random.js';
export type { AgentRecord } from './repos/agents.js';
export type { BudgetLimits, Reservation, Usage } from './repos/budgets.js';
export { RESERVATION_HOLD_MS, utcDay } from './repos/budgets.js';
export {
  type Claim,
  type ClaimOptions,
  type FinishOutcome,
  NotClaimableError,
  type Progress,
} from './repos/claims.js';
export { holdOf } from './repos/identities.js';
export type {
  GraduationCandidate,
  LockHolder,
  NeedStateRow,
  OutboxRow,
  RetryPolicy,
} from './repos/scheduling.js';
export type {
  ArtifactLine,
  Dependency,
  EventLine,
  LeaseHolder,
  NeedHead,
  NeedSelection,
  NodeLabel,
  TaskLine,
} from './repos/views.js';
export { DEFAULT_WORKSPACE } from './repos/workspaces.js';
export * from './schemas.js';
export { Store, type StoreOptions } from './store.js';
export * from './transitions.js';
export * from './types.js';
