import type { ApiDeps } from '../../api/deps.js';
import { IngestBuffer } from './ingest.js';
import type { IngestSink } from './types.js';

/**
 * The API process's ingest buffer over its pg pool, with crash grouping inside each flush and
 * alerts (a `crashAlert` workflow per new group in a rolling-out version) after commit.
 */
export function createIngest(deps: ApiDeps): IngestSink {
  return new IngestBuffer({ pool: deps.pool, settings: deps.config.analytics });
}
