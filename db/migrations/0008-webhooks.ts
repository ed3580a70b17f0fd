import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Webhooks: a workspace's HTTPS endpoints that receive signed review and release events, and the
 * log of every delivery. The signing secret is stored sealed (AES-256-GCM under a key derived from
 * SECRET_KEY, see lib/webhook-signature.ts), never in clear. One delivery row per endpoint and
 * event: a retried activity finds it and sends each endpoint an event once.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE webhooks (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      url text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
      description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
      -- Subscribed event types; empty = every event.
      events text[] NOT NULL DEFAULT '{}',
      secret_sealed text NOT NULL CHECK (secret_sealed LIKE 'v1.%'),
      secret_rotated_at timestamptz,
      active boolean NOT NULL DEFAULT true,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      last_delivery_at timestamptz,
      last_status text CHECK (last_status IN ('delivered', 'failed'))
    );
    CREATE INDEX webhooks_ws_list_idx ON webhooks (workspace_id, created_at DESC, id DESC);
    -- One endpoint per URL in a workspace (a double submit makes one).
    CREATE UNIQUE INDEX webhooks_ws_url_uq ON webhooks (workspace_id, url);
    -- The activity's lookup: a workspace's active endpoints.
    CREATE INDEX webhooks_ws_active_idx ON webhooks (workspace_id) WHERE active;

    CREATE TABLE webhook_deliveries (
      id text PRIMARY KEY,
      webhook_id text NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
      event_id text NOT NULL CHECK (length(event_id) <= 300),
      event_type text NOT NULL,
      payload jsonb NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      response_status integer,
      response_excerpt text CHECK (length(response_excerpt) <= 500),
      error text CHECK (length(error) <= 500),
      duration_ms integer,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_attempt_at timestamptz,
      delivered_at timestamptz,
      UNIQUE (webhook_id, event_id)
    );
    -- The delivery log of one endpoint: newest first, keyset paged.
    CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('DROP TABLE IF EXISTS webhook_deliveries, webhooks');
};
