import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';
import { jsapiCatalog } from '../../lib/jsapi-catalog.js';

/**
 * The JSAPI catalog. `jsapi_builtins` holds the platform's catalog (from lib/jsapi-catalog.ts as
 * it was when this migration ran); each workspace governs its own copy in `jsapis`, filled for the
 * workspaces that exist now and, by a trigger, for every workspace created later. Admin edits bump
 * the row's revision and leave a line in `jsapi_edits` (who, when, field diff).
 *
 * Search over name + description uses a trigram index when pg_trgm can be installed (ILIKE
 * '%term%' then reads the index); without it, a lower(name) text_pattern_ops index serves prefix
 * lookups and the workspace's rows are scanned.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE jsapi_builtins (
      name text PRIMARY KEY,
      category text NOT NULL,
      description text NOT NULL,
      params json NOT NULL,
      result json NOT NULL,
      permission_level text NOT NULL,
      min_host_version text NOT NULL,
      status text NOT NULL
    );

    CREATE TABLE jsapis (
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL CHECK (name ~ '^[A-Za-z][A-Za-z0-9_]{0,79}$'),
      category text NOT NULL CHECK (category IN ('network', 'storage', 'media', 'location', 'device', 'ui', 'navigation', 'payment', 'user_info')),
      description text NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
      -- json, not jsonb: the schema keeps its author's property order (the console lists parameters in it).
      params json NOT NULL CHECK (json_typeof(params) = 'object'),
      result json NOT NULL CHECK (json_typeof(result) = 'object'),
      permission_level text NOT NULL CHECK (permission_level IN ('open', 'needs_feature', 'restricted')),
      min_host_version text NOT NULL CHECK (min_host_version ~ '^[0-9]{1,4}([.][0-9]{1,4}){0,3}$'),
      status text NOT NULL CHECK (status IN ('active', 'deprecated', 'disabled')),
      builtin boolean NOT NULL DEFAULT true,
      revision integer NOT NULL DEFAULT 1,
      updated_at timestamptz NOT NULL DEFAULT now(),
      updated_by text REFERENCES users(id) ON DELETE SET NULL,
      PRIMARY KEY (workspace_id, name)
    );
    -- Category chips and the category filter: (workspace, category) in name order.
    CREATE INDEX jsapis_ws_category_idx ON jsapis (workspace_id, category, name);

    CREATE TABLE jsapi_edits (
      id text PRIMARY KEY,
      workspace_id text NOT NULL,
      name text NOT NULL,
      revision integer NOT NULL,
      edited_by text REFERENCES users(id) ON DELETE SET NULL,
      edited_at timestamptz NOT NULL DEFAULT now(),
      -- { field: { from, to } } for each field the edit changed.
      changes jsonb NOT NULL,
      note text CHECK (length(note) <= 500),
      FOREIGN KEY (workspace_id, name) REFERENCES jsapis (workspace_id, name) ON DELETE CASCADE,
      UNIQUE (workspace_id, name, revision)
    );
    -- An API's history, newest first, keyset paged.
    CREATE INDEX jsapi_edits_api_idx ON jsapi_edits (workspace_id, name, edited_at DESC, id DESC);

    -- Every new workspace starts with the platform's catalog.
    CREATE FUNCTION jsapis_seed_workspace() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO jsapis (workspace_id, name, category, description, params, result, permission_level, min_host_version, status)
        SELECT NEW.id, b.name, b.category, b.description, b.params, b.result, b.permission_level, b.min_host_version, b.status FROM jsapi_builtins b
        ON CONFLICT DO NOTHING;
        RETURN NULL;
      END $$;
    CREATE TRIGGER workspaces_seed_jsapis AFTER INSERT ON workspaces FOR EACH ROW EXECUTE FUNCTION jsapis_seed_workspace();
  `);

  await sequelize.query(
    `INSERT INTO jsapi_builtins (name, category, description, params, result, permission_level, min_host_version, status)
     SELECT e->>'name', e->>'category', e->>'description', e->'params', e->'result', e->>'permissionLevel', e->>'minHostVersion', e->>'status'
     FROM json_array_elements(:catalog::json) e`,
    { replacements: { catalog: JSON.stringify(jsapiCatalog) } },
  );
  // Backfill: the workspaces that exist already.
  await sequelize.query(
    `INSERT INTO jsapis (workspace_id, name, category, description, params, result, permission_level, min_host_version, status)
     SELECT w.id, b.name, b.category, b.description, b.params, b.result, b.permission_level, b.min_host_version, b.status
     FROM workspaces w CROSS JOIN jsapi_builtins b
     ON CONFLICT DO NOTHING`,
  );

  // pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may install it. Where it is
  // not available, fall back to a prefix index and say so in the log of the migration.
  let trigram = false;
  try {
    await sequelize.query('CREATE EXTENSION IF NOT EXISTS pg_trgm');
    trigram = true;
  } catch {
    trigram = false;
  }
  if (trigram) {
    // The list's search predicate is exactly this expression ILIKE '%term%'.
    await sequelize.query(`CREATE INDEX jsapis_search_trgm_idx ON jsapis USING gin ((name || ' ' || description) gin_trgm_ops)`);
  } else {
    await sequelize.query('CREATE INDEX jsapis_name_prefix_idx ON jsapis (workspace_id, lower(name) text_pattern_ops)');
  }
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    DROP TRIGGER IF EXISTS workspaces_seed_jsapis ON workspaces;
    DROP FUNCTION IF EXISTS jsapis_seed_workspace();
    DROP TABLE IF EXISTS jsapi_edits, jsapis, jsapi_builtins;
  `);
};
