/**
 * The guard's tool names. The kernel owns this list: identity allow-lists are checked against it
 * and the guard implements exactly these tools.
 */
export const READ_TOOLS = ['get_need', 'search_needs', 'get_pack', 'expand_pointer', 'get_view'] as const;
export const WRITE_TOOLS = ['create_need', 'update_need', 'link', 'register_artifact', 'add_note'] as const;
export const LIFECYCLE_TOOLS = [
  'claim_need',
  'heartbeat',
  'finish',
  'reserve_budget',
  'settle_budget',
] as const;
/** Tools only the operator token sees; an identity may never list them. */
export const OPERATOR_TOOLS = ['graduate', 'cancel_task', 'pause_identity', 'resume_identity'] as const;

export const AGENT_TOOLS = [...READ_TOOLS, ...WRITE_TOOLS, ...LIFECYCLE_TOOLS] as const;
export const GUARD_TOOLS = [...AGENT_TOOLS, ...OPERATOR_TOOLS] as const;

export type AgentToolName = (typeof AGENT_TOOLS)[number];
export type GuardToolName = (typeof GUARD_TOOLS)[number];

/** What an identity gets when its file lists no tools: everything an agent may use. */
export const DEFAULT_IDENTITY_TOOLS: readonly AgentToolName[] = AGENT_TOOLS;

/** Tools every session needs to finish its task and stay within budget; always granted. */
export const REQUIRED_TOOLS: readonly AgentToolName[] = [
  'heartbeat',
  'finish',
  'reserve_budget',
  'settle_budget',
];

/**
 * Kernel invariants: code constants, not configuration. The guard enforces each of them; the
 * boot payload states them to every agent.
 */
export const KERNEL_INVARIANTS = [
  'An agent uses only the tools of its identity.',
  'An agent mutates only needs in its scope (its watch tags) or a need whose lease its task holds.',
  'No agent can edit an identity: identities change only when the operator accepts a new file.',
] as const;
