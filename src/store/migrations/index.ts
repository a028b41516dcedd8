import { sql as init } from './0001-init.js';
import { sql as progress } from './0002-progress.js';
import { sql as openReservations } from './0003-open-reservations.js';
import { sql as budgetTotals } from './0004-budget-totals.js';
import { sql as eventLookups } from './0005-event-lookups.js';
import { sql as dependencyIndex } from './0006-dependency-index.js';
import { sql as needMoves } from './0007-need-moves.js';
import { sql as leanEventLog } from './0008-lean-event-log.js';
import { sql as needRetries } from './0009-need-retries.js';
import { sql as modelOutages } from './0010-model-outages.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Numbered migrations, applied in order inside one transaction at open. Never edit a shipped one. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'init', sql: init },
  { version: 2, name: 'progress', sql: progress },
  { version: 3, name: 'open-reservations', sql: openReservations },
  { version: 4, name: 'budget-totals', sql: budgetTotals },
  { version: 5, name: 'event-lookups', sql: eventLookups },
  { version: 6, name: 'dependency-index', sql: dependencyIndex },
  { version: 7, name: 'need-moves', sql: needMoves },
  { version: 8, name: 'lean-event-log', sql: leanEventLog },
  { version: 9, name: 'need-retries', sql: needRetries },
  { version: 10, name: 'model-outages', sql: modelOutages },
];

export const SCHEMA_VERSION = MIGRATIONS.length;
