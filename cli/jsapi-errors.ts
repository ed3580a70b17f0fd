/** How the CLI shows a submission refused for its JSAPIs (`jsapi_not_granted`): each API, why, and where it is called. */

interface MissingJsapiDetail {
  api: string;
  reason: 'not_granted' | 'unknown' | 'disabled' | string;
  calls?: { file: string; line: number; column?: number; via?: string }[];
  callCount?: number;
  grantedBy?: { name: string; key?: string }[];
}

const why: Record<string, string> = {
  not_granted: 'not granted by a feature the mini program holds',
  unknown: 'unknown: not in the workspace\'s JSAPI catalog',
  disabled: 'disabled in the workspace',
};

/** One block per missing JSAPI: `api  reason`, then `file:line:column` per call site. */
export function missingJsapiLines(missing: unknown): string[] {
  if (!Array.isArray(missing)) return [];
  const lines: string[] = [];
  for (const m of missing as MissingJsapiDetail[]) {
    if (!m || typeof m.api !== 'string') continue;
    const offer = m.grantedBy && m.grantedBy.length > 0 ? ` (apply for ${m.grantedBy.map((f) => `"${f.name}"`).join(' or ')})` : '';
    lines.push(`  ${m.api}: ${why[m.reason] ?? m.reason}${offer}`);
    const calls = m.calls ?? [];
    for (const c of calls) lines.push(`    ${c.file}:${c.line}${c.column ? `:${c.column}` : ''}${c.via === 'manifest' ? ' (declared)' : ''}`);
    const more = (m.callCount ?? calls.length) - calls.length;
    if (more > 0) lines.push(`    … and ${more} more`);
  }
  return lines;
}
