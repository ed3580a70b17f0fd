import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsapiCatalog, jsapiCategories, permissionLevels } from '../../lib/jsapi-catalog.js';
import { startStack, type Agent, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

let stack: Stack;
let ws: string;
let admin: Agent;
let reviewer: Agent;
let developer: Agent;
/** A workspace none of the stack's users belongs to. */
let foreignWs: string;

const base = () => `/api/v1/workspaces/${ws}/jsapis`;

async function row(name: string, workspaceId = ws) {
  const [r] = await stack.sequelize.query<{ description: string; permission_level: string; status: string; revision: number; params: unknown; updated_by: string | null }>(
    'SELECT description, permission_level, status, revision, params, updated_by FROM jsapis WHERE workspace_id = :workspaceId AND name = :name',
    { replacements: { workspaceId, name }, type: QueryTypes.SELECT },
  );
  return r;
}
async function editCount(name: string) {
  const [r] = await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM jsapi_edits WHERE workspace_id = :ws AND name = :name', { replacements: { ws, name }, type: QueryTypes.SELECT });
  return r!.n;
}

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  [admin, reviewer, developer] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  foreignWs = uid('ws_js_');
  await stack.sequelize.query(`INSERT INTO workspaces (id, name, code) VALUES (:id, 'Elsewhere', :code)`, { replacements: { id: foreignWs, code: foreignWs.toUpperCase() } });
});
afterAll(async () => {
  await stack?.stop();
});

describe('the JSAPI catalog of a workspace', () => {
  it('every member lists it with counts per category; a non-member sees no workspace; anonymous must sign in', async () => {
    for (const agent of [admin, reviewer, developer]) {
      const res = await agent.get(`${base()}?limit=200`);
      expect(res.status).toBe(200);
      expect(res.body.total).toBe(jsapiCatalog.length);
      expect(res.body.items).toHaveLength(jsapiCatalog.length);
      expect(res.body.nextCursor).toBeNull();
      for (const c of jsapiCategories) expect(res.body.counts.category[c], c).toBe(jsapiCatalog.filter((j) => j.category === c).length);
      for (const l of permissionLevels) expect(res.body.counts.permissionLevel[l], l).toBe(jsapiCatalog.filter((j) => j.permissionLevel === l).length);
      // Name order, without the heavy schemas.
      const names = res.body.items.map((i: { name: string }) => i.name);
      expect(names).toEqual([...names].sort());
      expect(res.body.items[0]).not.toHaveProperty('params');
    }
    // The stack's Admin is not a member of the other workspace: it does not exist for them.
    for (const path of ['', '/request', '/request/history']) {
      const res = await admin.get(`/api/v1/workspaces/${foreignWs}/jsapis${path}`);
      expect([path, res.status, res.body.error.code]).toEqual([path, 404, 'not_found']);
    }
    const patch = await admin.request('PATCH', `/api/v1/workspaces/${foreignWs}/jsapis/request`, { expectedRevision: 1, description: 'mine now' });
    expect(patch.status).toBe(404);
    expect((await row('request', foreignWs))!.description).toBe(jsapiCatalog.find((j) => j.name === 'request')!.description);
    const anon = await fetch(`${stack.baseUrl}${base()}`);
    expect(anon.status).toBe(401);
  });

  it('searches name and description, best name matches first, and filters by category, permission level and status', async () => {
    // What the catalog says should match, ranked: exact name, name prefix, name contains, description only.
    const expected = (q: string) => {
      const l = q.toLowerCase();
      const rank = (n: string) => (n.toLowerCase() === l ? 0 : n.toLowerCase().startsWith(l) ? 1 : n.toLowerCase().includes(l) ? 2 : 3);
      return jsapiCatalog.filter((j) => `${j.name} ${j.description}`.toLowerCase().includes(l)).sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : 1)).map((j) => j.name);
    };
    for (const q of ['location', 'scan', 'STORAGE', 'get', 'payment', 'wx-compatible']) {
      const res = await developer.get(`${base()}?q=${encodeURIComponent(q)}&limit=200`);
      expect(res.status).toBe(200);
      expect([q, res.body.items.map((i: { name: string }) => i.name)]).toEqual([q, expected(q)]);
      expect(res.body.total).toBe(expected(q).length);
    }
    const scan = await developer.get(`${base()}?q=scan`);
    expect(scan.body.items.slice(0, 2).map((i: { name: string }) => i.name)).toEqual(['scan', 'scanCode']);
    // LIKE wildcards are searched for literally.
    for (const q of ['%', '_', '\\']) expect((await developer.get(`${base()}?q=${encodeURIComponent(q)}`)).body.total, q).toBe(expected(q).length);

    // Filters; the category chips count with every filter but the category (so other chips stay useful).
    const restricted = await reviewer.get(`${base()}?permissionLevel=restricted&category=payment`);
    expect(restricted.body.items.map((i: { name: string }) => i.name)).toEqual(jsapiCatalog.filter((j) => j.category === 'payment' && j.permissionLevel === 'restricted').map((j) => j.name).sort());
    expect(restricted.body.counts.category.location).toBe(jsapiCatalog.filter((j) => j.category === 'location' && j.permissionLevel === 'restricted').length);
    expect(restricted.body.counts.permissionLevel.open).toBe(jsapiCatalog.filter((j) => j.category === 'payment' && j.permissionLevel === 'open').length);
    const deprecated = await reviewer.get(`${base()}?status=deprecated`);
    expect(deprecated.body.items.map((i: { name: string }) => i.name)).toEqual(jsapiCatalog.filter((j) => j.status === 'deprecated').map((j) => j.name).sort());
    const none = await reviewer.get(`${base()}?q=nothing-called-this`);
    expect([none.body.total, none.body.items]).toEqual([0, []]);

    // Keyset paging walks every match once, also while searching.
    for (const q of ['', 'e']) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: { items: { name: string }[]; nextCursor: string | null; total: number } } = await developer.get(`${base()}?limit=7&q=${q}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((i) => i.name));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(seen).toEqual(q ? expected(q) : jsapiCatalog.map((j) => j.name).sort());
    }
  });

  it('refuses bad list queries with 400', async () => {
    for (const [query, code] of [
      ['category=gadgets', 'validation_failed'], ['permissionLevel=secret', 'validation_failed'], ['status=gone', 'validation_failed'], ['limit=0', 'validation_failed'],
      ['limit=1000', 'validation_failed'], [`q=${'x'.repeat(101)}`, 'validation_failed'], ['cursor=bogus', 'invalid_cursor'],
    ]) {
      const res = await developer.get(`${base()}?${query}`);
      expect([query, res.status, res.body.error.code]).toEqual([query, 400, code]);
    }
  });

  it('shows an API in detail with its schemas and the features that grant it', async () => {
    const fid = uid('feat_');
    await stack.sequelize.query(
      `INSERT INTO features (id, workspace_id, key, name, description, access_mode, jsapis, status, revision, created_by, created_at, updated_at)
       VALUES (:fid, :ws, 'maps', 'Maps and places', '', 'direct', ARRAY['getLocation', 'chooseLocation'], 'active', 1, :user, now(), now())`,
      { replacements: { fid, ws, user: stack.users.admin.id } },
    );
    for (const agent of [admin, reviewer, developer]) {
      const res = await agent.get(`${base()}/getLocation`);
      expect(res.status).toBe(200);
      const builtin = jsapiCatalog.find((j) => j.name === 'getLocation')!;
      expect(res.body.jsapi).toMatchObject({ name: 'getLocation', category: 'location', permissionLevel: builtin.permissionLevel, minHostVersion: builtin.minHostVersion, status: 'active', revision: 1, builtin: true, updatedBy: null });
      expect(res.body.jsapi.params).toEqual(builtin.params);
      expect(res.body.jsapi.result).toEqual(builtin.result);
      expect(res.body.grantedBy).toEqual([{ id: fid, key: 'maps', name: 'Maps and places', accessMode: 'direct', status: 'active' }]);
    }
    expect((await developer.get(`${base()}/request`)).body.grantedBy).toEqual([]);
    const missing = await developer.get(`${base()}/teleport`);
    expect([missing.status, missing.body.error.code]).toEqual([404, 'not_found']);
    const bad = await developer.get(`${base()}/not-a-name`);
    expect([bad.status, bad.body.error.code]).toEqual([400, 'validation_failed']);

    // A restricted API may only be granted by activation features: making getLocation restricted is refused while "Maps" grants it directly.
    const before = await row('getLocation');
    const refused = await admin.request('PATCH', `${base()}/getLocation`, { expectedRevision: before!.revision, permissionLevel: 'restricted' });
    expect([refused.status, refused.body.error.code, refused.body.error.details.features.map((f: { key: string }) => f.key)]).toEqual([409, 'jsapi_granted_directly', ['maps']]);
    expect(await row('getLocation')).toEqual(before);
    await stack.sequelize.query(`UPDATE features SET access_mode = 'activation' WHERE id = :fid`, { replacements: { fid } });
    const allowed = await admin.request('PATCH', `${base()}/getLocation`, { expectedRevision: before!.revision, permissionLevel: 'restricted' });
    expect([allowed.status, allowed.body.jsapi.permissionLevel]).toEqual([200, 'restricted']);
  });
});

describe('editing an API', () => {
  it('Admins edit description and permission level; the edit is recorded with who, when and what, and audited', async () => {
    const name = 'showToast';
    const old = jsapiCatalog.find((j) => j.name === name)!;
    for (const agent of [reviewer, developer]) {
      const res = await agent.request('PATCH', `${base()}/${name}`, { expectedRevision: 1, description: 'Nope' });
      expect([res.status, res.body.error.code]).toEqual([403, 'forbidden']);
    }
    expect(await editCount(name)).toBe(0);

    const res = await admin.request('PATCH', `${base()}/${name}`, {
      expectedRevision: 1, description: 'Shows a short message at the bottom of the page that disappears by itself.', permissionLevel: 'needs_feature', note: 'Marketing abuse: gate it',
    });
    expect(res.status).toBe(200);
    expect(res.body.jsapi).toMatchObject({ name, revision: 2, permissionLevel: 'needs_feature', description: 'Shows a short message at the bottom of the page that disappears by itself.', updatedBy: { id: stack.users.admin.id, name: 'Alice Admin' } });
    expect(res.body.edit).toMatchObject({
      revision: 2, editedBy: { id: stack.users.admin.id, name: 'Alice Admin' }, note: 'Marketing abuse: gate it',
      changes: { description: { from: old.description, to: 'Shows a short message at the bottom of the page that disappears by itself.' }, permissionLevel: { from: 'open', to: 'needs_feature' } },
    });
    expect(Date.now() - Date.parse(res.body.edit.editedAt)).toBeLessThan(60_000);

    const history = await developer.get(`${base()}/${name}/history`);
    expect(history.status).toBe(200);
    expect(history.body.items).toEqual([res.body.edit]);
    const [audit] = await stack.sequelize.query<{ actor_id: string; action: string; comment: string }>(
      `SELECT actor_id, action, comment FROM audit_log WHERE workspace_id = :ws AND subject_type = 'jsapi' AND subject_id = :name`, { replacements: { ws, name }, type: QueryTypes.SELECT },
    );
    expect(audit).toMatchObject({ actor_id: stack.users.admin.id, action: 'jsapi_edited' });
    expect(audit!.comment).toContain('permission level open → needs_feature');

    // The same change again changes nothing and records nothing.
    const same = await admin.request('PATCH', `${base()}/${name}`, { expectedRevision: 2, permissionLevel: 'needs_feature' });
    expect([same.status, same.body.edit, same.body.jsapi.revision]).toEqual([200, null, 2]);
    expect(await editCount(name)).toBe(1);

    // Another workspace's copy is its own.
    expect((await row(name, foreignWs))!.permission_level).toBe('open');
  });

  it('a stale revision answers 409 edit_conflict and changes nothing', async () => {
    const name = 'vibrateShort';
    const first = await admin.request('PATCH', `${base()}/${name}`, { expectedRevision: 1, status: 'deprecated' });
    expect(first.status).toBe(200);
    const before = await row(name);
    const stale = await admin.request('PATCH', `${base()}/${name}`, { expectedRevision: 1, status: 'disabled' });
    expect([stale.status, stale.body.error.code, stale.body.error.details.currentRevision]).toEqual([409, 'edit_conflict', 2]);
    expect(await row(name)).toEqual(before);
    expect(await editCount(name)).toBe(1);
    // Two Admins saving at once: exactly one wins.
    const racers = await Promise.all([admin.request('PATCH', `${base()}/${name}`, { expectedRevision: 2, status: 'active' }), admin.request('PATCH', `${base()}/${name}`, { expectedRevision: 2, status: 'disabled' })]);
    expect(racers.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await editCount(name)).toBe(2);
  });

  it('edits parameters and result as JSON Schema, and refuses anything that is not one', async () => {
    const name = 'makePhoneCall';
    const params = { type: 'object', properties: { number: { type: 'string', description: 'E.164 phone number', pattern: '^\\+[0-9]{6,15}$' }, label: { type: 'string', description: 'shown in the confirmation' } }, required: ['number'] };
    const before = await row(name);
    const cases: [Record<string, unknown>, string][] = [
      [{ description: 'x' }, 'validation_failed'], // no expectedRevision
      [{ expectedRevision: 1 }, 'validation_failed'], // nothing to change
      [{ expectedRevision: 1, description: '   ' }, 'validation_failed'],
      [{ expectedRevision: 1, description: 'd'.repeat(2001) }, 'validation_failed'],
      [{ expectedRevision: 1, permissionLevel: 'secret' }, 'validation_failed'],
      [{ expectedRevision: 1, status: 'removed' }, 'validation_failed'],
      [{ expectedRevision: 1, minHostVersion: 'latest' }, 'validation_failed'],
      [{ expectedRevision: 1, category: 'ui' }, 'validation_failed'], // not editable
      [{ expectedRevision: 1, name: 'call' }, 'validation_failed'],
      [{ expectedRevision: 1, params: 'string' }, 'validation_failed'],
      [{ expectedRevision: 1, params: { type: 'string' } }, 'invalid_json_schema'],
      [{ expectedRevision: 1, params: { type: 'object', properties: { n: { type: 'phone' } } } }, 'invalid_json_schema'],
      [{ expectedRevision: 1, params: { type: 'object', properties: { n: { type: 'string' } }, required: ['number'] } }, 'invalid_json_schema'],
      [{ expectedRevision: 1, result: { type: 'object', properties: { ok: { $ref: '#/defs/ok' } } } }, 'invalid_json_schema'],
      [{ expectedRevision: 1, params, result: { type: 'array' } }, 'invalid_json_schema'],
    ];
    for (const [body, code] of cases) {
      const res = await admin.request('PATCH', `${base()}/${name}`, body);
      expect([JSON.stringify(body).slice(0, 90), res.status, res.body.error?.code]).toEqual([JSON.stringify(body).slice(0, 90), 400, code]);
    }
    const bad = await admin.request('PATCH', `${base()}/${name}`, { expectedRevision: 1, params: { type: 'object', properties: { n: { type: 'phone' } } } });
    expect(bad.body.error.message).toBe('params.properties.n.type: unknown type "phone"; use string, number, integer, boolean, object, array, null');
    expect(await row(name)).toEqual(before);
    expect(await editCount(name)).toBe(0);

    const ok = await admin.request('PATCH', `${base()}/${name}`, { expectedRevision: 1, params, minHostVersion: '10.2' });
    expect(ok.status).toBe(200);
    expect(ok.body.jsapi).toMatchObject({ params, minHostVersion: '10.2', revision: 2 });
    expect(ok.body.edit.changes.params).toEqual({ from: jsapiCatalog.find((j) => j.name === name)!.params, to: params });
    expect(ok.body.edit.changes.minHostVersion).toEqual({ from: '10.1.0', to: '10.2' });
    expect((await developer.get(`${base()}/${name}`)).body.jsapi.params).toEqual(params);
  });

  it('history pages newest first and says who made each edit', async () => {
    const name = 'hideToast';
    for (let i = 1; i <= 5; i++) {
      const agent = admin;
      const res = await agent.request('PATCH', `${base()}/${name}`, { expectedRevision: i, description: `Hides the toast (take ${i}).` });
      expect(res.status).toBe(200);
    }
    const p1 = await reviewer.get(`${base()}/${name}/history?limit=3`);
    expect(p1.body.items.map((e: { revision: number }) => e.revision)).toEqual([6, 5, 4]);
    expect(p1.body.items.every((e: { editedBy: { name: string } }) => e.editedBy.name === 'Alice Admin')).toBe(true);
    const p2 = await reviewer.get(`${base()}/${name}/history?limit=3&cursor=${p1.body.nextCursor}`);
    expect(p2.body.items.map((e: { revision: number }) => e.revision)).toEqual([3, 2]);
    expect(p2.body.nextCursor).toBeNull();
    expect((await reviewer.get(`${base()}/${name}/history?cursor=nope`)).status).toBe(400);
    expect((await reviewer.get(`${base()}/teleport/history`)).status).toBe(404);
  });
});

describe('the catalog of new workspaces', () => {
  it('a workspace created after the migration starts with the whole built-in catalog', async () => {
    const id = uid('ws_new_');
    await stack.sequelize.query(`INSERT INTO workspaces (id, name, code) VALUES (:id, 'Brand new', :code)`, { replacements: { id, code: id.toUpperCase() } });
    const rows = await stack.sequelize.query<{ name: string; category: string; permission_level: string; params: unknown; revision: number }>(
      'SELECT name, category, permission_level, params, revision FROM jsapis WHERE workspace_id = :id ORDER BY name', { replacements: { id }, type: QueryTypes.SELECT },
    );
    expect(rows.map((r) => r.name)).toEqual(jsapiCatalog.map((j) => j.name).sort());
    const builtin = jsapiCatalog.find((j) => j.name === 'tradePay')!;
    expect(rows.find((r) => r.name === 'tradePay')).toEqual({ name: 'tradePay', category: 'payment', permission_level: builtin.permissionLevel, params: builtin.params, revision: 1 });
    // The platform catalog itself is untouched by workspace edits.
    const [b] = await stack.sequelize.query<{ permission_level: string }>(`SELECT permission_level FROM jsapi_builtins WHERE name = 'showToast'`, { type: QueryTypes.SELECT });
    expect(b!.permission_level).toBe('open');
  });
});
