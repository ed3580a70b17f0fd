import { createHash } from 'node:crypto';

/**
 * Crash grouping: which errors are "the same error". Two events share a group when their
 * normalised messages match and their top meaningful stack frames name the same functions in the
 * same files. Line and column numbers are ignored and content hashes are cut from file names, so
 * a group survives a new build; numbers, ids, hex, uuids, quoted values, e-mails and URLs are cut
 * from messages, so one error hitting many records is one group.
 *
 * Stack shapes understood: V8 (Chrome, Node, Android WebView, WeChat/Alipay mini program
 * runtimes: `at fn (file:1:2)`), JavaScriptCore / Safari and Firefox (`fn@file:1:2`), and the
 * WeChat `thirdScriptError` text that carries its stack inside the message.
 */

export interface StackFrame {
  /** Function name as the engine printed it (`Page.onLoad`), or null when anonymous. */
  fn: string | null;
  /** The file (URL or path) as printed, or null for native / unknown frames. */
  file: string | null;
  line: number | null;
  column: number | null;
}

/** A frame as kept on a crash group (for the console): function and file, line/column of one sample. */
export interface TopFrame extends StackFrame {
  /** The normalised file name the fingerprint uses (hashes and query cut). */
  module: string;
}

export interface ErrorDescription {
  fingerprint: string;
  /** One line for lists: the error's first line, cleaned, at most 200 characters. */
  title: string;
  /** The frames the fingerprint was made from (at most 3). */
  topFrames: TopFrame[];
}

const frameCount = 3;
const maxMessageChars = 300;

// `    at fn (location)` / `    at location` (V8 and the mini program runtimes).
const v8WithFn = /^\s*at\s+(.+?)\s+\((.*)\)\s*$/;
const v8Bare = /^\s*at\s+(\S.*?)\s*$/;
// `fn@location` (JavaScriptCore, SpiderMonkey); fn may be empty.
const atSign = /^\s*([^@\s]*(?:\s[^@]*)?)@(.+?)\s*$/;
const location = /^(.*?):(\d+)(?::(\d+))?$/;

function parseLocation(loc: string): { file: string | null; line: number | null; column: number | null } | null {
  const l = loc.trim();
  if (!l) return null;
  // eval frames: `eval at fn (file:1:2), <anonymous>:3:4` → the file that called eval.
  const evalAt = /^eval at .*?\((.*?)\)/.exec(l);
  if (evalAt) return parseLocation(evalAt[1]!);
  const m = location.exec(l);
  if (m) return { file: m[1] || null, line: Number(m[2]), column: m[3] ? Number(m[3]) : null };
  if (/^(?:<anonymous>|native|\[native code\]|unknown location|index \d+)$/.test(l)) return { file: null, line: null, column: null };
  return null;
}

/** Whether a line is a stack frame (rather than a message line). */
function parseFrameLine(raw: string): StackFrame | null {
  let m = v8WithFn.exec(raw);
  if (m) {
    const loc = parseLocation(m[2]!);
    if (loc) return { fn: cleanFunction(m[1]!), ...loc };
  }
  m = v8Bare.exec(raw);
  if (m) {
    const loc = parseLocation(m[1]!);
    if (loc) return { fn: null, ...loc };
    // `at Page.onLoad` with no location (some runtimes): a named frame without a file.
    if (/^[\w$.<>[\]/ ]+$/.test(m[1]!)) return { fn: cleanFunction(m[1]!), file: null, line: null, column: null };
  }
  m = atSign.exec(raw);
  if (m) {
    const loc = parseLocation(m[2]!);
    if (loc) return { fn: cleanFunction(m[1]!), ...loc };
  }
  return null;
}

/** `async Foo.bar`, `new Foo`, `Object.<anonymous>`, Firefox's `foo/<`, Safari's `global code` → a stable name or null. */
function cleanFunction(fn: string): string | null {
  let f = fn.trim().replace(/^(?:async|new)\s+/, '').replace(/\s*\[as [^\]]+\]$/, '');
  f = f.replace(/\/<+/g, '').replace(/<\/+/g, '').replace(/\*$/, ''); // SpiderMonkey nesting markers: foo/<, foo/</bar
  if (!f || /^(?:<anonymous>|anonymous|Object\.<anonymous>|global code|module code|eval code|eval)$/.test(f)) return null;
  return f;
}

/** Parses the frames of a stack trace (lines that are not frames, such as the message line, are skipped). */
export function parseStack(stack: string | null | undefined): StackFrame[] {
  if (!stack) return [];
  const frames: StackFrame[] = [];
  for (const raw of stack.split(/\r?\n/)) {
    if (!raw.trim()) continue;
    const f = parseFrameLine(raw);
    if (f) frames.push(f);
  }
  return frames;
}

// A path segment or file-name part that is a build's content hash: hex with a digit (webpack
// `main.3f2a9c1b.js`), or a mixed letters+digits token of 8+ characters (Vite/esbuild `index-BxK3f9aZ.js`).
const hashPart = (s: string) => (/^[0-9a-f]{6,}$/i.test(s) && /\d/.test(s)) || (/^[A-Za-z0-9_]{8,}$/.test(s) && /\d/.test(s) && /[A-Za-z]/.test(s));

// Frames of the host runtime itself (WeChat's WAService, Alipay's appx), of engines, Node internals
// and browser extensions: never the app's code, so never part of a fingerprint.
const runtimeFile = /(?:^|\/)(?:WAService|WASubContext|WAServiceMainContext|WAWebview|WAGame|wxconfig|af-appx[\w.-]*|appx-[\w.-]*|AFAppX[\w.-]*|__dev__\/[\w.-]+)\.js$|^(?:node:|internal\/|(?:chrome|moz|safari(?:-web)?)-extension:)|\[native code\]/;

/**
 * The stable name of a frame's file: the query and fragment cut, content hashes cut from the
 * name, directories dropped — except inside a mini program package, where `pages/cart/index.js`
 * and `pages/home/index.js` are different files and keep their path from `pages/` (or
 * `components/`, `subpackages/`…) on.
 */
export function moduleOf(file: string): string {
  let f = file.replace(/[?#].*$/, '').replace(/^[a-z][\w+.-]*:\/\/[^/]*/i, '').replace(/\\/g, '/');
  const parts = f.split('/').filter(Boolean);
  const pkg = parts.findIndex((p) => /^(?:pages|components|subpackages?|packages?[A-Z]?\w*|sub-?packages?)$/.test(p));
  const keep = pkg >= 0 && pkg < parts.length - 1 ? parts.slice(pkg) : parts.slice(-1);
  f = keep.map((seg, i) => (i < keep.length - 1 ? (hashPart(seg) ? '_' : seg) : stripHashes(seg))).join('/');
  return f || file;
}

/** `main.3f2a9c1b.js` → `main.js`, `index-BxK3f9aZ.js` → `index.js`, `vendors~app.abc123de.js` → `vendors~app.js`. */
function stripHashes(name: string): string {
  const tokens = name.split(/([.~_-])/); // word, separator, word, …
  const out: string[] = [];
  for (let k = 0; k < tokens.length; k += 2) {
    const word = tokens[k]!;
    const isExtension = k === tokens.length - 1 && k > 0;
    if (!isExtension && hashPart(word)) continue;
    if (out.length) out.push(tokens[k - 1]!);
    out.push(word);
  }
  return out.join('') || name;
}

/** A frame whose function name cannot be trusted across builds (minified) or whose file is a minified bundle. */
function isMinified(frame: StackFrame): boolean {
  const last = frame.fn?.split('.').pop() ?? '';
  return /\.min\.js$/.test(frame.file ?? '') || (!!frame.fn && last.length <= 2) || (frame.column ?? 0) > 1000;
}

/** The frames that say where the app failed: with a file, not the host runtime's or the engine's. */
function meaningfulFrames(frames: StackFrame[]): StackFrame[] {
  const withFile = frames.filter((f) => f.file && !runtimeFile.test(f.file));
  return withFile.length ? withFile : frames.filter((f) => f.file);
}

const stackLine = /^\s*at\s+\S|^\s*[^@\s]*@\S+:\d+/;

/**
 * Splits what a runtime reported into the message and the stack. WeChat's onError hands one
 * string: `thirdScriptError\n<message>;at <page> page <fn> function\n<Error line>\n    at …`.
 */
export function splitReport(message: string, stack: string | null): { message: string; stack: string | null } {
  let msg = message.replace(/\r\n/g, '\n');
  let stk = stack;
  const lines = msg.split('\n');
  const firstFrame = lines.findIndex((l) => stackLine.test(l) && !!parseFrameLine(l)?.file);
  if (firstFrame > 0) {
    if (!stk?.trim()) stk = lines.slice(firstFrame).join('\n');
    msg = lines.slice(0, firstFrame).join('\n');
  }
  msg = msg.replace(/^\s*(?:thirdScriptError|MiniProgramError|jsEnginScriptError|webviewScriptError|AppServiceSdkScriptError)\s*\n/i, '');
  // After the runtime's header the error line itself (`TypeError: …`) is the better message when present.
  const msgLines = msg.split('\n').map((l) => l.trim()).filter(Boolean);
  const errorLine = msgLines.find((l) => /^(?:Uncaught\s+)?(?:[A-Z]\w*Error|Error|DOMException)\b:?/.test(l));
  msg = (errorLine ?? msgLines[0] ?? '').replace(/;\s*at\s+\S+\s+(?:page|component)\s+\S+\s+function\s*$/i, '');
  return { message: msg, stack: stk };
}

/** The message's first line without engine prefixes (`Uncaught`, `Uncaught (in promise)`), trimmed. */
function cleanMessage(message: string): string {
  return message
    .replace(/^\s*Uncaught\s+(?:\(in promise\)\s*)?/i, '')
    .replace(/^\s*Unhandled(?:\s+promise)?\s+rejection:?\s*/i, '')
    .trim();
}

/**
 * The message with everything that varies between occurrences cut: URLs, e-mails, uuids, IPs, hex,
 * prefixed ids (`ord_8f3k2`), numbers, and quoted values — except property names in the engines'
 * own wording (`reading 'price'`, `property 'name'`), which are code, not data.
 */
export function normaliseMessage(message: string): string {
  const first = cleanMessage(splitReport(message, null).message);
  let m = first.length > maxMessageChars ? first.slice(0, maxMessageChars) : first;
  m = m
    .replace(/\b[a-z][\w+.-]*:\/\/[^\s'"`<>)]+/gi, '<url>')
    .replace(/\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b/g, '<email>')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>')
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g, '<ip>')
    .replace(/\b0x[0-9a-f]+\b/gi, '<hex>')
    .replace(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/gi, '<hex>')
    .replace(/\b[A-Za-z]{1,12}[_-](?=[A-Za-z0-9]*\d)[A-Za-z0-9]+\b/g, '<id>');
  // Quoted values: keep the engine's property names, cut the rest.
  const engineName = /(?:reading|setting|property|properties of|evaluating|function|method|module|variable|identifier|access)\s*$/i;
  m = m.replace(/(['"`‘“])((?:(?!\1).){0,200})(?:\1|[’”])/g, (whole, _q: string, inner: string, offset: number) => {
    const before = m.slice(Math.max(0, offset - 20), offset);
    if (/^[A-Za-z_$][\w$.]{0,63}$/.test(inner) && engineName.test(before)) return whole;
    if (/^[A-Za-z_$][\w$]{0,63}$/.test(inner) && /^\s*(?:is not|has no|of undefined|of null|cannot)/.test(m.slice(offset + whole.length, offset + whole.length + 12))) return whole;
    return '<val>';
  });
  return m
    // `#185`: an error code (React's minified errors, issue numbers) names the error; other numbers are data.
    .replace(/(?<!#)\b\d+(?:\.\d+)?|(?<=[A-Za-z_])\d+(?:\.\d+)?/g, '<n>')
    .replace(/\s+/g, ' ')
    .trim();
}

function title(message: string): string {
  const t = cleanMessage(splitReport(message, null).message).replace(/\s+/g, ' ');
  return (t.length > 200 ? `${t.slice(0, 199)}…` : t) || '(no message)';
}

/**
 * Fingerprint, list title and top frames of an error: sha256 over the normalised message and the
 * top 3 meaningful frames (`function@module`; minified frames as `module` only — a new build
 * renames functions — so a minified trace groups by file and message).
 */
export function describeError(message: string, stack: string | null): ErrorDescription {
  const split = splitReport(message ?? '', stack);
  const frames = meaningfulFrames(parseStack(split.stack)).slice(0, frameCount);
  const topFrames: TopFrame[] = frames.map((f) => ({ ...f, module: moduleOf(f.file!) }));
  // A minified top frame: the bundle's functions are renamed and regrouped by every build, so the
  // file it failed in and the message are all that stays put.
  const keys = topFrames[0] && isMinified(topFrames[0])
    ? [topFrames[0].module]
    : topFrames.map((f) => (isMinified(f) || !f.fn ? f.module : `${f.fn}@${f.module}`));
  const basis = [normaliseMessage(split.message), ...keys].join('\n');
  return { fingerprint: createHash('sha256').update(basis).digest('hex').slice(0, 32), title: title(split.message), topFrames };
}

/** The group fingerprint of an error or crash from its message and stack (see describeError). */
export function fingerprintOf(message: string, stack: string | null): string {
  return describeError(message, stack).fingerprint;
}
