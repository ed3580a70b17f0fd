import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Branding and domain preference of a workspace.
 * - workspace_branding: the About Us URL shown in the console footer.
 * - workspace_brand_images: the logo and the favicon, checked by content (lib/image-check.ts) and
 *   stored with their detected type, size and sha256 (the sha256 versions their URLs).
 * - workspace_domains: the server and web-view domains its mini programs may call (normalised
 *   origins, at most 50 per list, enforced by the API).
 * - versions.domains: the lists as they were when the version was submitted, so the runtime
 *   enforces what shipped with the release ({ server: [...], webview: [...] }; null = submitted
 *   before domain preferences existed).
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE workspace_branding (
      workspace_id text PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
      about_url text CHECK (about_url IS NULL OR length(about_url) BETWEEN 8 AND 2048),
      updated_by text,
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE workspace_brand_images (
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      slot text NOT NULL CHECK (slot IN ('logo', 'favicon')),
      kind text NOT NULL CHECK (kind IN ('png', 'jpeg', 'webp', 'svg', 'ico')),
      content_type text NOT NULL,
      width integer,
      height integer,
      size integer NOT NULL CHECK (size > 0),
      sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
      bytes bytea NOT NULL,
      uploaded_by text,
      uploaded_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, slot)
    );

    CREATE TABLE workspace_domains (
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      kind text NOT NULL CHECK (kind IN ('server', 'webview')),
      domain text NOT NULL CHECK (length(domain) BETWEEN 9 AND 300),
      position integer NOT NULL,
      added_by text,
      added_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, kind, domain)
    );

    ALTER TABLE versions ADD COLUMN domains jsonb;
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    ALTER TABLE versions DROP COLUMN IF EXISTS domains;
    DROP TABLE IF EXISTS workspace_domains;
    DROP TABLE IF EXISTS workspace_brand_images;
    DROP TABLE IF EXISTS workspace_branding;
  `);
};
