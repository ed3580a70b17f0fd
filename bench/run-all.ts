import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../temporal/binary.js';

/** Runs every benchmark in turn; each prints its own figures. `npm run bench`. */
for (const script of ['dispatch.ts', 'approve.ts', 'list.ts', 'worker-memory.ts', 'resolve.ts', 'release-ladder.ts', 'entity-history.ts', 'revoke-cascade.ts', 'dashboards.ts', 'ingest.ts', 'jsapi-list.ts', 'package-check.ts']) {
  console.log(`\n== bench/${script}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench', script)], { stdio: ['ignore', 'inherit', 'ignore'] });
  if (r.status !== 0) console.log(`(bench/${script} exited with ${r.status})`);
}
