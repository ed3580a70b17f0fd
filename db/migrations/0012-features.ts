import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Features: named bundles of the workspace's JSAPIs a mini program must hold to call them. Every
 * add, edit or archive is a feature change (workflow featureChange, id feature-change:<changeId>)
 * a reviewer approves; an approval writes the next revision with its snapshot and diff. A mini
 * program's hold on a feature is a row of mini_program_features (activation-needed ones reviewed by
 * the workflow featureActivation, id feature-activation:<miniProgramId>:<featureId>:<attempt>).
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE features (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      key text NOT NULL,
      name text NOT NULL,
      description text NOT NULL DEFAULT '',
      access_mode text NOT NULL CHECK (access_mode IN ('direct', 'activation')),
      jsapis text[] NOT NULL DEFAULT '{}',
      status text NOT NULL CHECK (status IN ('active', 'archived')),
      revision integer NOT NULL,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      UNIQUE (workspace_id, key)
    );
    CREATE INDEX features_ws_idx ON features (workspace_id, name, id);
    -- Which features list a JSAPI (the JSAPI detail page, the package check).
    CREATE INDEX features_jsapis_idx ON features USING gin (jsapis);

    CREATE TABLE feature_changes (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      -- Minted at the proposal, also for an addition (the feature row appears on approval).
      feature_id text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('add', 'edit', 'archive')),
      -- The feature as proposed: {key, name, description, accessMode, jsapis} (archive: the current one).
      proposal jsonb NOT NULL,
      -- The revision the proposal was made on (0 for an addition).
      base_revision integer NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn', 'expired')),
      proposed_by text NOT NULL,
      comment text NOT NULL DEFAULT '',
      decided_by text,
      decided_at timestamptz,
      reason text,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      seq integer NOT NULL DEFAULT 0
    );
    CREATE INDEX feature_changes_ws_idx ON feature_changes (workspace_id, created_at DESC, id DESC);
    CREATE INDEX feature_changes_feature_idx ON feature_changes (feature_id, created_at DESC);
    -- One pending change per feature, and one pending addition per key: a racing second proposal fails here.
    CREATE UNIQUE INDEX feature_changes_one_pending ON feature_changes (feature_id) WHERE status = 'pending';
    CREATE UNIQUE INDEX feature_changes_pending_key ON feature_changes (workspace_id, (proposal->>'key')) WHERE status = 'pending' AND kind = 'add';

    CREATE TABLE feature_revisions (
      feature_id text NOT NULL REFERENCES features(id) ON DELETE CASCADE,
      revision integer NOT NULL,
      -- The whole feature after this revision: {key, name, description, accessMode, jsapis, status}.
      snapshot jsonb NOT NULL,
      -- {fields: {name: {from, to}, ...}, jsapis: {added: [], removed: []}}
      diff jsonb NOT NULL,
      kind text NOT NULL,
      change_id text NOT NULL UNIQUE REFERENCES feature_changes(id),
      proposed_by text NOT NULL,
      proposed_at timestamptz NOT NULL,
      approved_by text NOT NULL,
      approved_at timestamptz NOT NULL,
      comment text,
      PRIMARY KEY (feature_id, revision)
    );

    CREATE TABLE mini_program_features (
      mini_program_id text NOT NULL REFERENCES mini_programs(id) ON DELETE CASCADE,
      feature_id text NOT NULL REFERENCES features(id) ON DELETE CASCADE,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      status text NOT NULL CHECK (status IN ('requested', 'active', 'rejected', 'withdrawn', 'revoked', 'expired')),
      -- Rises with each application: the activation workflow id carries it.
      attempt integer NOT NULL DEFAULT 1,
      message text NOT NULL DEFAULT '',
      requested_by text NOT NULL,
      requested_at timestamptz NOT NULL,
      decided_by text,
      decided_at timestamptz,
      reason text,
      updated_at timestamptz NOT NULL,
      seq integer NOT NULL DEFAULT 0,
      PRIMARY KEY (mini_program_id, feature_id)
    );
    CREATE INDEX mini_program_features_feature_idx ON mini_program_features (feature_id, status);
    CREATE INDEX mini_program_features_pending_idx ON mini_program_features (workspace_id, requested_at DESC) WHERE status = 'requested';
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('DROP TABLE IF EXISTS mini_program_features, feature_revisions, feature_changes, features');
};
