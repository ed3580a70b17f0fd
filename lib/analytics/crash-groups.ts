import { createHash, randomBytes } from 'node:crypto';
import { describeError, splitReport, type TopFrame } from './fingerprint.js';
import type { AnalyticsEvent, CrashGroupApplier, CrashGroupNews } from './types.js';

/** Samples kept per group (the newest), and the most stack text one sample keeps (the raw event keeps it all). */
export const maxSamples = 5;
export const maxSampleStackChars = 16_384;
const maxGroupMessageChars = 2_000;

/** A crash group's id: stable for (mini program, fingerprint), so every API process computes the same one. */
export const crashGroupId = (miniProgramId: string, fingerprint: string) =>
  `cg_${createHash('sha256').update(`${miniProgramId}\0${fingerprint}`).digest('hex').slice(0, 24)}`;

export interface CrashSample {
  eventId: string;
  at: string;
  versionId: string;
  hostAppId: string | null;
  userId: string;
  page: string | null;
  message: string;
  stack: string | null;
}

/** One group's share of a flush: everything its upsert needs, computed in memory first. */
export interface GroupDelta {
  id: string;
  workspace_id: string;
  mini_program_id: string;
  fingerprint: string;
  kind: 'error' | 'crash';
  title: string;
  message: string;
  top_frames: TopFrame[];
  first_seen: string;
  last_seen: string;
  events: number;
  version_ids: string[];
  samples: CrashSample[];
  /** Not columns: the users, hourly counts and the version of its earliest event in this flush. */
  users: string[];
  hourly: Map<string, number>; // `${hourIso}\0${versionId}` → events
  firstVersionId: string;
}

// Text PostgreSQL refuses inside jsonb (a NUL, an unpaired surrogate: JSON.stringify escapes both)
// or text (NUL) — mended to U+FFFD, so one odd stack can never fail the flush it rides in.
const unfit = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const storable = (s: string) => s.replace(unfit, '\uFFFD');
const jsonParam = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? storable(x) : x));

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const iso = (ms: number) => new Date(ms).toISOString();
const hourOf = (ms: number) => iso(Math.floor(ms / 3_600_000) * 3_600_000);

/**
 * Aggregates a flush's error and crash events per (mini program, fingerprint), sorted by that key
 * (the lock order of the upserts). Pure: unit-testable without a database.
 */
export function aggregateCrashEvents(events: AnalyticsEvent[]): GroupDelta[] {
  const groups = new Map<string, GroupDelta>();
  const sorted = [...events].filter((e) => e.type === 'error' || e.type === 'crash').sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
  for (const e of sorted) {
    const described = e.fingerprint ? null : describeError(e.message ?? '', e.stack);
    const fingerprint = e.fingerprint ?? described!.fingerprint;
    const key = `${e.miniProgramId}\0${fingerprint}`;
    let g = groups.get(key);
    if (!g) {
      const d = described ?? describeError(e.message ?? '', e.stack);
      g = {
        id: crashGroupId(e.miniProgramId, fingerprint), workspace_id: e.workspaceId, mini_program_id: e.miniProgramId, fingerprint,
        kind: 'error', title: d.title, message: splitReport(e.message ?? '', e.stack).message.slice(0, maxGroupMessageChars) || d.title, top_frames: d.topFrames,
        first_seen: iso(e.at), last_seen: iso(e.at), events: 0, version_ids: [], samples: [], users: [], hourly: new Map(), firstVersionId: e.versionId,
      };
      groups.set(key, g);
    }
    if (e.type === 'crash') g.kind = 'crash';
    g.last_seen = iso(e.at);
    g.events++;
    if (!g.version_ids.includes(e.versionId)) g.version_ids.push(e.versionId);
    if (!g.users.includes(e.userId)) g.users.push(e.userId);
    const hk = `${hourOf(e.at)}\0${e.versionId}`;
    g.hourly.set(hk, (g.hourly.get(hk) ?? 0) + 1);
    g.samples.unshift({
      eventId: e.id, at: iso(e.at), versionId: e.versionId, hostAppId: e.hostAppId, userId: e.userId, page: e.page,
      message: e.message ?? '', stack: e.stack && e.stack.length > maxSampleStackChars ? e.stack.slice(0, maxSampleStackChars) : e.stack,
    });
    if (g.samples.length > maxSamples) g.samples.pop();
  }
  return [...groups.values()].sort((a, b) => byText(a.mini_program_id, b.mini_program_id) || byText(a.fingerprint, b.fingerprint));
}

/** Semver order (major.minor.patch numerically; a pre-release sorts before its release). Unparseable strings sort as equal. */
export function compareSemver(a: string, b: string): number {
  const parse = (v: string) => /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$/.exec(v.trim());
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return 0;
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i]) - Number(y[i]);
    if (d) return Math.sign(d);
  }
  if (!x[4] || !y[4]) return x[4] ? -1 : y[4] ? 1 : 0;
  const p = x[4].split('.');
  const q = y[4].split('.');
  for (let i = 0; i < Math.max(p.length, q.length); i++) {
    if (p[i] === undefined) return -1;
    if (q[i] === undefined) return 1;
    const [m, n] = [p[i]!, q[i]!];
    const numeric = /^\d+$/.test(m) && /^\d+$/.test(n);
    const d = numeric ? Number(m) - Number(n) : /^\d+$/.test(m) ? -1 : /^\d+$/.test(n) ? 1 : m < n ? -1 : m > n ? 1 : 0;
    if (d) return Math.sign(d);
  }
  return 0;
}

const changeId = () => `cgc_${Date.now().toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;

/**
 * Maintains crash_groups (and its users, hourly trend and history) from the error and crash events
 * a flush really inserted, inside the flush's transaction: four set-based statements over the
 * flush's groups (never one per event), each in (mini program, fingerprint) order so concurrent
 * flushes lock rows in the same order. A resolved group that gets an event of a version newer than
 * the one it was resolved in reopens. Returns the groups that are new (one item per version in the
 * flush) or reopened, for alerts after commit.
 */
export const applyCrashGroups: CrashGroupApplier = async (client, events) => {
  const allDeltas = aggregateCrashEvents(events);
  if (!allDeltas.length) return [];

  const { rows } = await client.query<{ id: string; created: boolean; status: string; resolved_version_id: string | null }>(
    `INSERT INTO crash_groups AS g (id, workspace_id, mini_program_id, fingerprint, kind, title, message, top_frames, first_seen, last_seen, events, users, version_ids, samples)
     SELECT r.id, r.workspace_id, r.mini_program_id, r.fingerprint, r.kind, r.title, r.message, r.top_frames, r.first_seen, r.last_seen, r.events, 0, r.version_ids, r.samples
     FROM jsonb_to_recordset($1::jsonb) AS r(id text, workspace_id text, mini_program_id text, fingerprint text, kind text, title text, message text,
       top_frames jsonb, first_seen timestamptz, last_seen timestamptz, events bigint, version_ids text[], samples jsonb)
     -- A mini program deleted while its events sat in the buffer: its groups are skipped, not a failed flush.
     JOIN mini_programs m ON m.id = r.mini_program_id AND m.workspace_id = r.workspace_id
     ORDER BY r.mini_program_id, r.fingerprint
     ON CONFLICT (mini_program_id, fingerprint) DO UPDATE SET
       kind = CASE WHEN g.kind = 'crash' OR EXCLUDED.kind = 'crash' THEN 'crash' ELSE 'error' END,
       first_seen = LEAST(g.first_seen, EXCLUDED.first_seen),
       last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen),
       events = g.events + EXCLUDED.events,
       version_ids = ARRAY(SELECT DISTINCT v FROM unnest(g.version_ids || EXCLUDED.version_ids) AS v ORDER BY v),
       samples = (SELECT coalesce(jsonb_agg(s.x ORDER BY s.x->>'at' DESC), '[]'::jsonb)
                  FROM (SELECT x FROM jsonb_array_elements(EXCLUDED.samples || g.samples) AS x ORDER BY x->>'at' DESC LIMIT ${maxSamples}) s)
     RETURNING g.id, (g.xmax = 0) AS created, g.status, g.resolved_version_id`,
    [jsonParam(allDeltas.map(({ users: _u, hourly: _h, firstVersionId: _f, ...row }) => row))],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const deltas = allDeltas.filter((d) => byId.has(d.id));
  if (!deltas.length) return [];

  // Affected users: a user counts once per group, whichever flush saw them first.
  const pairs = deltas.flatMap((d) => [...d.users].sort().map((u) => [d.id, u] as const));
  await client.query(
    `WITH ins AS (
       INSERT INTO crash_group_users (group_id, user_id)
       SELECT g, u FROM unnest($1::text[], $2::text[]) AS t(g, u) ORDER BY g, u
       ON CONFLICT DO NOTHING RETURNING group_id),
     n AS (SELECT group_id, count(*) AS n FROM ins GROUP BY group_id)
     UPDATE crash_groups g SET users = g.users + n.n FROM n WHERE g.id = n.group_id`,
    [pairs.map((p) => p[0]), pairs.map((p) => storable(p[1]))],
  );

  // The hourly trend, per version (the sparkline and the per-version split).
  const hourly = deltas.flatMap((d) => [...d.hourly].map(([k, n]) => [d.id, ...k.split('\0'), n] as [string, string, string, number]))
    .sort((a, b) => byText(a[0], b[0]) || byText(a[1], b[1]) || byText(a[2], b[2]));
  await client.query(
    `INSERT INTO crash_group_hourly (group_id, hour, version_id, events)
     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::bigint[])
     ON CONFLICT (group_id, hour, version_id) DO UPDATE SET events = crash_group_hourly.events + EXCLUDED.events`,
    [hourly.map((h) => h[0]), hourly.map((h) => h[1]), hourly.map((h) => h[2]), hourly.map((h) => h[3])],
  );

  const news: CrashGroupNews[] = [];
  const changes: { id: string; group_id: string; action: string; version_id: string | null; comment: string | null; at: string }[] = [];
  for (const d of deltas) {
    if (!byId.get(d.id)?.created) continue;
    changes.push({ id: changeId(), group_id: d.id, action: 'created', version_id: d.firstVersionId, comment: null, at: d.first_seen });
    for (const versionId of d.version_ids) news.push({ groupId: d.id, workspaceId: d.workspace_id, miniProgramId: d.mini_program_id, versionId, change: 'new' });
  }

  // Resolved groups seen again: reopened when an event is of a newer version than the resolution's.
  const resolved = deltas.filter((d) => byId.get(d.id)?.status === 'resolved');
  if (resolved.length) {
    const ids = [...new Set(resolved.flatMap((d) => [...d.version_ids, byId.get(d.id)!.resolved_version_id].filter((v): v is string => !!v)))];
    const { rows: versions } = await client.query<{ id: string; version: string }>('SELECT id, version FROM versions WHERE id = ANY($1::text[])', [ids]);
    const semver = new Map(versions.map((v) => [v.id, v.version]));
    const reopen: string[] = [];
    for (const d of resolved) {
      const base = byId.get(d.id)!.resolved_version_id;
      const baseVersion = base ? semver.get(base) : undefined;
      const newer = d.version_ids.filter((v) => !baseVersion || (semver.has(v) && compareSemver(semver.get(v)!, baseVersion) > 0))
        .sort((a, b) => compareSemver(semver.get(b) ?? '', semver.get(a) ?? ''));
      if (!newer.length) continue;
      reopen.push(d.id);
      const words = `Seen again in version ${semver.get(newer[0]!) ?? newer[0]}${baseVersion ? ` (resolved in ${baseVersion})` : ''}`;
      changes.push({ id: changeId(), group_id: d.id, action: 'reopened', version_id: newer[0]!, comment: words, at: new Date().toISOString() });
      for (const versionId of newer) news.push({ groupId: d.id, workspaceId: d.workspace_id, miniProgramId: d.mini_program_id, versionId, change: 'reopened' });
    }
    if (reopen.length) {
      await client.query(
        `UPDATE crash_groups SET status = 'open', reopened_at = now(), resolved_at = NULL, resolved_by = NULL, resolved_version_id = NULL
         WHERE id = ANY($1::text[]) AND status = 'resolved'`,
        [reopen.sort()],
      );
    }
  }
  if (changes.length) {
    await client.query(
      `INSERT INTO crash_group_changes (id, group_id, action, actor_id, version_id, comment, at)
       SELECT id, group_id, action, NULL, version_id, comment, at FROM jsonb_to_recordset($1::jsonb)
         AS r(id text, group_id text, action text, version_id text, comment text, at timestamptz)`,
      [jsonParam(changes)],
    );
  }
  return news;
};
