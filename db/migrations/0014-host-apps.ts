import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Host apps (the super apps that run mini programs) and their keys. A key's purpose says who
 * signs with it: 'app' keys (uploaded by the app, or issued by the platform with the private part
 * handed over once) verify requests the app signs; 'platform' keys sign the platform's messages
 * to the app, and only they keep private material, sealed (AES-256-GCM under a key derived from
 * KEY_ENCRYPTION_KEY, see lib/host-app-keys.ts). At most one active key per app and purpose; a
 * rotated key keeps verifying until overlap_ends_at; a revoked one never again.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE host_apps (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
      platform text NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
      bundle_id text NOT NULL CHECK (length(bundle_id) BETWEEN 1 AND 255),
      description text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
      icon bytea,
      icon_type text,
      icon_sha256 text,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_by text,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((icon IS NULL) = (icon_type IS NULL))
    );
    -- One app per bundle id and platform in a workspace (a double submit makes one).
    CREATE UNIQUE INDEX host_apps_ws_bundle_uq ON host_apps (workspace_id, platform, lower(bundle_id));
    CREATE INDEX host_apps_ws_list_idx ON host_apps (workspace_id, created_at DESC, id DESC);

    CREATE TABLE host_app_keys (
      id text PRIMARY KEY,
      host_app_id text NOT NULL REFERENCES host_apps(id) ON DELETE CASCADE,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      -- uploaded: the app's own public key; app_signing: issued, private part shown once, never kept;
      -- platform: issued, private part kept sealed to sign the platform's messages.
      kind text NOT NULL CHECK (kind IN ('uploaded', 'app_signing', 'platform')),
      purpose text NOT NULL CHECK (purpose IN ('app', 'platform')),
      label text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
      algorithm text NOT NULL,
      key_bits integer NOT NULL,
      public_pem text NOT NULL CHECK (public_pem LIKE '-----BEGIN PUBLIC KEY-----%'),
      private_sealed text CHECK (private_sealed LIKE 'v1.%'),
      fingerprint text NOT NULL CHECK (fingerprint LIKE 'SHA256:%'),
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'rotated', 'revoked')),
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      rotated_at timestamptz,
      rotated_by text,
      replaced_by text REFERENCES host_app_keys(id) ON DELETE SET NULL,
      overlap_ends_at timestamptz,
      revoked_at timestamptz,
      revoked_by text,
      revoke_reason text CHECK (length(revoke_reason) <= 500),
      CHECK ((kind = 'platform') = (purpose = 'platform')),
      -- Only platform keys hold private material, and only sealed.
      CHECK ((kind = 'platform') = (private_sealed IS NOT NULL)),
      CHECK (status <> 'rotated' OR overlap_ends_at IS NOT NULL),
      CHECK (status <> 'revoked' OR revoked_at IS NOT NULL)
    );
    CREATE UNIQUE INDEX host_app_keys_active_uq ON host_app_keys (host_app_id, purpose) WHERE status = 'active';
    -- A key is used once per app: a revoked key cannot come back.
    CREATE UNIQUE INDEX host_app_keys_fp_uq ON host_app_keys (host_app_id, fingerprint);
    CREATE INDEX host_app_keys_app_idx ON host_app_keys (host_app_id, purpose, created_at DESC);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('DROP TABLE IF EXISTS host_app_keys, host_apps');
};
