import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const toolsBin = path.join(repoRoot, '.tools', 'bin');

/** Tags tried in order: newer tags carry a `replace` directive that `go install` refuses. */
export const temporalCliTags = ['v1.5.1', 'v1.4.1', 'v1.3.0'];

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && executable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Finds the Temporal CLI: TEMPORAL_CLI, then `temporal` on PATH, then .tools/bin/temporal, and
 * otherwise builds it from the Go module (never a download of a prebuilt binary at run time).
 */
export function findOrBuildTemporal(opts: { cli?: string; log?: (line: string) => void } = {}): string {
  const log = opts.log ?? ((l: string) => console.error(l));
  if (opts.cli) {
    if (!executable(opts.cli)) throw new Error(`TEMPORAL_CLI=${opts.cli} is not an executable file`);
    return opts.cli;
  }
  const local = path.join(toolsBin, 'temporal');
  const found = onPath('temporal') ?? (executable(local) ? local : undefined);
  if (found) return found;
  mkdirSync(toolsBin, { recursive: true });
  const errors: string[] = [];
  for (const tag of temporalCliTags) {
    log(`Building the Temporal CLI ${tag} with go install (first run only, a few minutes)…`);
    const r = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${tag}`], {
      env: { ...process.env, GOBIN: toolsBin },
      stdio: ['ignore', 'inherit', 'pipe'],
      encoding: 'utf8',
    });
    if (r.status === 0 && existsSync(local)) {
      log(`Built the Temporal CLI ${tag} at ${local}`);
      return local;
    }
    errors.push(`${tag}: ${(r.stderr ?? r.error?.message ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  }
  throw new Error(`Could not build the Temporal CLI with go install:\n${errors.join('\n')}`);
}
