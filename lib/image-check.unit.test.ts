import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checkImage, ImageError, type ImageKind } from './image-check.js';

const all: ImageKind[] = ['png', 'jpeg', 'webp', 'svg', 'ico'];
const big = { allowed: all, maxBytes: 1_000_000 };
const enc = (s: string) => new TextEncoder().encode(s);

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A real, decodable RGBA PNG of the given size (one colour). */
function makePng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const row = Buffer.alloc(1 + width * 4);
  for (let x = 0; x < width; x++) row.set([0x22, 0x66, 0xcc, 0xff], 1 + x * 4);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

function makeJpeg(width: number, height: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03,
    0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.from([0xff, 0xd9])]);
}

function riff(chunkType: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(chunkType, 0, 'ascii');
  head.writeUInt32LE(data.length, 4);
  const body = Buffer.concat([Buffer.from('WEBP'), head, data, Buffer.alloc(data.length % 2)]);
  const r = Buffer.alloc(8);
  r.write('RIFF', 0, 'ascii');
  r.writeUInt32LE(body.length, 4);
  return Buffer.concat([r, body]);
}

function webpVp8(width: number, height: number): Buffer {
  const d = Buffer.alloc(20);
  d.set([0x9d, 0x01, 0x2a], 3);
  d.writeUInt16LE(width, 6);
  d.writeUInt16LE(height, 8);
  return riff('VP8 ', d);
}
function webpVp8l(width: number, height: number): Buffer {
  const d = Buffer.alloc(10);
  d[0] = 0x2f;
  d.writeUInt32LE(((width - 1) | ((height - 1) << 14)) >>> 0, 1);
  return riff('VP8L', d);
}
function webpVp8x(width: number, height: number): Buffer {
  const d = Buffer.alloc(10);
  d.writeUIntLE(width - 1, 4, 3);
  d.writeUIntLE(height - 1, 7, 3);
  return riff('VP8X', d);
}

function makeIco(entries: Array<{ payload: Buffer; w: number; h: number }>): Buffer {
  const header = Buffer.from([0, 0, 1, 0, entries.length, 0]);
  const dir = Buffer.alloc(16 * entries.length);
  let offset = 6 + dir.length;
  entries.forEach((e, i) => {
    dir[i * 16] = e.w & 0xff;
    dir[i * 16 + 1] = e.h & 0xff;
    dir.writeUInt16LE(1, i * 16 + 4);
    dir.writeUInt16LE(32, i * 16 + 6);
    dir.writeUInt32LE(e.payload.length, i * 16 + 8);
    dir.writeUInt32LE(offset, i * 16 + 12);
    offset += e.payload.length;
  });
  return Buffer.concat([header, dir, ...entries.map((e) => e.payload)]);
}

function bmpEntry(width: number, height: number): Buffer {
  const h = Buffer.alloc(40 + width * height * 4 + height * Math.ceil(width / 32) * 4);
  h.writeUInt32LE(40, 0);
  h.writeInt32LE(width, 4);
  h.writeInt32LE(height * 2, 8);
  h.writeUInt16LE(1, 12);
  h.writeUInt16LE(32, 14);
  return h;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ImageError) return e.code;
    throw e;
  }
  return 'accepted';
}

const svg = (body: string, attrs = 'width="64" height="32"') => enc(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ${attrs}>${body}</svg>`);

describe('checkImage: raster formats by content', () => {
  it('reads PNG width and height from IHDR', () => {
    expect(checkImage(makePng(40, 20), big)).toEqual({ kind: 'png', width: 40, height: 20, contentType: 'image/png' });
  });

  it('reads JPEG size from the SOF marker', () => {
    expect(checkImage(makeJpeg(640, 480), big)).toEqual({ kind: 'jpeg', width: 640, height: 480, contentType: 'image/jpeg' });
  });

  it('reads WebP size from VP8, VP8L and VP8X', () => {
    expect(checkImage(webpVp8(300, 200), big)).toMatchObject({ kind: 'webp', width: 300, height: 200, contentType: 'image/webp' });
    expect(checkImage(webpVp8l(17, 9), big)).toMatchObject({ kind: 'webp', width: 17, height: 9 });
    expect(checkImage(webpVp8x(5000, 1), big)).toMatchObject({ kind: 'webp', width: 5000, height: 1 });
  });

  it('reads ICO entries, BMP and PNG-in-ICO, and reports the largest', () => {
    const ico = makeIco([{ payload: bmpEntry(16, 16), w: 16, h: 16 }, { payload: makePng(48, 48), w: 48, h: 48 }]);
    expect(checkImage(ico, big)).toEqual({ kind: 'ico', width: 48, height: 48, contentType: 'image/x-icon' });
  });

  it('applies the pixel limit to every ICO entry', () => {
    const ico = makeIco([{ payload: bmpEntry(16, 16), w: 16, h: 16 }, { payload: makePng(300, 300), w: 0, h: 0 }]);
    expect(code(() => checkImage(ico, { ...big, maxWidth: 256, maxHeight: 256 }))).toBe('image_dimensions_too_large');
  });

  it('refuses an ICO whose entry points past the end', () => {
    const ico = makeIco([{ payload: makePng(16, 16), w: 16, h: 16 }]);
    expect(code(() => checkImage(ico.subarray(0, ico.length - 10), big))).toBe('image_truncated');
  });
});

describe('checkImage: the name is not an input', () => {
  it('a PNG "renamed .svg" is detected as PNG', () => {
    // The API passes only bytes; a file called logo.svg that holds PNG bytes is a PNG.
    const bytes = makePng(32, 32);
    expect(checkImage(bytes, { allowed: ['png', 'svg'], maxBytes: 10_000 }).kind).toBe('png');
    expect(code(() => checkImage(bytes, { allowed: ['svg'], maxBytes: 10_000 }))).toBe('image_type_not_allowed');
  });

  it('refuses GIF and plain text as unsupported_image', () => {
    expect(code(() => checkImage(enc('GIF89a\x01\x00\x01\x00\x00\x00\x00;'), big))).toBe('unsupported_image');
    expect(code(() => checkImage(enc('hello, this is a text file\n'), big))).toBe('unsupported_image');
    expect(code(() => checkImage(enc('<html><body>not an svg</body></html>'), big))).toBe('unsupported_image');
    expect(code(() => checkImage(new Uint8Array(0), big))).toBe('unsupported_image');
  });
});

describe('checkImage: limits', () => {
  it('refuses an image over the byte limit', () => {
    const png = makePng(64, 64);
    expect(code(() => checkImage(png, { allowed: ['png'], maxBytes: png.length - 1 }))).toBe('image_too_large');
    expect(code(() => checkImage(png, { allowed: ['png'], maxBytes: png.length }))).toBe('accepted');
  });

  it('refuses an image over the pixel limit (width or height)', () => {
    const opts = { allowed: all, maxBytes: 1_000_000, maxWidth: 1024, maxHeight: 1024 };
    expect(code(() => checkImage(makePng(1025, 10), opts))).toBe('image_dimensions_too_large');
    expect(code(() => checkImage(makePng(10, 1025), opts))).toBe('image_dimensions_too_large');
    expect(code(() => checkImage(makeJpeg(4000, 3000), opts))).toBe('image_dimensions_too_large');
    expect(code(() => checkImage(makePng(1024, 1), opts))).toBe('accepted');
  });

  it('does not apply pixel limits to SVG (vector), only bytes', () => {
    expect(checkImage(svg('', 'viewBox="0 0 4000 2000"'), { allowed: ['svg'], maxBytes: 10_000, maxWidth: 256, maxHeight: 256 }))
      .toMatchObject({ kind: 'svg', width: 4000, height: 2000 });
  });
});

describe('checkImage: damaged raster files', () => {
  it('refuses a truncated PNG', () => {
    const png = makePng(32, 32);
    expect(code(() => checkImage(png.subarray(0, png.length - 12), big))).toBe('image_truncated');
    expect(code(() => checkImage(png.subarray(0, 20), big))).toBe('image_truncated');
    expect(code(() => checkImage(png.subarray(0, 8), big))).toBe('image_truncated');
  });

  it('refuses a PNG with a flipped bit (CRC) or without IHDR first', () => {
    const png = Buffer.from(makePng(8, 8));
    png[20] ^= 0x01;
    expect(code(() => checkImage(png, big))).toBe('image_malformed');
  });

  it('refuses a JPEG cut before its frame header, and a WebP whose RIFF size lies', () => {
    expect(code(() => checkImage(makeJpeg(10, 10).subarray(0, 24), big))).toBe('image_truncated');
    const webp = webpVp8(10, 10);
    expect(code(() => checkImage(webp.subarray(0, webp.length - 4), big))).toBe('image_truncated');
  });
});

describe('checkImage: SVG', () => {
  it('accepts a plain SVG and reads width/height, or the viewBox', () => {
    const ok = svg('<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient></defs><rect width="10" height="10" fill="url(#g)"/><use xlink:href="#g"/>');
    expect(checkImage(ok, big)).toEqual({ kind: 'svg', width: 64, height: 32, contentType: 'image/svg+xml' });
    expect(checkImage(enc('<?xml version="1.0"?>\n<!-- logo -->\n<svg viewBox="0 0 120 40"><path d="M0 0h10"/></svg>\n'), big))
      .toMatchObject({ width: 120, height: 40 });
    expect(checkImage(svg('', 'width="100%" height="2em"'), big)).toMatchObject({ width: null, height: null });
    expect(checkImage(enc('\uFEFF<svg xmlns="http://www.w3.org/2000/svg"><style>.a{fill:#123}</style></svg>'), big)).toMatchObject({ kind: 'svg' });
  });

  it('accepts embedded raster data: images', () => {
    expect(checkImage(svg('<image href="data:image/png;base64,iVBORw0KGgo=" width="1" height="1"/>'), big).kind).toBe('svg');
  });

  it('refuses an SVG with a script (svg_script)', () => {
    expect(code(() => checkImage(svg('<script>alert(1)</script>'), big))).toBe('svg_script');
    expect(code(() => checkImage(svg('<svg:script xmlns:svg="http://www.w3.org/2000/svg">alert(1)</svg:script>'), big))).toBe('svg_script');
    expect(code(() => checkImage(svg('<SCRIPT>alert(1)</SCRIPT>'), big))).toBe('svg_script');
  });

  it('refuses event handlers and javascript: URLs, also when encoded', () => {
    expect(code(() => checkImage(svg('<rect onclick="alert(1)"/>'), big))).toBe('svg_event_handler');
    expect(code(() => checkImage(svg('', 'onload="alert(1)"'), big))).toBe('svg_event_handler');
    expect(code(() => checkImage(svg('<a href="javascript:alert(1)"><rect/></a>'), big))).toBe('svg_javascript_url');
    expect(code(() => checkImage(svg('<a xlink:href="&#106;ava&#x73;cript:alert(1)"><rect/></a>'), big))).toBe('svg_javascript_url');
    expect(code(() => checkImage(svg('<a href="java\tscript:alert(1)"><rect/></a>'), big))).toBe('svg_javascript_url');
    expect(code(() => checkImage(svg('<set attributeName="href" to="javascript:alert(1)"/>'), big))).toBe('svg_javascript_url');
  });

  it('refuses external references (href, xlink:href, src, url(), @import, animated href, stylesheet PI)', () => {
    const external = [
      '<image href="https://evil.example/x.png"/>',
      '<image xlink:href="http://evil.example/x.png"/>',
      '<use href="//evil.example/sprite.svg#a"/>',
      '<use href="sprite.svg#a"/>',
      '<image href="data:image/svg+xml;base64,PHN2Zz4="/>',
      '<image href="data:text/html,hi"/>',
      '<rect style="fill:url(https://evil.example/p.svg#g)"/>',
      '<rect fill="url(\'//evil.example/p.svg#g\')"/>',
      '<style>@import url(https://evil.example/a.css);</style>',
      '<style><![CDATA[ .a { background: url(http://evil.example/t.png) } ]]></style>',
      '<set attributeName="xlink:href" to="https://evil.example/x.svg"/>',
    ];
    for (const body of external) expect(code(() => checkImage(svg(body), big)), body).toBe('svg_external_reference');
    expect(code(() => checkImage(enc('<?xml-stylesheet href="https://evil.example/a.css"?><svg></svg>'), big))).toBe('svg_external_reference');
  });

  it('refuses foreignObject and entities', () => {
    expect(code(() => checkImage(svg('<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>'), big))).toBe('svg_foreign_object');
    expect(code(() => checkImage(enc('<!DOCTYPE svg [<!ENTITY x "boom">]><svg>&x;</svg>'), big))).toBe('svg_entity');
    expect(code(() => checkImage(svg('<text>&nbsp;</text>'), big))).toBe('svg_entity');
    // A DOCTYPE without an internal subset is harmless.
    expect(code(() => checkImage(enc('<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg width="1" height="1"/>'), big))).toBe('accepted');
  });

  it('refuses SVG that is not well-formed', () => {
    for (const bad of [
      '<svg><g></svg>',
      '<svg><rect></g></svg>',
      '<svg a="1" a="2"></svg>',
      '<svg><text>a & b</text></svg>',
      '<svg></svg><svg></svg>',
      '<svg><rect width="1></svg>',
      '<svg>',
    ]) expect(code(() => checkImage(enc(bad), big)), bad).toBe('svg_malformed');
    expect(code(() => checkImage(Buffer.concat([enc('<svg>'), Buffer.from([0xff, 0xfe]), enc('</svg>')]), big))).toBe('svg_malformed');
  });

  it('refuses an XML document whose root is not <svg>', () => {
    expect(code(() => checkImage(enc('<html><svg></svg></html>'), big))).toBe('unsupported_image');
  });
});
