import type { NeedState } from '../roundtable/need-bus.js';
import type { ClaimAttempt, TakeoverPort, TakeoverSeat } from '../roundtable/takeover-loop.js';
import type { GuardConnector, StartedTask } from './connector.js';

/** What the port reads of the worker that hosts the loop. */
export interface TakeoverHost {
  readonly running: number;
  runningOf(identity: string): number;
  isRunning(identity: string, needId: string): boolean;
}

export interface TakeoverPortOptions {
  readonly connector: GuardConnector;
  /** The worker's sessions at once, across its identities. */
  readonly concurrency: number;
  /** Each seat identity's capacity (sessions at once on this worker). */
  readonly capacity: ReadonlyMap<string, number>;
  /** Starts a claimed session in the background; it must count as running when this returns. */
  readonly run: (started: StartedTask) => void;
}

/**
 * The scheduler's side of the round-table loop ("claim and run"): free capacity from the worker's
 * running sessions, need states and claims through the guard connector, and the session started
 * in the worker as soon as the claim is won.
 */
export function createTakeoverPort(host: TakeoverHost, options: TakeoverPortOptions): TakeoverPort {
  return {
    freeCapacity(identity: string) {
      return {
        worker: options.concurrency - host.running,
        identity: (options.capacity.get(identity) ?? 0) - host.runningOf(identity),
      };
    },
    isRunning: (identity, needId) => host.isRunning(identity, needId),
    needState: (needId: string): Promise<NeedState | undefined> => options.connector.needState(needId),
    async claimAndRun(needId: string, seat: TakeoverSeat): Promise<ClaimAttempt> {
      const result = await options.connector.claimAndStart(needId, seat.identity.name, seat.agentId);
      if ('refused' in result)
        return { started: false, reason: result.refused, eligibleAt: result.eligibleAt };
      options.run(result.started);
      return { started: true, taskId: result.started.taskId };
    },
  };
}
