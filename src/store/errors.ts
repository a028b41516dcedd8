/**
 * One error base for mlos. Every error has a stable string `code` to branch on; subclasses
 * say who is at fault. Messages say what failed, which id, and what to do next.
 */
export class MlosError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input or configuration: the caller can fix it by changing what they sent. */
export class UserError extends MlosError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'user_error', message, options);
  }
}

/** A command line that cannot mean anything: a bad flag value, flags that exclude each other. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, { code: 'usage' });
  }
}

/** An id that names nothing. */
export class NotFoundError extends UserError {
  constructor(kind: string, id: string, hint = '') {
    super(`${kind} ${id} does not exist${hint ? `: ${hint}` : ''}`, { code: 'not_found' });
  }
}

/** A state change the transition table does not allow. */
export class IllegalTransitionError extends MlosError {
  readonly entity: string;
  readonly from: string;
  readonly to: string;

  constructor(entity: string, from: string, to: string, hint = '') {
    super(
      'illegal_transition',
      `illegal transition of ${entity}: ${from} → ${to} is not allowed${hint ? ` (${hint})` : ''}`,
    );
    this.entity = entity;
    this.from = from;
    this.to = to;
  }
}

/** Optimistic concurrency failed: someone else changed the row first. */
export class ConflictError extends MlosError {
  readonly currentVersion: number;

  constructor(entity: string, expected: number, current: number) {
    super(
      'conflict',
      `${entity} is at version ${current}, not ${expected}: someone changed it first; re-read it and retry with version ${current}`,
    );
    this.currentVersion = current;
  }
}

/** A write carried a fencing token that is no longer the need's current one. */
export class LeaseLostError extends MlosError {
  constructor(message: string) {
    super('lease_lost', message);
  }
}

/** A `depends_on` edge would close a cycle. */
export class CycleError extends UserError {
  readonly cycle: readonly string[];

  constructor(cycle: readonly string[]) {
    super(`depends_on cycle refused: ${cycle.join(' → ')}; remove one of these edges first`, {
      code: 'cycle',
    });
    this.cycle = cycle;
  }
}

/** An identity file no longer matches its pinned hash. */
export class IdentityDriftError extends MlosError {
  constructor(message: string) {
    super('identity_drift', message);
  }
}

/** The database cannot be used by this build (newer schema, live supervisor, corruption). */
export class DatabaseError extends MlosError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A budget would be exceeded by the requested reservation. */
export class BudgetExceededError extends MlosError {
  constructor(message: string) {
    super('budget_exceeded', message);
  }
}

/** An LLM provider failed in a way the caller must handle. */
export class ProviderError extends MlosError {
  readonly retryable: boolean;

  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super('provider_error', message, options);
    this.retryable = options.retryable;
  }
}
