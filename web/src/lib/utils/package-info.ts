import { strFromU8, unzipSync } from 'fflate';

/** What the console can tell about a package before uploading it (the server does the real check). */
export interface PackageInfo {
  /** The version the package declares (app.json, package.json, project.config.json, mini.project.json). */
  version: string | null;
  versionSource: string | null;
  /** Pages listed in app.json, sub packages included. */
  pageCount: number | null;
  hasAppJson: boolean;
}

const rootFiles = ['app.json', 'package.json', 'project.config.json', 'mini.project.json'];

/** Reads the root JSON files of a zip (only those are inflated). Null when it is not a readable zip. */
export async function readPackageInfo(file: File): Promise<PackageInfo | null> {
  if (file.size > 64 * 1024 * 1024) return null;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const files = unzipSync(bytes, { filter: (f) => rootFiles.includes(f.name.replace(/^\.\//, '')) && f.originalSize < 1024 * 1024 });
    const docs = new Map<string, Record<string, unknown>>();
    for (const [name, data] of Object.entries(files)) {
      try {
        const doc = JSON.parse(strFromU8(data)) as unknown;
        if (doc && typeof doc === 'object' && !Array.isArray(doc)) docs.set(name.replace(/^\.\//, ''), doc as Record<string, unknown>);
      } catch {
        /* unreadable side files declare nothing */
      }
    }
    let version: string | null = null;
    let versionSource: string | null = null;
    for (const name of rootFiles) {
      const v = docs.get(name)?.version;
      if (typeof v === 'string' && v.trim()) {
        version = v.trim();
        versionSource = name;
        break;
      }
    }
    const app = docs.get('app.json');
    let pageCount: number | null = null;
    if (app) {
      const pages = Array.isArray(app.pages) ? app.pages.length : 0;
      const subs = (Array.isArray(app.subPackages) ? app.subPackages : Array.isArray(app.subpackages) ? app.subpackages : []) as { pages?: unknown[] }[];
      pageCount = pages + subs.reduce((n, s) => n + (Array.isArray(s?.pages) ? s.pages.length : 0), 0);
    }
    return { version, versionSource, pageCount, hasAppJson: docs.has('app.json') || 'app.json' in files, };
  } catch {
    return null;
  }
}

export const semverPattern = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** The next patch version after the newest semver in the list ("1.2.3" → "1.2.4"), or "1.0.0". */
export function nextVersion(existing: string[]): string {
  const parsed = existing
    .map((v) => semverPattern.exec(v))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => [Number(m[1]), Number(m[2]), Number(m[3])] as const)
    .sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);
  const top = parsed[0];
  return top ? `${top[0]}.${top[1]}.${top[2] + 1}` : '1.0.0';
}
