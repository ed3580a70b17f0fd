import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { QueryTypes } from 'sequelize';
import { listMiniProgramsSql } from '../api/routes/mini-programs.js';
import { miniProgramOut, type MiniProgramRowOut } from '../api/queries.js';
import { createSequelize } from '../db/index.js';

/** The baseline: the list endpoint's SQL and row mapping on a bare Hono route, with no auth or validation. */
const sequelize = createSequelize(process.env.DATABASE_URL!, { pool: 20 });
const app = new Hono().get('/list/:workspaceId', async (c) => {
  const rows = await sequelize.query<MiniProgramRowOut>(listMiniProgramsSql({ q: false, status: false, cursor: false }), {
    replacements: { workspaceId: c.req.param('workspaceId'), limit: 51 }, type: QueryTypes.SELECT,
  });
  return c.json({ items: rows.slice(0, 50).map(miniProgramOut), nextCursor: null });
});
serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.PORT) }, () => console.error('[bare] listening'));
