import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { zipSync, type Zippable } from 'fflate';

/** A package ready to upload. */
export interface Package {
  bytes: Uint8Array;
  /** Files zipped from a directory, or null when a zip was given. */
  fileCount: number | null;
}

/** Already compressed formats are stored, not deflated again. */
const stored = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp', '.mp3', '.mp4', '.zip', '.woff', '.woff2']);
/** A fixed timestamp: the same tree always zips to the same bytes (and the same sha256). */
const mtime = new Date('1980-01-01T00:00:00Z');

/** Never packed: dependencies, VCS data, and dotfiles or dot-directories at any depth. */
export const skipped = (name: string) => name === 'node_modules' || name.startsWith('.');

/** Reads a `.zip` as is, or zips a directory in memory with {@link zipDirectory}. */
export function loadPackage(source: string): Package {
  let st;
  try {
    st = statSync(source);
  } catch {
    throw new Error(`${source}: no such file or directory`);
  }
  if (st.isDirectory()) return zipDirectory(source);
  return { bytes: readFileSync(source), fileCount: null };
}

/**
 * Zips the files under `dir` (paths relative to it, so its `app.json` lands at the zip's root),
 * in sorted order with a fixed mtime, skipping what {@link skipped} says. Symlinks to files are
 * followed; symlinked directories are not.
 */
export function zipDirectory(dir: string): Package {
  const files: Zippable = {};
  let fileCount = 0;
  const walk = (rel: string) => {
    const entries = readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (skipped(e.name)) continue;
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      const full = path.join(dir, relPath);
      if (e.isDirectory()) walk(relPath);
      else if (e.isFile() || (e.isSymbolicLink() && statSync(full, { throwIfNoEntry: false })?.isFile())) {
        files[relPath] = [readFileSync(full), { level: stored.has(path.extname(e.name).toLowerCase()) ? 0 : 6, mtime }];
        fileCount += 1;
      }
    }
  };
  walk('');
  if (!fileCount) throw new Error(`${dir} has no files to upload`);
  return { bytes: zipSync(files), fileCount };
}
