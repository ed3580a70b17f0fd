import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * The release pipeline in depth: each pipeline's read model (release, rollback, offline), the
 * workspace's review policy and reject reasons, and the rollout row the runtime resolves from.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE pipelines (
      id text PRIMARY KEY,                     -- the workflow id: release:<versionId>, rollback:<requestId>, offline:<requestId>
      kind text NOT NULL CHECK (kind IN ('release', 'rollback', 'offline')),
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      mini_program_id text NOT NULL REFERENCES mini_programs(id) ON DELETE CASCADE,
      version_id text NOT NULL,
      version text NOT NULL,
      status text NOT NULL,
      hotfix boolean NOT NULL DEFAULT false,
      submitted_by text NOT NULL,
      submitted_at timestamptz NOT NULL,
      reason text,
      baseline_version_id text,
      review_requested_at timestamptz,
      sla_due_at timestamptz,
      reminded_at timestamptz,
      escalated_at timestamptz,
      required_approvals integer NOT NULL DEFAULT 1,
      approvals jsonb NOT NULL DEFAULT '[]',
      rejection jsonb,
      decided_by text,
      decided_at timestamptz,
      released_at timestamptz,
      rollout jsonb,
      stuck jsonb,
      waiting_for text NOT NULL DEFAULT '',
      updated_at timestamptz NOT NULL,
      seq integer NOT NULL
    );
    CREATE INDEX pipelines_ws_idx ON pipelines (workspace_id, submitted_at DESC, id DESC);
    CREATE INDEX pipelines_mp_idx ON pipelines (mini_program_id, submitted_at DESC);
    CREATE INDEX pipelines_submitter_idx ON pipelines (submitted_by, submitted_at DESC, id DESC);
    CREATE INDEX pipelines_review_idx ON pipelines (workspace_id, review_requested_at) WHERE status = 'in_review';
    CREATE INDEX pipelines_stuck_idx ON pipelines (updated_at) WHERE status = 'stuck';
    CREATE INDEX pipelines_approvals_idx ON pipelines USING gin (approvals jsonb_path_ops);

    CREATE TABLE workspace_release_settings (
      workspace_id text PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
      required_approvals integer NOT NULL DEFAULT 1 CHECK (required_approvals BETWEEN 1 AND 10),
      rollback_needs_review boolean NOT NULL DEFAULT false,
      offline_needs_review boolean NOT NULL DEFAULT true,
      updated_by text,
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    -- Reject reasons: the built-in list (workspace_id NULL) plus each workspace's own.
    CREATE TABLE reject_reasons (
      id text PRIMARY KEY,
      workspace_id text REFERENCES workspaces(id) ON DELETE CASCADE,
      code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
      label text NOT NULL CHECK (length(label) BETWEEN 1 AND 120),
      description text NOT NULL DEFAULT '',
      archived boolean NOT NULL DEFAULT false,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX reject_reasons_code_uq ON reject_reasons ((coalesce(workspace_id, '')), code);
    INSERT INTO reject_reasons (id, workspace_id, code, label, description) VALUES
      ('rr_builtin_crash', NULL, 'crash_or_bug', 'Crashes or functional bug', 'The version crashes or a main flow does not work.'),
      ('rr_builtin_policy', NULL, 'policy_violation', 'Platform policy violation', 'Content or behaviour the platform rules forbid.'),
      ('rr_builtin_privacy', NULL, 'privacy', 'Privacy or permissions', 'Collects data or asks for permissions it does not explain.'),
      ('rr_builtin_content', NULL, 'content', 'Content or copy issue', 'Wrong, misleading or placeholder text and images.'),
      ('rr_builtin_perf', NULL, 'performance', 'Performance', 'Slow start, janky pages or too large a package.'),
      ('rr_builtin_meta', NULL, 'metadata', 'Release notes or metadata', 'Notes, icon or category do not match the version.'),
      ('rr_builtin_other', NULL, 'other', 'Other', 'Explained in the comment.');

    -- What the runtime serves: one row per mini program, written by the pipeline in charge.
    -- Resolve reads it with the mini program's live version; an older epoch never overwrites a newer one.
    CREATE TABLE rollouts (
      mini_program_id text PRIMARY KEY REFERENCES mini_programs(id) ON DELETE CASCADE,
      workspace_id text NOT NULL,
      pipeline_id text NOT NULL,
      version_id text NOT NULL,
      baseline_version_id text,
      percent numeric(6,3) NOT NULL DEFAULT 0,
      whitelist boolean NOT NULL DEFAULT false,
      -- rolling_out / paused: the cohort gets version_id; completed: everyone does; otherwise: the baseline.
      status text NOT NULL,
      epoch integer NOT NULL DEFAULT 0,
      seq integer NOT NULL,
      updated_at timestamptz NOT NULL
    );
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('DROP TABLE IF EXISTS rollouts, reject_reasons, workspace_release_settings, pipelines');
};
