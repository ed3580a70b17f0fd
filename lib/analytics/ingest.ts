import type pg from 'pg';
import type { Config } from '../config.js';
import type { AcceptResult, AnalyticsEvent, CrashGroupApplier, CrashGroupNews, FlushResult, IngestSink } from './types.js';

export interface IngestOptions {
  pool: pg.Pool;
  settings: Config['analytics'];
  /** Maintains crash groups inside the flush transaction (lib/analytics/crash-groups.ts). */
  applyCrashGroups?: CrashGroupApplier;
  /** Told after commit about crash groups that are new or reopened (alerts). */
  onCrashNews?: (news: CrashGroupNews[]) => void;
}

/** PLACEHOLDER (issue 7 scaffolding): the buffered writer. */
export class IngestBuffer implements IngestSink {
  constructor(readonly options: IngestOptions) {}
  get pending() {
    return 0;
  }
  accept(_events: AnalyticsEvent[]): AcceptResult {
    throw new Error('not built yet');
  }
  async acceptAndWait(_events: AnalyticsEvent[]): Promise<FlushResult> {
    throw new Error('not built yet');
  }
  async flush(): Promise<FlushResult> {
    return { written: 0, duplicates: 0 };
  }
  async close(): Promise<void> {}
}
