/** The logging surface the scheduler needs; pino's logger satisfies it. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };

/** The Timers port lives with the Clock in the store layer; re-exported for the scheduler's users. */
export { realTimers, type Timers } from '../store/clock.js';
