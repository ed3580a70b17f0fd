/**
 * Which JSAPIs a mini program package uses, and whether the mini program may call them.
 *
 * Real packages do not declare the host APIs they call, so {@link scanScript} reads each script
 * and finds the calls: `my.<api>(…)` (Alipay) and `wx.<api>(…)` (WeChat), also written
 * `my.<api> (…)` or `my.<api>?.(…)`. Text inside comments, string literals, regular expression
 * literals and the text parts of template literals is skipped; the `${…}` parts of a template are
 * code and are read. {@link scanManifest} adds the APIs app.json declares (`jsapis`,
 * `requiredPrivateInfos`). {@link decideJsapis} then applies the workspace's catalog and the
 * mini program's granted features.
 *
 * The module is pure: no file system, network or database access.
 *
 * Limits (by design of a static scan): calls through an alias (`const api = my; api.request()`),
 * computed members (`my['request']()`) and nested namespaces (`wx.cloud.callFunction()`) are not
 * seen; a local variable that happens to be named `my` or `wx` is read as the host object.
 */

/** Where a JSAPI is used. `line` and `column` are 1-based (column in UTF-16 code units). */
export interface JsapiUse {
  api: string;
  file: string;
  line: number;
  column: number;
  via: 'call' | 'manifest';
}

/** The script files a package runs: their calls are scanned. Templates and styles are not. */
export function isScriptPath(path: string): boolean {
  return /\.(?:js|sjs|ts|mjs|cjs)$/i.test(path);
}

// ---------------------------------------------------------------------------
// Scripts

// Everything the scanner must look at; the text between two matches is plain code.
const INTERESTING = /\/\/|\/\*|\/|["'`{}]|(?<![\w$])(?:my|wx)(?![\w$])/g;
const IDENT_START = /[A-Za-z_$]/;
const IDENT = /[\w$]/;
const API_NAME = /[A-Za-z_$][\w$]*/y;
/** Keywords after which a `/` starts a regular expression rather than a division. */
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 0xfeff || c === 0xa0 || c === 0x2028 || c === 0x2029 || c === 11 || c === 12;
const isIdentChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 36 || c === 95 || c > 127;

/**
 * The `my.<api>(` / `wx.<api>(` calls of one script, in source order, with 1-based line and
 * column of the `my`/`wx` token.
 */
export function scanScript(source: string): { api: string; line: number; column: number }[] {
  const hits: { api: string; offset: number }[] = [];
  const n = source.length;
  /** Open `${` of template literals: the brace depth inside each. */
  const templates: number[] = [];
  let pos = 0;
  INTERESTING.lastIndex = 0;
  for (;;) {
    INTERESTING.lastIndex = pos;
    const m = INTERESTING.exec(source);
    if (m === null) break;
    const at = m.index;
    const tok = m[0];
    switch (tok) {
      case '//': {
        const end = source.indexOf('\n', at + 2);
        pos = end < 0 ? n : end + 1;
        break;
      }
      case '/*': {
        const end = source.indexOf('*/', at + 2);
        pos = end < 0 ? n : end + 2;
        break;
      }
      case '/':
        pos = startsRegex(source, at) ? skipRegex(source, at + 1) : at + 1;
        break;
      case '"':
      case "'":
        pos = skipString(source, at + 1, tok.charCodeAt(0));
        break;
      case '`': {
        const r = skipTemplateText(source, at + 1);
        pos = r.pos;
        if (r.openedExpression) templates.push(0);
        break;
      }
      case '{':
        if (templates.length > 0) templates[templates.length - 1] += 1;
        pos = at + 1;
        break;
      case '}':
        pos = at + 1;
        if (templates.length > 0) {
          if (templates[templates.length - 1] === 0) {
            // The end of a `${…}`: back to the template's text.
            templates.pop();
            const r = skipTemplateText(source, pos);
            pos = r.pos;
            if (r.openedExpression) templates.push(0);
          } else {
            templates[templates.length - 1] -= 1;
          }
        }
        break;
      default: {
        // `my` or `wx`: a call when followed by `.name(` (spaces, `?.` allowed); not when it is a
        // member of something else (`this.my.x()`), spread (`...my`) aside.
        pos = at + 2;
        if (at > 0 && source.charCodeAt(at - 1) === 46 && !(at > 2 && source.startsWith('...', at - 3))) break;
        let i = skipSpaces(source, at + 2);
        if (source.charCodeAt(i) === 63 /* ? */) i++;
        if (source.charCodeAt(i) !== 46 /* . */) break;
        i = skipSpaces(source, i + 1);
        API_NAME.lastIndex = i;
        const name = API_NAME.exec(source);
        if (name === null) break;
        i = skipSpaces(source, i + name[0].length);
        if (source.charCodeAt(i) === 33 /* ! (TypeScript non-null) */) i = skipSpaces(source, i + 1);
        if (source.charCodeAt(i) === 63 && source.charCodeAt(i + 1) === 46) i = skipSpaces(source, i + 2);
        if (source.charCodeAt(i) !== 40 /* ( */) break;
        hits.push({ api: name[0], offset: at });
        pos = i + 1;
      }
    }
  }
  return withLines(source, hits);
}

/** 1-based line and column of each hit (hits are in source order, so one pass over the newlines). */
function withLines(source: string, hits: { api: string; offset: number }[]) {
  const out: { api: string; line: number; column: number }[] = [];
  let line = 1;
  let lineStart = 0;
  for (const h of hits) {
    for (let nl = source.indexOf('\n', lineStart); nl !== -1 && nl < h.offset; nl = source.indexOf('\n', lineStart)) {
      line++;
      lineStart = nl + 1;
    }
    out.push({ api: h.api, line, column: h.offset - lineStart + 1 });
  }
  return out;
}

function skipSpaces(s: string, i: number): number {
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i;
}

// Stops inside literals, found by the regex engine (much faster than a loop over characters: the
// bulk of a big package is string data).
const DOUBLE_QUOTED_STOP = /["\\\n]/g;
const SINGLE_QUOTED_STOP = /['\\\n]/g;
const TEMPLATE_STOP = /[`\\]|\$\{/g;

/** After a quote: the position after the closing quote (or the end of the line for an unterminated one). */
function skipString(s: string, i: number, quote: number): number {
  const stop = quote === 34 ? DOUBLE_QUOTED_STOP : SINGLE_QUOTED_STOP;
  for (;;) {
    stop.lastIndex = i;
    const m = stop.exec(s);
    if (m === null) return s.length;
    if (m[0] === '\\') i = m.index + 2; // an escape (a line continuation too)
    else return m.index + 1; // the closing quote, or the end of an unterminated string's line
  }
}

/** Template text up to its closing backtick, or up to a `${` (then `openedExpression`). */
function skipTemplateText(s: string, i: number): { pos: number; openedExpression: boolean } {
  for (;;) {
    TEMPLATE_STOP.lastIndex = i;
    const m = TEMPLATE_STOP.exec(s);
    if (m === null) return { pos: s.length, openedExpression: false };
    if (m[0] === '\\') i = m.index + 2;
    else if (m[0] === '`') return { pos: m.index + 1, openedExpression: false };
    else return { pos: m.index + 2, openedExpression: true };
  }
}

/** Whether the `/` at `at` starts a regular expression literal (judged by what precedes it). */
function startsRegex(s: string, at: number): boolean {
  let i = at - 1;
  while (i >= 0 && isSpace(s.charCodeAt(i))) i--;
  if (i < 0) return true;
  const c = s.charCodeAt(i);
  if (c === 41 /* ) */ || c === 93 /* ] */) return false;
  if (!isIdentChar(c)) return true;
  let start = i;
  while (start > 0 && isIdentChar(s.charCodeAt(start - 1))) start--;
  return REGEX_AFTER_WORD.has(s.slice(start, i + 1));
}

/** After the opening `/` of a regular expression: the position after its closing `/` (never past the line). */
function skipRegex(s: string, i: number): number {
  const n = s.length;
  let inClass = false;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 92) i += 2;
    else if (c === 10) return i; // not a regex after all: resume on the next line
    else if (c === 91 /* [ */) (inClass = true), i++;
    else if (c === 93 /* ] */) (inClass = false), i++;
    else if (c === 47 /* / */ && !inClass) return i + 1;
    else i++;
  }
  return n;
}

// ---------------------------------------------------------------------------
// Manifest

/** Fields of app.json that declare JSAPIs: an explicit `jsapis` list and WeChat's `requiredPrivateInfos`. */
export const MANIFEST_FIELDS = ['jsapis', 'requiredPrivateInfos'] as const;

/**
 * The JSAPIs app.json declares, each with the line and column of its name in the file.
 * `my.`/`wx.` prefixes are dropped; anything that is not a plain name is ignored.
 */
export function scanManifest(text: string, file = 'app.json'): JsapiUse[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    return [];
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [];
  const out: JsapiUse[] = [];
  for (const field of MANIFEST_FIELDS) {
    const list = (doc as Record<string, unknown>)[field];
    if (!Array.isArray(list)) continue;
    const keyAt = text.indexOf(`"${field}"`);
    let from = keyAt < 0 ? 0 : keyAt;
    for (const entry of list) {
      if (typeof entry !== 'string') continue;
      const api = entry.trim().replace(/^(?:my|wx)\./, '');
      if (!/^[A-Za-z_$][\w$]*$/.test(api)) continue;
      const at = text.indexOf(JSON.stringify(entry), from);
      const { line, column } = at < 0 ? { line: 1, column: 1 } : lineColumn(text, at + 1);
      if (at >= 0) from = at + 1;
      out.push({ api, file, line, column, via: 'manifest' });
    }
  }
  return out;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let nl = text.indexOf('\n'); nl !== -1 && nl < offset; nl = text.indexOf('\n', nl + 1)) {
    line++;
    lineStart = nl + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------------------
// Packages

/**
 * Every JSAPI use of a package, given its script files and app.json (path → content), sorted by
 * api, then file, line and column.
 */
export function scanPackageFiles(files: Iterable<[string, Uint8Array | string]>): JsapiUse[] {
  const uses: JsapiUse[] = [];
  for (const [file, content] of files) {
    const text = typeof content === 'string' ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8');
    if (file === 'app.json') uses.push(...scanManifest(text, file));
    else if (isScriptPath(file)) for (const h of scanScript(text)) uses.push({ api: h.api, file, line: h.line, column: h.column, via: 'call' });
  }
  return uses.sort(compareUse);
}

export function compareUse(a: JsapiUse, b: JsapiUse): number {
  return a.api < b.api ? -1 : a.api > b.api ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column;
}

// ---------------------------------------------------------------------------
// Decision

export type PermissionLevel = 'open' | 'needs_feature' | 'restricted';
export type JsapiStatus = 'active' | 'deprecated' | 'disabled';

/** A catalog entry, as far as the decision needs it. */
export interface CatalogRule {
  permissionLevel: PermissionLevel;
  status: JsapiStatus;
}

/** A feature of the workspace that lists the API (held or not). */
export interface FeatureRef {
  featureId: string;
  key?: string;
  name: string;
  accessMode?: 'direct' | 'activation';
}

export type MissingReason = 'not_granted' | 'unknown' | 'disabled';

/** A JSAPI the package uses that the mini program may not call. */
export interface MissingJsapi {
  api: string;
  reason: MissingReason;
  /** Where it is used (at most {@link MAX_CALLS_SHOWN}); `callCount` has the total. */
  calls: { file: string; line: number; column: number; via: 'call' | 'manifest' }[];
  callCount: number;
  /** For `not_granted`: the workspace's active features that list it (apply for one of them). */
  grantedBy?: FeatureRef[];
}

/** One used API with its verdict, for the version page. */
export interface JsapiVerdict {
  api: string;
  permissionLevel: PermissionLevel | null;
  status: JsapiStatus | null;
  allowed: boolean;
  reason: MissingReason | null;
  /** Held features that grant it. */
  grantedVia: FeatureRef[];
  calls: { file: string; line: number; column: number; via: 'call' | 'manifest' }[];
  callCount: number;
}

export const MAX_CALLS_SHOWN = 20;

/**
 * Each used API against the catalog and the features the mini program holds: open → allowed;
 * needs_feature / restricted → allowed when a held feature grants it; disabled → refused;
 * not in the catalog → refused as unknown. A synchronous form (`getStorageSync`) the catalog
 * does not list is judged as its asynchronous API (`getStorage`).
 */
export function decideJsapis(
  uses: readonly JsapiUse[],
  catalog: ReadonlyMap<string, CatalogRule>,
  granted: ReadonlyMap<string, readonly FeatureRef[]>,
  offeredBy: ReadonlyMap<string, readonly FeatureRef[]> = new Map(),
): { verdicts: JsapiVerdict[]; missing: MissingJsapi[] } {
  const byApi = new Map<string, JsapiUse[]>();
  for (const u of uses) {
    const list = byApi.get(u.api);
    if (list) list.push(u);
    else byApi.set(u.api, [u]);
  }
  const verdicts: JsapiVerdict[] = [];
  const missing: MissingJsapi[] = [];
  for (const api of [...byApi.keys()].sort()) {
    const list = byApi.get(api)!.sort(compareUse);
    const calls = list.slice(0, MAX_CALLS_SHOWN).map(({ file, line, column, via }) => ({ file, line, column, via }));
    // `getStorageSync` is governed by `getStorage` unless the catalog lists the sync form itself.
    const base = !catalog.has(api) && api.endsWith('Sync') && catalog.has(api.slice(0, -4)) ? api.slice(0, -4) : api;
    const rule = catalog.get(base);
    const via = [...(granted.get(api) ?? granted.get(base) ?? [])];
    let reason: MissingReason | null = null;
    if (!rule) reason = 'unknown';
    else if (rule.status === 'disabled') reason = 'disabled';
    else if (rule.permissionLevel !== 'open' && via.length === 0) reason = 'not_granted';
    verdicts.push({
      api, permissionLevel: rule?.permissionLevel ?? null, status: rule?.status ?? null, allowed: reason === null, reason,
      grantedVia: rule && rule.permissionLevel !== 'open' ? via : [], calls, callCount: list.length,
    });
    if (reason !== null) {
      missing.push({ api, reason, calls, callCount: list.length, ...(reason === 'not_granted' ? { grantedBy: [...(offeredBy.get(api) ?? offeredBy.get(base) ?? [])] } : {}) });
    }
  }
  return { verdicts, missing };
}

const reasonWords: Record<MissingReason, string> = {
  not_granted: 'not granted by a feature the mini program holds',
  unknown: 'not in the workspace\'s JSAPI catalog',
  disabled: 'disabled in the workspace',
};

/** One sentence naming each missing JSAPI with where it is used first. */
export function missingMessage(missing: readonly MissingJsapi[]): string {
  const parts = missing.map((m) => {
    const first = m.calls[0];
    const where = first ? ` at ${first.file}:${first.line}${m.callCount > 1 ? ` (+${m.callCount - 1} more)` : ''}` : '';
    const offer = m.grantedBy && m.grantedBy.length > 0 ? `; apply for ${m.grantedBy.map((f) => `"${f.name}"`).join(' or ')}` : '';
    return `${m.api}${where}: ${reasonWords[m.reason]}${offer}`;
  });
  return `The package uses ${missing.length} JSAPI${missing.length === 1 ? '' : 's'} this mini program may not call: ${parts.join('; ')}`;
}
