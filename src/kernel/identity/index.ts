export { formatDurationMs, parseDurationValue } from './duration.js';
export { IdentityFileError, type IdentityIssue } from './errors.js';
export { deepFreeze } from './freeze.js';
export {
  displayPath,
  type IdentityDir,
  type IdentityFile,
  listIdentityFiles,
  loadIdentityDir,
  loadIdentityFile,
  readIdentity,
} from './load.js';
export {
  identityHash,
  type ParseIdentityOptions,
  type ParseIdentityResult,
  parseIdentity,
  safeParseIdentity,
} from './parse.js';
export {
  type AcceptResult,
  acceptIdentity,
  type DriftReport,
  diffIdentities,
  type ExcludedIdentity,
  type IdentityState,
  type IdentityStatus,
  identityFromPin,
  identityStatus,
  identityStatuses,
  type RunnableIdentities,
  resolveRunnableIdentities,
  runnableIdentities,
  type SyncChange,
  type SyncReport,
  shortHash,
  syncIdentities,
} from './pins.js';
export * from './schema.js';
export { didYouMean } from './suggest.js';
export {
  IdentityWatcher,
  type IdentityWatcherOptions,
  type IdentityWatcherState,
  WATCH_DEFAULTS,
} from './watcher.js';
