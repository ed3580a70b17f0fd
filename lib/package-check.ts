/**
 * Validation of uploaded mini program packages.
 *
 * A package is a zip archive held in memory. {@link checkPackage} walks it once,
 * entry by entry, and rejects it with a {@link PackageError} when it is not a
 * zip, tries to escape the extraction directory, is too big (counted in real
 * inflated bytes, so zip bombs with lying headers are caught too), or is not a
 * coherent mini program (Alipay `.axml` or WeChat `.wxml` flavour).
 *
 * The module is pure: no file system, network or database access.
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';

/** Resource limits applied while scanning a package. Sizes are in bytes. */
export interface PackageLimits {
  /** Maximum number of zip entries (files and directories). */
  maxEntries: number;
  /** Maximum uncompressed size of a single entry. */
  maxEntryBytes: number;
  /** Maximum uncompressed size of all entries together. */
  maxTotalBytes: number;
}

/** Default limits: 2000 entries, 8 MiB per entry, 32 MiB uncompressed in total. */
export const defaultPackageLimits: PackageLimits = Object.freeze({
  maxEntries: 2000,
  maxEntryBytes: 8 * 1024 * 1024,
  maxTotalBytes: 32 * 1024 * 1024,
});

/** What {@link checkPackage} learned about a valid package. */
export interface PackageSummary {
  /** Hex SHA-256 of the whole zip buffer. */
  sha256: string;
  /** Byte length of the zip buffer. */
  size: number;
  /** Main package pages, as listed in `app.json`. */
  pages: string[];
  /** Sub packages; `root` has no trailing slash, `pages` are relative to `root`. */
  subPackages: { root: string; pages: string[] }[];
  /** Number of zip entries, directories included. */
  entryCount: number;
  /** Real (inflated) size of all entries. */
  uncompressedBytes: number;
  /** Version declared by the package (equal to the version given), or null if it declares none. */
  manifestVersion: string | null;
  /** Best-effort display name (app.json `name`, project config, package.json, window title), or null. */
  appName: string | null;
  /** Content of the file entries `opts.collect` asked for (path → bytes), read in the same pass. */
  collected?: Map<string, Buffer>;
}

/** Every code a {@link PackageError} can carry. */
export type PackageErrorCode =
  | 'package_version_invalid'
  | 'package_not_zip'
  | 'package_path_escape'
  | 'package_too_many_entries'
  | 'package_entry_too_large'
  | 'package_too_large_uncompressed'
  | 'package_manifest_missing'
  | 'package_manifest_invalid'
  | 'package_subpackage_invalid'
  | 'package_page_missing'
  | 'package_version_mismatch';

/** A package was rejected. `code` is stable and machine-readable; `details` helps the uploader fix it. */
export class PackageError extends Error {
  constructor(
    public code: PackageErrorCode,
    message: string,
    public details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'PackageError';
  }
}

/** Root files whose content is kept (all small JSON documents). */
const ROOT_JSON_FILES = ['app.json', 'package.json', 'project.config.json', 'mini.project.json'] as const;
type RootJsonFile = (typeof ROOT_JSON_FILES)[number];

/**
 * Validate a mini program package and summarise it.
 *
 * @param zip the uploaded zip archive
 * @param opts.version the semver version the uploader claims for this package; if the
 *   package itself declares a version (app.json, package.json, project.config.json or
 *   mini.project.json `version`) it must be identical
 * @param opts.limits resource limits, {@link defaultPackageLimits} by default
 * @param opts.collect keep the content of the file entries it accepts (normalised path) in
 *   `summary.collected`, so that callers scanning contents (lib/jsapi-scan.ts) do not unzip twice
 * @throws {PackageError} when the package is rejected
 */
export async function checkPackage(
  zip: Buffer,
  opts: { version: string; limits?: PackageLimits; collect?: (path: string) => boolean },
): Promise<PackageSummary> {
  const limits = opts.limits ?? defaultPackageLimits;
  if (typeof opts.version !== 'string' || !isSemver(opts.version)) {
    throw new PackageError('package_version_invalid', `version ${JSON.stringify(opts.version)} is not a semver version (e.g. 1.2.3)`, {
      given: opts.version,
    });
  }

  const scan = await scanZip(zip, limits, opts.collect);

  const appJson = scan.rootJson.get('app.json');
  if (appJson === undefined) {
    throw new PackageError('package_manifest_missing', 'app.json not found at the root of the package', {
      hint: 'zip the contents of the mini program folder, not the folder itself',
    });
  }
  const manifest = parseManifest(appJson);
  const subPackages = parseSubPackages(manifest);

  // Every page needs its logic file and a template of either flavour.
  const allPages = [...manifest.pages, ...subPackages.flatMap((sp) => sp.pages.map((p) => `${sp.root}/${p}`))];
  const missing = allPages.filter(
    (page) => !scan.files.has(`${page}.js`) || !(scan.files.has(`${page}.axml`) || scan.files.has(`${page}.wxml`)),
  );
  if (missing.length > 0) {
    throw new PackageError(
      'package_page_missing',
      `${missing.length} page(s) listed in app.json lack their .js or .axml/.wxml file: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      { pages: missing },
    );
  }

  const docs = new Map<RootJsonFile, Record<string, unknown>>([['app.json', manifest.raw]]);
  for (const name of ROOT_JSON_FILES) {
    if (name === 'app.json') continue;
    const buf = scan.rootJson.get(name);
    const doc = buf === undefined ? undefined : parseJsonObject(buf);
    if (doc !== undefined) docs.set(name, doc); // unreadable side files simply declare nothing
  }

  let manifestVersion: string | null = null;
  for (const [source, doc] of docs) {
    if (doc.version === undefined || doc.version === null) continue;
    const declared = typeof doc.version === 'string' ? doc.version : JSON.stringify(doc.version);
    if (declared !== opts.version) {
      throw new PackageError(
        'package_version_mismatch',
        `${source} declares version ${declared} but the upload is for version ${opts.version}`,
        { declared, given: opts.version, source },
      );
    }
    manifestVersion ??= declared;
  }

  return {
    sha256: createHash('sha256').update(zip).digest('hex'),
    size: zip.length,
    pages: manifest.pages,
    subPackages,
    entryCount: scan.entryCount,
    uncompressedBytes: scan.uncompressedBytes,
    manifestVersion,
    appName: findAppName(docs),
    ...(opts.collect ? { collected: scan.collected } : {}),
  };
}

// ---------------------------------------------------------------------------
// Zip scanning

interface ZipScan {
  /** Normalised paths of all file (non-directory) entries. */
  files: Set<string>;
  /** Content of the root JSON files we care about. */
  rootJson: Map<RootJsonFile, Buffer>;
  entryCount: number;
  uncompressedBytes: number;
  /** Entries kept for `collect`. */
  collected: Map<string, Buffer>;
}

/** Read every entry once, enforcing path safety and size limits on real inflated bytes. */
async function scanZip(zip: Buffer, limits: PackageLimits, collect?: (path: string) => boolean): Promise<ZipScan> {
  const zipfile = await openZip(zip);
  const scan: ZipScan = { files: new Set(), rootJson: new Map(), entryCount: 0, uncompressedBytes: 0, collected: new Map() };
  let current: string | undefined;
  try {
    if (zipfile.entryCount > limits.maxEntries) throw tooManyEntries(zipfile.entryCount, limits);

    for (let entry = await nextEntry(zipfile); entry !== null; entry = await nextEntry(zipfile)) {
      const name = entryName(entry);
      current = name;
      scan.entryCount += 1;
      if (scan.entryCount > limits.maxEntries) throw tooManyEntries(scan.entryCount, limits);

      // Cheap early rejection based on what the headers claim...
      if (entry.uncompressedSize > limits.maxEntryBytes) throw entryTooLarge(name, entry.uncompressedSize, limits);
      if (scan.uncompressedBytes + entry.uncompressedSize > limits.maxTotalBytes) {
        throw totalTooLarge(scan.uncompressedBytes + entry.uncompressedSize, limits);
      }

      // ...then the real count, which does not trust the headers at all.
      const path = normalisePath(name);
      const wanted = collect !== undefined && !name.endsWith('/') && collect(path);
      const keep = wanted || (ROOT_JSON_FILES as readonly string[]).includes(path);
      const chunks: Buffer[] = [];
      let entryBytes = 0;
      let crc = 0;
      await readEntry(zipfile, entry, (chunk) => {
        entryBytes += chunk.length;
        if (entryBytes > limits.maxEntryBytes) throw entryTooLarge(name, entryBytes, limits);
        if (scan.uncompressedBytes + entryBytes > limits.maxTotalBytes) {
          throw totalTooLarge(scan.uncompressedBytes + entryBytes, limits);
        }
        crc = crc32(chunk, crc);
        if (keep) chunks.push(chunk);
      });
      scan.uncompressedBytes += entryBytes;
      if (crc !== entry.crc32) {
        throw new PackageError('package_not_zip', `corrupt zip: CRC mismatch in ${name}`, { entry: name });
      }

      if (name.endsWith('/')) continue; // directory entry
      scan.files.add(path);
      if (keep) {
        const content = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        if ((ROOT_JSON_FILES as readonly string[]).includes(path)) scan.rootJson.set(path as RootJsonFile, content);
        if (wanted) scan.collected.set(path, content);
      }
    }
    return scan;
  } catch (err) {
    throw toPackageError(err, current);
  } finally {
    zipfile.close();
  }
}

function openZip(zip: Buffer): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    if (!Buffer.isBuffer(zip) || zip.length === 0) {
      reject(new PackageError('package_not_zip', 'the upload is empty or not a zip archive'));
      return;
    }
    // decodeStrings: false — we validate entry names ourselves so that unsafe names map to
    // package_path_escape instead of a generic yauzl error.
    yauzl.fromBuffer(zip, { lazyEntries: true, validateEntrySizes: true, decodeStrings: false }, (err, zipfile) => {
      if (err || !zipfile) reject(new PackageError('package_not_zip', `not a zip archive: ${err?.message ?? 'unreadable'}`));
      else resolve(zipfile);
    });
  });
}

/** The next central directory entry, or null at the end. */
function nextEntry(zipfile: ZipFile): Promise<Entry | null> {
  return new Promise((resolve, reject) => {
    const done = () => {
      zipfile.off('entry', onEntry).off('end', onEnd).off('error', onError);
    };
    const onEntry = (entry: Entry) => (done(), resolve(entry));
    const onEnd = () => (done(), resolve(null));
    const onError = (err: Error) => (done(), reject(err));
    zipfile.on('entry', onEntry).on('end', onEnd).on('error', onError);
    zipfile.readEntry();
  });
}

/** Stream an entry's inflated bytes into `onChunk`; if it throws, the stream is destroyed. */
async function readEntry(zipfile: ZipFile, entry: Entry, onChunk: (chunk: Buffer) => void): Promise<void> {
  const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => {
    zipfile.openReadStream(entry, (err, s) => (err || !s ? reject(err ?? new Error('no stream')) : resolve(s)));
  });
  for await (const chunk of stream) onChunk(chunk as Buffer);
}

function toPackageError(err: unknown, entry: string | undefined): PackageError {
  if (err instanceof PackageError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // yauzl (validateEntrySizes) stops an entry that inflates past the size its header declares:
  // that is a zip bomb with a lying header.
  if (message.startsWith('too many bytes in the stream')) {
    return new PackageError('package_entry_too_large', `${entry ?? 'an entry'} inflates past its declared size (${message})`, {
      entry,
      reason: 'inflated_past_declared_size',
    });
  }
  return new PackageError('package_not_zip', `corrupt zip${entry ? ` at ${entry}` : ''}: ${message}`, { entry });
}

function tooManyEntries(count: number, limits: PackageLimits): PackageError {
  return new PackageError('package_too_many_entries', `the package has more than ${limits.maxEntries} entries`, {
    entries: count,
    limit: limits.maxEntries,
  });
}

function entryTooLarge(entry: string, bytes: number, limits: PackageLimits): PackageError {
  return new PackageError('package_entry_too_large', `${entry} is larger than ${limits.maxEntryBytes} bytes uncompressed`, {
    entry,
    bytes,
    limit: limits.maxEntryBytes,
  });
}

function totalTooLarge(bytes: number, limits: PackageLimits): PackageError {
  return new PackageError(
    'package_too_large_uncompressed',
    `the package is larger than ${limits.maxTotalBytes} bytes uncompressed`,
    { bytes, limit: limits.maxTotalBytes },
  );
}

// ---------------------------------------------------------------------------
// Entry names

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeName(raw: Buffer): string {
  try {
    return utf8.decode(raw);
  } catch {
    return raw.toString('latin1'); // legacy code page; the characters we check are ASCII either way
  }
}

/**
 * The entry's name, after checking that it (and any Info-ZIP Unicode Path alias, which
 * extractors prefer) stays inside the extraction directory.
 */
function entryName(entry: Entry): string {
  const raw: unknown = entry.fileName; // a Buffer because of decodeStrings: false
  const name = Buffer.isBuffer(raw) ? decodeName(raw) : String(raw);
  const names = [name];
  for (const field of entry.extraFields ?? []) {
    // 0x7075: version (1 byte), CRC of the plain name (4 bytes), UTF-8 name.
    if (field.id === 0x7075 && field.data.length > 5) names.push(field.data.subarray(5).toString('utf8'));
  }
  for (const n of names) {
    const reason = unsafePathReason(n);
    if (reason) {
      throw new PackageError('package_path_escape', `unsafe entry name ${JSON.stringify(n)}: ${reason}`, { entry: n, reason });
    }
  }
  return names[names.length - 1];
}

function unsafePathReason(name: string): string | null {
  if (name === '') return 'empty name';
  if (name.includes('\\')) return 'backslash in name';
  if (name.includes('\0')) return 'NUL in name';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[a-zA-Z]:/.test(name)) return 'drive letter';
  if (name.split('/').includes('..')) return 'parent directory segment';
  return null;
}

/** `./a//b/` → `a/b` */
function normalisePath(name: string): string {
  return name
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

// ---------------------------------------------------------------------------
// Manifest

interface Manifest {
  raw: Record<string, unknown>;
  pages: string[];
}

function parseJsonObject(buf: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(buf.toString('utf8').replace(/^\uFEFF/, ''));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function parseManifest(buf: Buffer): Manifest {
  const raw = parseJsonObject(buf);
  if (raw === undefined) throw new PackageError('package_manifest_invalid', 'app.json is not a JSON object');
  const pages = raw.pages;
  if (!Array.isArray(pages) || pages.length === 0 || !pages.every((p) => typeof p === 'string')) {
    throw new PackageError('package_manifest_invalid', 'app.json "pages" must be a non-empty array of strings', { field: 'pages' });
  }
  const bad = pages.filter((p) => !isPagePath(p));
  if (bad.length > 0) {
    throw new PackageError('package_manifest_invalid', `app.json lists invalid page paths: ${bad.join(', ')}`, { field: 'pages', pages: bad });
  }
  return { raw, pages };
}

/** `subPackages` (or the older `subpackages`) entries, with normalised roots. */
function parseSubPackages(manifest: Manifest): { root: string; pages: string[] }[] {
  const list = manifest.raw.subPackages ?? manifest.raw.subpackages;
  if (list === undefined) return [];
  const invalid = (message: string, details: Record<string, unknown> = {}) =>
    new PackageError('package_subpackage_invalid', `app.json subPackages: ${message}`, details);
  if (!Array.isArray(list)) throw invalid('must be an array');

  return list.map((sp: unknown, index) => {
    if (!isObject(sp)) throw invalid(`entry ${index} is not an object`, { index });
    const root = typeof sp.root === 'string' ? sp.root.replace(/^\.\//, '').replace(/\/+$/, '') : undefined;
    if (root === undefined || !isPagePath(root)) {
      throw invalid(`entry ${index} needs a relative "root" directory`, { index, root: sp.root });
    }
    const pages = sp.pages;
    if (!Array.isArray(pages) || !pages.every((p) => typeof p === 'string')) {
      throw invalid(`entry ${index} (${root}) needs a "pages" array of strings`, { index, root });
    }
    const bad = pages.filter((p) => !isPagePath(p));
    if (bad.length > 0) throw invalid(`entry ${index} (${root}) lists invalid page paths`, { index, root, pages: bad });
    return { root, pages: [...pages] };
  });
}

/** A relative, forward-slash path without `.`/`..`/empty segments. */
function isPagePath(p: string): boolean {
  return p !== '' && !p.includes('\\') && !/^[a-zA-Z]:/.test(p) && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

function findAppName(docs: Map<RootJsonFile, Record<string, unknown>>): string | null {
  const app = docs.get('app.json');
  const window = isObject(app?.window) ? app.window : undefined;
  const candidates = [
    app?.name,
    docs.get('project.config.json')?.projectname,
    docs.get('mini.project.json')?.name,
    docs.get('package.json')?.name,
    window?.navigationBarTitleText,
    window?.defaultTitle,
  ];
  const found = candidates.find((c): c is string => typeof c === 'string' && c.trim() !== '');
  return found?.trim() ?? null;
}

// ---------------------------------------------------------------------------
// Small helpers

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

function isSemver(v: string): boolean {
  return v.length <= 256 && SEMVER.test(v);
}

/** zlib.crc32 exists from Node 20.15; fall back to a table implementation before that. */
const crc32: (data: Buffer, value: number) => number =
  typeof zlib.crc32 === 'function' ? (data, value) => zlib.crc32(data, value) : jsCrc32;

let crcTable: Uint32Array | undefined;
function jsCrc32(data: Buffer, value: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
