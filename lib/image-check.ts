/**
 * Image checks for uploads (workspace logo and favicon, host app icons, feedback screenshots).
 *
 * The kind is detected from the bytes (magic numbers, then a parse of the header), never from the
 * file name or the declared content type. Raster images are walked only as far as their headers
 * (no pixel is decoded, so a decompression bomb costs nothing): PNG chunks (with CRCs) up to IEND,
 * JPEG segments up to the SOF marker, WebP RIFF chunks (VP8 / VP8L / VP8X), ICO directory entries
 * (BMP or PNG payloads). SVG is parsed as XML strictly enough to find the root <svg> and to refuse
 * anything active or external: <script>, on* event handlers, javascript: URLs, references to other
 * documents (href / src / url() / @import to anything but #fragments and data: raster images),
 * <foreignObject>, and DOCTYPEs with an internal subset (entities).
 */

export type ImageKind = 'png' | 'jpeg' | 'webp' | 'svg' | 'ico';

/**
 * Codes: unsupported_image, image_type_not_allowed, image_too_large (bytes),
 * image_dimensions_too_large (pixels), image_truncated, image_malformed, svg_malformed, svg_script,
 * svg_event_handler, svg_javascript_url, svg_external_reference, svg_foreign_object, svg_entity.
 */
export class ImageError extends Error {
  constructor(public readonly code: string, message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

export interface ImageCheckOptions {
  allowed: readonly ImageKind[];
  maxBytes: number;
  maxWidth?: number;
  maxHeight?: number;
}

export interface ImageInfo {
  kind: ImageKind;
  /** Pixels for raster images; for SVG the declared width/height in px (or the viewBox), null when unknown. */
  width: number | null;
  height: number | null;
  contentType: string;
}

export const imageContentTypes: Record<ImageKind, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
};

const kindNames: Record<ImageKind, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', svg: 'SVG', ico: 'ICO' };

/**
 * Checks an uploaded image. Throws ImageError with a code and a message fit for the user.
 * Pixel limits apply to raster images (every entry of an ICO); an SVG is vector and only the byte
 * limit applies to it (its declared size is reported).
 */
export function checkImage(bytes: Uint8Array, opts: ImageCheckOptions): ImageInfo {
  if (bytes.length === 0) throw new ImageError('unsupported_image', 'The file is empty');
  if (bytes.length > opts.maxBytes) {
    throw new ImageError('image_too_large', `The image is ${bytes.length} bytes; the limit is ${opts.maxBytes} bytes`);
  }
  const kind = detectKind(bytes);
  if (!opts.allowed.includes(kind)) {
    throw new ImageError('image_type_not_allowed', `This file is ${kindNames[kind]}; allowed here: ${opts.allowed.map((k) => kindNames[k]).join(', ')}`);
  }
  let size: { width: number | null; height: number | null; sizes?: Array<{ width: number; height: number }> };
  switch (kind) {
    case 'png': size = pngSize(bytes); break;
    case 'jpeg': size = jpegSize(bytes); break;
    case 'webp': size = webpSize(bytes); break;
    case 'ico': size = icoSize(bytes); break;
    case 'svg': size = checkSvg(bytes); break;
  }
  if (kind !== 'svg') {
    for (const s of size.sizes ?? [{ width: size.width ?? 0, height: size.height ?? 0 }]) {
      if ((opts.maxWidth !== undefined && s.width > opts.maxWidth) || (opts.maxHeight !== undefined && s.height > opts.maxHeight)) {
        throw new ImageError('image_dimensions_too_large',
          `The image is ${s.width}×${s.height} px; the limit is ${opts.maxWidth ?? '∞'}×${opts.maxHeight ?? '∞'} px`);
      }
    }
  }
  return { kind, width: size.width, height: size.height, contentType: imageContentTypes[kind] };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  return prefix.every((b, i) => bytes[at + i] === b);
}

function ascii(bytes: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

function detectKind(bytes: Uint8Array): ImageKind {
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return 'webp';
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00])) return 'ico';
  if (bytes.length >= 6 && (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a')) {
    throw new ImageError('unsupported_image', 'GIF images are not supported; use PNG or SVG');
  }
  if (looksLikeSvg(bytes)) return 'svg';
  throw new ImageError('unsupported_image', 'The file is not a supported image (PNG, JPEG, WebP, ICO or SVG)');
}

function looksLikeSvg(bytes: Uint8Array): boolean {
  // Only text that starts like markup and names an <svg> element is treated as SVG; everything
  // else (plain text, GIF, PDF, HTML without svg) is simply unsupported.
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, Math.min(bytes.length, 64 * 1024)));
  const trimmed = head.replace(/^\uFEFF/, '').trimStart();
  return trimmed.startsWith('<') && /<(?:[A-Za-z_][\w.-]*:)?svg[\s>/]/.test(head);
}

// ---------------------------------------------------------------------------------------------
// PNG

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function u32be(b: Uint8Array, at: number): number {
  return ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
}
function u16be(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}
function u16le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}
function u24le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
}
function u32le(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + ((b[at + 3] << 24) >>> 0);
}
function i32le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24);
}

/** Walks every chunk (length, type, CRC) from IHDR to IEND; the size comes from IHDR. */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  let at = 8;
  let width = 0;
  let height = 0;
  let sawIdat = false;
  let first = true;
  for (;;) {
    if (at + 8 > bytes.length) throw new ImageError('image_truncated', 'The PNG file is truncated');
    const length = u32be(bytes, at);
    const type = ascii(bytes, at + 4, 4);
    if (!/^[A-Za-z]{4}$/.test(type) || length > 0x7fffffff) throw new ImageError('image_malformed', 'The PNG file is damaged (bad chunk)');
    const end = at + 8 + length + 4;
    if (end > bytes.length) throw new ImageError('image_truncated', 'The PNG file is truncated');
    if (crc32(bytes, at + 4, at + 8 + length) !== u32be(bytes, at + 8 + length)) {
      throw new ImageError('image_malformed', `The PNG file is damaged (CRC mismatch in ${type})`);
    }
    if (first) {
      if (type !== 'IHDR' || length !== 13) throw new ImageError('image_malformed', 'The PNG file does not start with an IHDR chunk');
      width = u32be(bytes, at + 8);
      height = u32be(bytes, at + 12);
      if (width === 0 || height === 0) throw new ImageError('image_malformed', 'The PNG file declares a zero size');
      first = false;
    } else if (type === 'IDAT') {
      sawIdat = true;
    } else if (type === 'IEND') {
      if (!sawIdat) throw new ImageError('image_malformed', 'The PNG file has no image data');
      return { width, height };
    }
    at = end;
  }
}

// ---------------------------------------------------------------------------------------------
// JPEG

const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegSize(bytes: Uint8Array): { width: number; height: number } {
  let at = 2;
  for (;;) {
    if (at + 4 > bytes.length) throw new ImageError('image_truncated', 'The JPEG file is truncated before its frame header');
    if (bytes[at] !== 0xff) throw new ImageError('image_malformed', 'The JPEG file is damaged (bad marker)');
    const marker = bytes[at + 1];
    if (marker === 0xff) { at += 1; continue; } // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { at += 2; continue; }
    if (marker === 0xd9 || marker === 0xda) throw new ImageError('image_malformed', 'The JPEG file has no frame header');
    const length = u16be(bytes, at + 2);
    if (length < 2) throw new ImageError('image_malformed', 'The JPEG file is damaged (bad segment length)');
    if (at + 2 + length > bytes.length) throw new ImageError('image_truncated', 'The JPEG file is truncated');
    if (SOF_MARKERS.has(marker)) {
      if (length < 8) throw new ImageError('image_malformed', 'The JPEG frame header is too short');
      const height = u16be(bytes, at + 5);
      const width = u16be(bytes, at + 7);
      if (width === 0 || height === 0) throw new ImageError('image_malformed', 'The JPEG file declares a zero size');
      return { width, height };
    }
    at += 2 + length;
  }
}

// ---------------------------------------------------------------------------------------------
// WebP

function webpSize(bytes: Uint8Array): { width: number; height: number } {
  const riffSize = u32le(bytes, 4);
  if (riffSize + 8 > bytes.length || bytes.length < 30) throw new ImageError('image_truncated', 'The WebP file is truncated');
  const chunk = ascii(bytes, 12, 4);
  const data = 20;
  const chunkSize = u32le(bytes, 16);
  if (data + chunkSize > bytes.length) throw new ImageError('image_truncated', 'The WebP file is truncated');
  let width: number;
  let height: number;
  if (chunk === 'VP8 ') {
    if (!startsWith(bytes, [0x9d, 0x01, 0x2a], data + 3)) throw new ImageError('image_malformed', 'The WebP (VP8) frame is damaged');
    width = u16le(bytes, data + 6) & 0x3fff;
    height = u16le(bytes, data + 8) & 0x3fff;
  } else if (chunk === 'VP8L') {
    if (bytes[data] !== 0x2f) throw new ImageError('image_malformed', 'The WebP (VP8L) frame is damaged');
    const bits = u32le(bytes, data + 1);
    width = (bits & 0x3fff) + 1;
    height = ((bits >>> 14) & 0x3fff) + 1;
  } else if (chunk === 'VP8X') {
    width = u24le(bytes, data + 4) + 1;
    height = u24le(bytes, data + 7) + 1;
  } else {
    throw new ImageError('image_malformed', `The WebP file starts with an unknown chunk (${chunk.trim()})`);
  }
  if (width === 0 || height === 0) throw new ImageError('image_malformed', 'The WebP file declares a zero size');
  return { width, height };
}

// ---------------------------------------------------------------------------------------------
// ICO

const MAX_ICO_ENTRIES = 64;

function icoSize(bytes: Uint8Array): { width: number; height: number; sizes: Array<{ width: number; height: number }> } {
  if (bytes.length < 6) throw new ImageError('image_truncated', 'The ICO file is truncated');
  const count = u16le(bytes, 4);
  if (count === 0 || count > MAX_ICO_ENTRIES) throw new ImageError('image_malformed', `The ICO file declares ${count} images`);
  if (6 + count * 16 > bytes.length) throw new ImageError('image_truncated', 'The ICO file is truncated');
  const sizes: Array<{ width: number; height: number }> = [];
  for (let i = 0; i < count; i++) {
    const e = 6 + i * 16;
    const size = u32le(bytes, e + 8);
    const offset = u32le(bytes, e + 12);
    if (size === 0 || offset < 6 + count * 16) throw new ImageError('image_malformed', 'The ICO file has a bad directory entry');
    if (offset + size > bytes.length) throw new ImageError('image_truncated', 'The ICO file is truncated');
    const payload = bytes.subarray(offset, offset + size);
    if (startsWith(payload, PNG_SIGNATURE)) {
      sizes.push(pngSize(payload));
    } else {
      // BMP payload: BITMAPINFOHEADER (40 bytes) without the file header; height counts the AND mask too.
      if (payload.length < 40 || u32le(payload, 0) < 40) throw new ImageError('image_malformed', 'The ICO file holds an image that is neither BMP nor PNG');
      const width = Math.abs(i32le(payload, 4));
      const height = Math.abs(i32le(payload, 8)) / 2;
      if (width === 0 || height === 0) throw new ImageError('image_malformed', 'The ICO file declares a zero size');
      sizes.push({ width, height });
    }
  }
  const largest = sizes.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  return { width: largest.width, height: largest.height, sizes };
}

// ---------------------------------------------------------------------------------------------
// SVG

// Sticky scanners (lastIndex = position): no substring copies per tag.
const CLOSE_TAG = /<\/([^\s>]+)\s*>/y;
const TAG_NAME = /[^\s/>]+/y;
const SPACES = /\s*/y;
const ATTRIBUTE = /([^\s=/>]+)\s*=\s*(["'])/y;
const NAME = /^[A-Za-z_:\u00C0-\uFFEF][\w.\-:\u00B7\u00C0-\uFFEF]*$/;
const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const FOREIGN_ELEMENTS = new Set(['foreignobject', 'iframe', 'embed', 'object']);
const SCRIPT_ELEMENTS = new Set(['script', 'handler', 'listener']);
const ANIMATION_ELEMENTS = new Set(['animate', 'set', 'animatemotion', 'animatetransform', 'animatecolor']);
const REFERENCE_ATTRIBUTES = new Set(['href', 'src']);
const DATA_IMAGE = /^data:image\/(?:png|jpeg|jpg|gif|webp)[;,]/i;

function svgError(code: string, message: string): ImageError {
  return new ImageError(code, message);
}

function decodeReferences(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z][\w.-]*);|&/g, (whole, ref: string | undefined) => {
    if (ref === undefined) throw svgError('svg_malformed', 'The SVG is not well-formed XML (a bare & must be written &amp;)');
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!Number.isFinite(code) || code <= 0 || code > 0x10ffff) throw svgError('svg_malformed', `The SVG has a bad character reference ${whole}`);
      return String.fromCodePoint(code);
    }
    const named = NAMED_ENTITIES[ref];
    if (named === undefined) throw svgError('svg_entity', `The SVG uses the entity &${ref}; (entities are not allowed)`);
    return named;
  });
}

/** Refuses anything that points outside the document: only #fragments and data: raster images stay. */
function checkReference(raw: string, where: string): void {
  const value = raw.replace(/[\s\u0000-\u001f]/g, '');
  if (value === '' || value.startsWith('#')) return;
  if (DATA_IMAGE.test(value)) return;
  throw svgError('svg_external_reference', `The SVG refers to something outside itself (${where}="${raw.slice(0, 80)}"); only #references and embedded PNG/JPEG/GIF/WebP data: images are allowed`);
}

function checkCss(css: string, where: string): void {
  if (/@import/i.test(css)) throw svgError('svg_external_reference', `The SVG imports a style sheet (${where})`);
  for (const m of css.matchAll(/url\(\s*(['"]?)([^'")]*)\1\s*\)/gi)) checkReference(m[2], where);
}

function checkActiveText(value: string, where: string): void {
  const squashed = value.replace(/[\s\u0000-\u001f]/g, '').toLowerCase();
  if (squashed.includes('javascript:') || squashed.includes('vbscript:')) {
    throw svgError('svg_javascript_url', `The SVG contains a javascript: URL (${where})`);
  }
}

function svgLength(value: string | undefined): number | null {
  if (value === undefined) return null;
  const m = /^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(px)?\s*$/.exec(value);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) && n > 0 ? Math.round(n) : null;
}

function checkSvg(bytes: Uint8Array): { width: number | null; height: number | null } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw svgError('svg_malformed', 'The SVG is not valid UTF-8 text');
  }
  text = text.replace(/^\uFEFF/, '');
  const stack: string[] = [];
  // Assigned by parseStartTag (a closure), so declared without narrowing to null.
  let rootAttrs = null as Record<string, string> | null;
  let rootClosed = false;
  let inStyle = 0;
  let i = 0;
  const n = text.length;
  const malformed = (what: string) => svgError('svg_malformed', `The SVG is not well-formed XML: ${what}`);

  const handleText = (raw: string, decode: boolean) => {
    if (stack.length === 0) {
      if (raw.trim() !== '') throw malformed('text outside the root element');
      return;
    }
    const value = decode ? decodeReferences(raw) : raw;
    if (inStyle > 0) {
      checkCss(value, '<style>');
      checkActiveText(value, '<style>');
    }
  };

  while (i < n) {
    const lt = text.indexOf('<', i);
    if (lt === -1) {
      handleText(text.slice(i), true);
      break;
    }
    if (lt > i) handleText(text.slice(i, lt), true);
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end === -1) throw malformed('unterminated comment');
      i = end + 3;
    } else if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i + 2);
      if (end === -1) throw malformed('unterminated processing instruction');
      const target = /^<\?([^\s?]+)/.exec(text.slice(i, end))?.[1] ?? '';
      if (target.toLowerCase() === 'xml-stylesheet') throw svgError('svg_external_reference', 'The SVG links a style sheet (<?xml-stylesheet?>)');
      i = end + 2;
    } else if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i + 9);
      if (end === -1) throw malformed('unterminated CDATA section');
      if (stack.length === 0) throw malformed('CDATA outside the root element');
      handleText(text.slice(i + 9, end), false);
      i = end + 3;
    } else if (text.startsWith('<!DOCTYPE', i) || text.startsWith('<!doctype', i)) {
      if (stack.length > 0 || rootAttrs) throw malformed('DOCTYPE after the root element starts');
      const end = text.indexOf('>', i);
      if (end === -1) throw malformed('unterminated DOCTYPE');
      const decl = text.slice(i, end);
      if (decl.includes('[') || /<!ENTITY/i.test(text)) throw svgError('svg_entity', 'The SVG declares entities (a DOCTYPE with an internal subset); these are not allowed');
      i = end + 1;
    } else if (text.startsWith('<!', i)) {
      throw malformed(`unexpected ${text.slice(i, i + 10)}`);
    } else if (text.startsWith('</', i)) {
      CLOSE_TAG.lastIndex = i;
      const m = CLOSE_TAG.exec(text);
      if (!m) throw malformed('bad closing tag');
      const open = stack.pop();
      if (open !== m[1]) throw malformed(`</${m[1]}> closes <${open ?? 'nothing'}>`);
      if (localName(m[1]) === 'style') inStyle--;
      if (stack.length === 0) rootClosed = true;
      i += m[0].length;
    } else {
      if (rootClosed) throw malformed('a second root element');
      i = parseStartTag(i);
    }
  }
  if (stack.length > 0) throw malformed(`<${stack[stack.length - 1]}> is never closed`);
  if (!rootAttrs) throw malformed('no root element');

  const attrs = rootAttrs;
  let width = svgLength(attrs.width);
  let height = svgLength(attrs.height);
  if ((width === null || height === null) && attrs.viewBox) {
    const parts = attrs.viewBox.trim().split(/[\s,]+/).map(Number);
    if (parts.length === 4 && parts.every(Number.isFinite) && parts[2] > 0 && parts[3] > 0) {
      width ??= Math.round(parts[2]);
      height ??= Math.round(parts[3]);
    }
  }
  return { width, height };

  function localName(qname: string): string {
    const colon = qname.indexOf(':');
    return (colon === -1 ? qname : qname.slice(colon + 1)).toLowerCase();
  }

  function parseStartTag(start: number): number {
    let j = start + 1;
    TAG_NAME.lastIndex = j;
    const nameMatch = TAG_NAME.exec(text);
    if (!nameMatch || !NAME.test(nameMatch[0])) throw malformed('bad element name');
    const qname = nameMatch[0];
    const local = localName(qname);
    j += qname.length;
    const attrs: Record<string, string> = {};
    for (;;) {
      SPACES.lastIndex = j;
      const ws = SPACES.exec(text)![0].length;
      j += ws;
      if (j >= n) throw malformed(`<${qname}> is not closed`);
      if (text.startsWith('/>', j) || text[j] === '>') break;
      if (ws === 0) throw malformed(`attributes of <${qname}> must be separated by spaces`);
      ATTRIBUTE.lastIndex = j;
      const am = ATTRIBUTE.exec(text);
      if (!am || !NAME.test(am[1])) throw malformed(`bad attribute in <${qname}>`);
      const close = text.indexOf(am[2], j + am[0].length);
      if (close === -1) throw malformed(`unterminated attribute value in <${qname}>`);
      const raw = text.slice(j + am[0].length, close);
      if (raw.includes('<')) throw malformed(`"<" inside an attribute value of <${qname}>`);
      if (am[1] in attrs) throw malformed(`duplicate attribute ${am[1]} on <${qname}>`);
      attrs[am[1]] = decodeReferences(raw);
      j = close + 1;
    }
    const selfClosing = text.startsWith('/>', j);
    j += selfClosing ? 2 : 1;

    if (stack.length === 0) {
      if (local !== 'svg') throw svgError('unsupported_image', `The document's root element is <${qname}>, not <svg>`);
      rootAttrs = attrs;
    }
    if (SCRIPT_ELEMENTS.has(local)) throw svgError('svg_script', `The SVG contains a <${qname}> element; scripts are not allowed`);
    if (FOREIGN_ELEMENTS.has(local)) throw svgError('svg_foreign_object', `The SVG contains a <${qname}> element; embedded foreign content is not allowed`);
    const animatesReference = ANIMATION_ELEMENTS.has(local) && REFERENCE_ATTRIBUTES.has(localName(attrs.attributeName ?? ''));
    for (const [name, value] of Object.entries(attrs)) {
      const attrLocal = localName(name);
      if (attrLocal.startsWith('on')) throw svgError('svg_event_handler', `The SVG has an event handler attribute (${name} on <${qname}>)`);
      checkActiveText(value, `${name} on <${qname}>`);
      if (REFERENCE_ATTRIBUTES.has(attrLocal)) checkReference(value, name);
      if (animatesReference && ['to', 'from', 'values', 'by'].includes(attrLocal)) {
        for (const part of value.split(';')) checkReference(part, `${name} on <${qname}>`);
      }
      if (/url\(/i.test(value) || attrLocal === 'style') checkCss(value, name);
    }
    if (!selfClosing) {
      stack.push(qname);
      if (local === 'style') inStyle++;
    } else if (stack.length === 0) {
      rootClosed = true;
    }
    return j;
  }
}
