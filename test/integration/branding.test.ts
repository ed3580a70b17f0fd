import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { changeChannel } from '../../activities/index.js';
import { buildPackage, minimalPackageFiles, solidPng } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * Logo, favicon, About Us URL and domain preference against the real API and PostgreSQL: every
 * route with Admin, Reviewer, Developer and a non-member; bad input refused with its code and
 * nothing changed; images checked by content; domains shipped with a submitted version and
 * answered by the runtime's resolve.
 */

let stack: Stack;
let admin: Agent;
let reviewer: Agent;
let developer: Agent;
let outsider: Agent;
let ws: string;

/** A real PNG of one colour. */
const makePng = (width: number, height: number, rgb: [number, number, number] = [0x22, 0x66, 0xcc]) => solidPng(width, height, rgb);
/** An ICO holding one PNG entry. */
function makeIco(png: Buffer, size: number): Buffer {
  const head = Buffer.from([0, 0, 1, 0, 1, 0]);
  const dir = Buffer.alloc(16);
  dir[0] = size & 0xff;
  dir[1] = size & 0xff;
  dir.writeUInt16LE(1, 4);
  dir.writeUInt16LE(32, 6);
  dir.writeUInt32LE(png.length, 8);
  dir.writeUInt32LE(22, 12);
  return Buffer.concat([head, dir, png]);
}
const goodSvg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40"><rect width="120" height="40" rx="8" fill="#0a7"/></svg>';

const url = (p: string) => `/api/v1/workspaces/${ws}${p}`;
function upload(agent: Agent, slot: 'logo' | 'favicon', bytes: Buffer | string, name: string, type = 'application/octet-stream') {
  const form = new FormData();
  form.set('file', new Blob([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)], { type }), name);
  return agent.request('PUT', url(`/branding/${slot}`), form);
}
async function storedImages() {
  return stack.sequelize.query<{ slot: string; kind: string; sha256: string }>('SELECT slot, kind, sha256 FROM workspace_brand_images WHERE workspace_id = :ws ORDER BY slot', {
    replacements: { ws }, type: QueryTypes.SELECT,
  });
}
async function storedDomains() {
  return stack.sequelize.query<{ kind: string; domain: string }>('SELECT kind, domain FROM workspace_domains WHERE workspace_id = :ws ORDER BY kind, position', {
    replacements: { ws }, type: QueryTypes.SELECT,
  });
}
async function fetchRaw(agent: Agent, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(stack.baseUrl + path, { headers: { cookie: agent.cookie, ...headers } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  [admin, reviewer, developer] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  const id = uid('usr_out_');
  const email = `outsider-${id}@example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', {
    replacements: { id, email, name: 'Otto Outsider', hash: await hashPassword(testPassword) },
  });
  outsider = new Agent(stack.baseUrl);
  await outsider.login(email);
});
afterAll(async () => stack?.stop());

describe('branding: who may read and change it', () => {
  it('every member reads the branding; a non-member sees no workspace; anonymous is refused', async () => {
    for (const a of [admin, reviewer, developer]) {
      const r = await a.get(url('/branding'));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ logo: null, favicon: null, aboutUrl: null, limits: { logo: { kinds: ['png', 'svg', 'ico'], maxWidth: 1024 }, favicon: { kinds: ['png', 'ico', 'svg'], maxWidth: 256 } } });
    }
    expect((await outsider.get(url('/branding'))).status).toBe(404);
    expect((await new Agent(stack.baseUrl).get(url('/branding'))).status).toBe(401);
  });

  it('only an Admin uploads, removes or sets the About Us URL (Reviewer and Developer 403, non-member 404), and nothing changes', async () => {
    for (const [a, status] of [[reviewer, 403], [developer, 403], [outsider, 404]] as const) {
      expect((await upload(a, 'logo', makePng(32, 32), 'logo.png', 'image/png')).status).toBe(status);
      expect((await upload(a, 'favicon', makePng(16, 16), 'f.png', 'image/png')).status).toBe(status);
      expect((await a.request('DELETE', url('/branding/logo'))).status).toBe(status);
      expect((await a.request('PUT', url('/about-url'), { url: 'https://about.example.com' })).status).toBe(status);
      expect((await a.request('PUT', url('/domains'), { server: ['https://api.example.com'] })).status).toBe(status);
    }
    expect(await storedImages()).toEqual([]);
    expect(await storedDomains()).toEqual([]);
    expect((await admin.get(url('/branding'))).body.aboutUrl).toBeNull();
  });
});

describe('logo and favicon uploads', () => {
  let logoUrl = '';

  it('an Admin uploads a PNG logo; members get it with its type, nosniff and a long cache under its hash; a non-member does not', async () => {
    const png = makePng(200, 80);
    const r = await upload(admin, 'logo', png, 'logo.png', 'image/png');
    expect(r.status).toBe(200);
    expect(r.body.logo).toMatchObject({ kind: 'png', contentType: 'image/png', width: 200, height: 80, size: png.length, uploadedBy: { name: expect.any(String) } });
    logoUrl = r.body.logo.url;
    expect(logoUrl).toBe(url(`/branding/logo/${r.body.logo.sha256}`));
    for (const a of [admin, reviewer, developer]) {
      const img = await fetchRaw(a, logoUrl);
      expect(img.status).toBe(200);
      expect(img.headers.get('content-type')).toBe('image/png');
      expect(img.headers.get('x-content-type-options')).toBe('nosniff');
      expect(img.headers.get('cache-control')).toMatch(/max-age=31536000/);
      expect(img.bytes.equals(png)).toBe(true);
    }
    expect((await fetchRaw(admin, logoUrl, { 'if-none-match': `"${r.body.logo.sha256}"` })).status).toBe(304);
    expect((await fetchRaw(outsider, logoUrl)).status).toBe(404);
    expect((await fetch(stack.baseUrl + logoUrl)).status).toBe(401);
    const audit = await stack.sequelize.query<{ action: string }>("SELECT action FROM audit_log WHERE workspace_id = :ws AND subject_type = 'settings'", { replacements: { ws }, type: QueryTypes.SELECT });
    expect(audit.map((a) => a.action)).toContain('logo_set');
  });

  it('a PNG uploaded under the name logo.svg (declared image/svg+xml) is stored and served as PNG', async () => {
    const png = makePng(64, 64, [0xcc, 0x22, 0x22]);
    const r = await upload(admin, 'logo', png, 'logo.svg', 'image/svg+xml');
    expect(r.status).toBe(200);
    expect(r.body.logo).toMatchObject({ kind: 'png', contentType: 'image/png', width: 64 });
    const img = await fetchRaw(developer, r.body.logo.url);
    expect(img.headers.get('content-type')).toBe('image/png');
    expect(img.headers.get('content-security-policy')).not.toMatch(/sandbox/);
    // The previous image's URL is gone: its content never changes under a URL.
    expect((await fetchRaw(developer, logoUrl)).status).toBe(404);
    logoUrl = r.body.logo.url;
  });

  it('a clean SVG logo is served as image/svg+xml under a policy that runs and loads nothing', async () => {
    const r = await upload(admin, 'logo', goodSvg, 'logo.svg', 'image/svg+xml');
    expect(r.status).toBe(200);
    expect(r.body.logo).toMatchObject({ kind: 'svg', contentType: 'image/svg+xml', width: 120, height: 40 });
    const img = await fetchRaw(reviewer, r.body.logo.url);
    expect(img.headers.get('content-type')).toBe('image/svg+xml');
    expect(img.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; sandbox");
    expect(img.headers.get('x-content-type-options')).toBe('nosniff');
    logoUrl = r.body.logo.url;
  });

  it('refuses bad images with their code, and the stored logo stays', async () => {
    const before = await storedImages();
    const cases: Array<[string, Buffer | string, string, number, string]> = [
      ['an SVG with a script', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>', 'x.svg', 400, 'svg_script'],
      ['an SVG with an event handler', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 'x.svg', 400, 'svg_event_handler'],
      ['an SVG with an external reference', '<svg xmlns="http://www.w3.org/2000/svg"><image href="https://tracker.example.com/p.png"/></svg>', 'x.svg', 400, 'svg_external_reference'],
      ['an SVG with foreignObject', '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p>x</p></foreignObject></svg>', 'x.svg', 400, 'svg_foreign_object'],
      ['a GIF named .png', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'), 'logo.png', 400, 'unsupported_image'],
      ['a text file', 'just some text', 'logo.png', 400, 'unsupported_image'],
      ['a truncated PNG', makePng(40, 40).subarray(0, 50), 'logo.png', 400, 'image_truncated'],
      // A real JPEG frame header (SOF0, 64×32): a kind the checker knows, but not one a logo may be.
      ['a JPEG as a logo', Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0, 32, 0, 64, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9]), 'logo.png', 400, 'image_type_not_allowed'],
      ['a PNG over 1024 px', makePng(1025, 4), 'wide.png', 400, 'image_dimensions_too_large'],
      ['an image over the byte limit', Buffer.concat([makePng(8, 8), Buffer.alloc(600 * 1024)]), 'big.png', 413, 'image_too_large'],
    ];
    for (const [what, bytes, name, status, code] of cases) {
      const r = await upload(admin, 'logo', bytes, name);
      expect({ what, status: r.status, code: r.body?.error?.code }).toEqual({ what, status, code });
    }
    const noFile = await admin.request('PUT', url('/branding/logo'), new FormData());
    expect(noFile.status).toBe(400);
    expect((await admin.request('PUT', url('/branding/banner'), new FormData())).status).toBe(400);
    // Not multipart at all: refused as input, never a server error.
    for (const body of [{}, goodSvg]) {
      const r = await admin.request('PUT', url('/branding/logo'), body);
      expect([400, 415]).toContain(r.status);
      expect(r.body.error.code).toEqual(expect.any(String));
    }
    expect(await storedImages()).toEqual(before);
    expect((await admin.get(url('/branding'))).body.logo.url).toBe(logoUrl);
  });

  it('logo: an ICO is accepted too (served as image/x-icon)', async () => {
    const ico = await upload(admin, 'logo', makeIco(makePng(64, 64), 64), 'logo.ico', 'image/x-icon');
    expect(ico.status).toBe(200);
    expect(ico.body.logo).toMatchObject({ kind: 'ico', contentType: 'image/x-icon', width: 64, height: 64 });
    expect((await fetchRaw(developer, ico.body.logo.url)).headers.get('content-type')).toBe('image/x-icon');
    // Back to the logo the later tests expect.
    const back = await upload(admin, 'logo', goodSvg, 'logo.svg');
    expect(back.status).toBe(200);
  });

  it('favicon: PNG, ICO (PNG inside) and SVG up to 256×256; larger or other kinds refused', async () => {
    const ico = await upload(admin, 'favicon', makeIco(makePng(48, 48), 48), 'favicon.ico', 'image/x-icon');
    expect(ico.status).toBe(200);
    expect(ico.body.favicon).toMatchObject({ kind: 'ico', contentType: 'image/x-icon', width: 48, height: 48 });
    expect((await fetchRaw(developer, ico.body.favicon.url)).headers.get('content-type')).toBe('image/x-icon');
    const big = await upload(admin, 'favicon', makePng(300, 300), 'favicon.png');
    expect([big.status, big.body.error.code]).toEqual([400, 'image_dimensions_too_large']);
    const png = await upload(admin, 'favicon', makePng(32, 32), 'favicon.png');
    expect(png.body.favicon).toMatchObject({ kind: 'png', width: 32 });
    expect(png.body.logo.url).toBe(logoUrl);
  });

  it('removes the favicon (Admin), leaves the logo; removing again is harmless', async () => {
    const r = await admin.request('DELETE', url('/branding/favicon'));
    expect(r.status).toBe(200);
    expect(r.body.favicon).toBeNull();
    expect(r.body.logo.url).toBe(logoUrl);
    expect((await admin.request('DELETE', url('/branding/favicon'))).status).toBe(200);
    expect((await storedImages()).map((i) => i.slot)).toEqual(['logo']);
  });
});

describe('About Us URL', () => {
  it('an Admin sets and clears it; every member reads it', async () => {
    const r = await admin.request('PUT', url('/about-url'), { url: 'https://www.example.com/about' });
    expect(r.status).toBe(200);
    expect(r.body.aboutUrl).toBe('https://www.example.com/about');
    for (const a of [reviewer, developer]) expect((await a.get(url('/branding'))).body.aboutUrl).toBe('https://www.example.com/about');
  });

  it('refuses what is not a web address, and keeps the stored one', async () => {
    for (const bad of ['javascript:alert(1)', 'ftp://files.example.com/about', 'about us', 'https://user:pw@example.com/', 'data:text/html,hi']) {
      const r = await admin.request('PUT', url('/about-url'), { url: bad });
      expect({ bad, status: r.status, code: r.body.error.code }).toEqual({ bad, status: 400, code: 'invalid_about_url' });
    }
    expect((await admin.request('PUT', url('/about-url'), {})).status).toBe(400);
    expect((await admin.request('PUT', url('/about-url'), { url: `https://example.com/${'a'.repeat(2100)}` })).body.error.code).toBe('validation_failed');
    expect((await admin.get(url('/branding'))).body.aboutUrl).toBe('https://www.example.com/about');
  });

  it('plain http:// is allowed outside production; null removes the link', async () => {
    expect((await admin.request('PUT', url('/about-url'), { url: 'http://intranet.example.com/about' })).body.aboutUrl).toBe('http://intranet.example.com/about');
    expect((await admin.request('PUT', url('/about-url'), { url: null })).body.aboutUrl).toBeNull();
    expect((await admin.request('PUT', url('/about-url'), { url: 'https://www.example.com/about' })).body.aboutUrl).toBe('https://www.example.com/about');
  });
});

describe('domain preference', () => {
  it('every member reads the lists; only an Admin replaces them', async () => {
    for (const a of [admin, reviewer, developer]) expect((await a.get(url('/domains'))).body).toMatchObject({ server: [], webview: [], limit: 50 });
    expect((await outsider.get(url('/domains'))).status).toBe(404);
  });

  it('normalises to lowercase origins and de-duplicates', async () => {
    const r = await admin.request('PUT', url('/domains'), {
      server: ['https://API.Example.com/', 'https://api.example.com:443', 'wss://push.example.com', 'https://*.cdn.example.com'],
      webview: ['https://shop.example.com'],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ server: ['https://api.example.com', 'wss://push.example.com', 'https://*.cdn.example.com'], webview: ['https://shop.example.com'] });
    expect((await developer.get(url('/domains'))).body.server).toHaveLength(3);
  });

  it('names every bad entry (details.invalid) and changes nothing', async () => {
    const before = await storedDomains();
    const r = await admin.request('PUT', url('/domains'), {
      server: ['https://ok.example.com', 'http://plain.example.com', 'https://10.0.0.1', 'https://localhost', 'https://api.example.com/v1'],
      webview: ['wss://socket.example.com', 'https://*'],
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_domains');
    expect(r.body.error.details.invalid.map((i: { list: string; value: string }) => `${i.list} ${i.value}`)).toEqual([
      'server http://plain.example.com', 'server https://10.0.0.1', 'server https://localhost', 'server https://api.example.com/v1',
      'webview wss://socket.example.com', 'webview https://*',
    ]);
    for (const i of r.body.error.details.invalid) expect(i.reason).toEqual(expect.any(String));
    expect(await storedDomains()).toEqual(before);
  });

  it('at most 50 per list (after de-duplication): 400 too_many_domains', async () => {
    const before = await storedDomains();
    const many = Array.from({ length: 51 }, (_, i) => `https://s${i}.example.com`);
    const r = await admin.request('PUT', url('/domains'), { webview: many });
    expect([r.status, r.body.error.code, r.body.error.details]).toEqual([400, 'too_many_domains', { list: 'webview', count: 51, limit: 50 }]);
    expect(await storedDomains()).toEqual(before);
    const fifty = await admin.request('PUT', url('/domains'), { webview: [...many.slice(0, 50), 'HTTPS://S0.example.com'] });
    expect(fifty.status).toBe(200);
    expect(fifty.body.webview).toHaveLength(50);
    expect(fifty.body.server).toHaveLength(3);
    expect((await admin.request('PUT', url('/domains'), {})).body.error.code).toBe('validation_failed');
    expect((await admin.request('PUT', url('/domains'), { server: 'https://a.example.com' })).body.error.code).toBe('validation_failed');
  });
});

describe('domains ship with the release', () => {
  it('a submitted version carries the lists of that moment, and resolve answers them', async () => {
    await admin.request('PUT', url('/domains'), { server: ['https://api.example.com', 'wss://push.example.com'], webview: ['https://shop.example.com'] });
    const mp = await developer.post(url('/mini-programs'), { name: 'Branded Shop' });
    expect(mp.status).toBe(201);
    const up = await developer.upload(url(`/mini-programs/${mp.body.id}/versions`), buildPackage(minimalPackageFiles({ version: '1.0.0' })), '1.0.0');
    expect(up.status).toBe(201);
    const versionId = up.body.id as string;
    const submitted = await developer.post(url(`/mini-programs/${mp.body.id}/versions/${versionId}/submit`));
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
    const snapshot = async () => (await stack.sequelize.query<{ domains: unknown }>('SELECT domains FROM versions WHERE id = :versionId', { replacements: { versionId }, type: QueryTypes.SELECT }))[0]!.domains;
    const shipped = { server: ['https://api.example.com', 'wss://push.example.com'], webview: ['https://shop.example.com'] };
    expect(await snapshot()).toEqual(shipped);

    // Changing the preference afterwards does not change what shipped.
    await admin.request('PUT', url('/domains'), { server: ['https://other.example.com'], webview: [] });
    expect(await snapshot()).toEqual(shipped);

    // Made live as the pipeline's projection would, then resolved by a host app.
    await stack.sequelize.query("UPDATE mini_programs SET live_version_id = :versionId, status = 'released', seq = seq + 1000000 WHERE id = :id", { replacements: { versionId, id: mp.body.id } });
    await stack.sequelize.query('SELECT pg_notify(:channel, :payload)', {
      replacements: { channel: changeChannel, payload: JSON.stringify({ workspaceId: ws, miniProgramId: mp.body.id, kind: 'mini_program', status: 'test', seq: 0 }) },
    });
    const body = await eventually(async () => {
      const res = await fetch(`${stack.baseUrl}/api/v1/runtime/mini-programs/${mp.body.id}/resolve?userId=host-user-1`);
      const b = (await res.json()) as { versionId?: string; domains?: unknown };
      return b.versionId === versionId ? b : null;
    }, { what: 'resolve to answer the live version', timeoutMs: 15_000 });
    expect(body.domains).toEqual(shipped);
  });
});
