import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Analytics: raw events partitioned by day, the rollups the dashboards read, crash groups.
 *
 * - analytics_events: every accepted event once (primary key (id, at): a retried event keeps its
 *   id and time, so a duplicate is refused by the key). Partitioned by RANGE (at), one partition a
 *   day named analytics_events_YYYYMMDD, created ahead by `analytics_ensure_partition(day)` and
 *   dropped whole by the retention job. No foreign keys: partitions are dropped, not deleted from.
 * - analytics_hourly: counts per hour × mini program × version × host app ('' = none), maintained
 *   in the same transaction as the raw insert from the rows the insert really wrote (duplicates
 *   never count). analytics_page_hourly: the same per page (visits, time on page).
 * - analytics_user_days: who was active which day (by version and host app), for DAU/WAU/MAU and
 *   retention; analytics_users: each user's first day (new users, cohorts); analytics_sessions:
 *   one row per session (start, last event, count) for sessions and their length.
 * - crash_groups: errors and crashes grouped by fingerprint per mini program, with counts, users,
 *   versions, samples and a resolve/reopen status; crash_group_users and crash_group_hourly
 *   (the trend sparkline); crash_group_changes: who resolved or reopened a group, and why.
 * - runtime_counts (0007) stays the per-minute launch/crash rollup that the rollout health check
 *   reads; ingest maintains it too.
 * - mini_programs.ingest_key: the public key a mini program's tracker sends events with.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE analytics_events (
      id uuid NOT NULL,
      at timestamptz NOT NULL,
      received_at timestamptz NOT NULL,
      type text NOT NULL,
      workspace_id text NOT NULL,
      mini_program_id text NOT NULL,
      version_id text NOT NULL,
      host_app_id text,
      user_id text NOT NULL,
      session_id text NOT NULL,
      page text,
      -- custom: the event name; perf: the metric name.
      name text,
      -- perf: the measured value (ms); page_view: time on the page (ms) when known.
      value double precision,
      -- error and crash: the group fingerprint, the message and the stack as sent.
      fingerprint text,
      message text,
      stack text,
      props jsonb,
      PRIMARY KEY (id, at)
    ) PARTITION BY RANGE (at);
    -- Drill-down from a crash group to its raw events.
    CREATE INDEX analytics_events_fingerprint_idx ON analytics_events (fingerprint, at) WHERE fingerprint IS NOT NULL;

    CREATE FUNCTION analytics_ensure_partition(day date) RETURNS text LANGUAGE plpgsql AS $$
    DECLARE name text := 'analytics_events_' || to_char(day, 'YYYYMMDD');
    BEGIN
      IF to_regclass(name) IS NULL THEN
        BEGIN
          EXECUTE format('CREATE TABLE %I PARTITION OF analytics_events FOR VALUES FROM (%L) TO (%L)',
            name, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
        EXCEPTION WHEN duplicate_table THEN NULL; -- another process made it first
        END;
      END IF;
      RETURN name;
    END $$;

    CREATE TABLE analytics_hourly (
      hour timestamptz NOT NULL,
      workspace_id text NOT NULL,
      mini_program_id text NOT NULL,
      version_id text NOT NULL,
      host_app_id text NOT NULL DEFAULT '',
      launches bigint NOT NULL DEFAULT 0,
      page_views bigint NOT NULL DEFAULT 0,
      custom_events bigint NOT NULL DEFAULT 0,
      errors bigint NOT NULL DEFAULT 0,
      crashes bigint NOT NULL DEFAULT 0,
      perf_count bigint NOT NULL DEFAULT 0,
      perf_sum_ms double precision NOT NULL DEFAULT 0,
      events bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (mini_program_id, hour, version_id, host_app_id)
    );
    CREATE INDEX analytics_hourly_workspace_idx ON analytics_hourly (workspace_id, hour);

    CREATE TABLE analytics_page_hourly (
      hour timestamptz NOT NULL,
      workspace_id text NOT NULL,
      mini_program_id text NOT NULL,
      version_id text NOT NULL,
      host_app_id text NOT NULL DEFAULT '',
      page text NOT NULL,
      views bigint NOT NULL DEFAULT 0,
      -- page views that carried a time on page, and the sum of those times
      timed_views bigint NOT NULL DEFAULT 0,
      time_ms_sum double precision NOT NULL DEFAULT 0,
      PRIMARY KEY (mini_program_id, hour, page, version_id, host_app_id)
    );
    CREATE INDEX analytics_page_hourly_workspace_idx ON analytics_page_hourly (workspace_id, hour);

    CREATE TABLE analytics_user_days (
      day date NOT NULL,
      workspace_id text NOT NULL,
      mini_program_id text NOT NULL,
      version_id text NOT NULL,
      host_app_id text NOT NULL DEFAULT '',
      user_id text NOT NULL,
      PRIMARY KEY (mini_program_id, day, user_id, version_id, host_app_id)
    );
    CREATE INDEX analytics_user_days_workspace_idx ON analytics_user_days (workspace_id, day);

    CREATE TABLE analytics_users (
      mini_program_id text NOT NULL,
      user_id text NOT NULL,
      workspace_id text NOT NULL,
      first_day date NOT NULL,
      first_version_id text NOT NULL,
      first_host_app_id text NOT NULL DEFAULT '',
      -- the time of the earliest event (first_version_id and first_host_app_id are that event's)
      first_at timestamptz,
      PRIMARY KEY (mini_program_id, user_id)
    );
    CREATE INDEX analytics_users_first_day_idx ON analytics_users (mini_program_id, first_day);
    CREATE INDEX analytics_users_workspace_idx ON analytics_users (workspace_id, first_day);

    CREATE TABLE analytics_sessions (
      mini_program_id text NOT NULL,
      session_id text NOT NULL,
      workspace_id text NOT NULL,
      version_id text NOT NULL,
      host_app_id text NOT NULL DEFAULT '',
      user_id text NOT NULL,
      day date NOT NULL,
      started_at timestamptz NOT NULL,
      last_at timestamptz NOT NULL,
      events integer NOT NULL DEFAULT 0,
      PRIMARY KEY (mini_program_id, session_id)
    );
    CREATE INDEX analytics_sessions_day_idx ON analytics_sessions (mini_program_id, day);
    CREATE INDEX analytics_sessions_workspace_idx ON analytics_sessions (workspace_id, day);

    -- Daily rollups the dashboards read (lib/analytics/daily-rollups.ts rebuilds the recent days
    -- after flushes). version_id / host_app_id '*' = all (GROUPING SETS). analytics_daily_users:
    -- users active on a day, by gap = days since their previous active day in the same scope (367 =
    -- none in the 366 days before), so any range's distinct users is a sum: the users whose gap
    -- reaches back before the range's start.
    CREATE TABLE analytics_daily_users (
      mini_program_id text NOT NULL,
      workspace_id text NOT NULL,
      day date NOT NULL,
      version_id text NOT NULL,
      host_app_id text NOT NULL,
      gap smallint NOT NULL,
      users integer NOT NULL,
      PRIMARY KEY (mini_program_id, version_id, host_app_id, day, gap)
    );
    CREATE INDEX analytics_daily_users_workspace_idx ON analytics_daily_users (workspace_id, day);
    -- Sessions by the day they started, and the sum of their lengths (ms).
    CREATE TABLE analytics_daily_sessions (
      mini_program_id text NOT NULL,
      workspace_id text NOT NULL,
      day date NOT NULL,
      version_id text NOT NULL,
      host_app_id text NOT NULL,
      sessions integer NOT NULL,
      -- whole ms (event times are ms): sums are exact, whatever order a refresh adds them in
      total_ms bigint NOT NULL,
      PRIMARY KEY (mini_program_id, version_id, host_app_id, day)
    );
    CREATE INDEX analytics_daily_sessions_workspace_idx ON analytics_daily_sessions (workspace_id, day);
    -- Retention cohorts = new users: users whose first day is \`day\` (by FIRST version / host app),
    -- and how many of them were active on day + 1, + 7, + 30.
    CREATE TABLE analytics_cohorts (
      mini_program_id text NOT NULL,
      workspace_id text NOT NULL,
      day date NOT NULL,
      version_id text NOT NULL,
      host_app_id text NOT NULL,
      users integer NOT NULL,
      d1 integer NOT NULL,
      d7 integer NOT NULL,
      d30 integer NOT NULL,
      PRIMARY KEY (mini_program_id, version_id, host_app_id, day)
    );
    CREATE INDEX analytics_cohorts_workspace_idx ON analytics_cohorts (workspace_id, day);

    CREATE TABLE crash_groups (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      mini_program_id text NOT NULL REFERENCES mini_programs(id) ON DELETE CASCADE,
      fingerprint text NOT NULL,
      -- 'crash' once any of its events was a crash, else 'error'
      kind text NOT NULL CHECK (kind IN ('error', 'crash')),
      title text NOT NULL,
      message text NOT NULL,
      top_frames jsonb NOT NULL DEFAULT '[]',
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
      resolved_at timestamptz,
      resolved_by text REFERENCES users(id) ON DELETE SET NULL,
      -- the newest version that had the group when it was resolved; an event of a newer one reopens it
      resolved_version_id text,
      reopened_at timestamptz,
      first_seen timestamptz NOT NULL,
      last_seen timestamptz NOT NULL,
      events bigint NOT NULL DEFAULT 0,
      users bigint NOT NULL DEFAULT 0,
      version_ids text[] NOT NULL DEFAULT '{}',
      -- up to 5 recent samples: {eventId, at, versionId, hostAppId, userId, page, message, stack}
      samples jsonb NOT NULL DEFAULT '[]',
      UNIQUE (mini_program_id, fingerprint)
    );
    CREATE INDEX crash_groups_workspace_idx ON crash_groups (workspace_id, last_seen DESC);
    CREATE TABLE crash_group_users (
      group_id text NOT NULL REFERENCES crash_groups(id) ON DELETE CASCADE,
      user_id text NOT NULL,
      PRIMARY KEY (group_id, user_id)
    );
    CREATE TABLE crash_group_hourly (
      group_id text NOT NULL REFERENCES crash_groups(id) ON DELETE CASCADE,
      hour timestamptz NOT NULL,
      version_id text NOT NULL,
      events bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (group_id, hour, version_id)
    );
    CREATE TABLE crash_group_changes (
      id text PRIMARY KEY,
      group_id text NOT NULL REFERENCES crash_groups(id) ON DELETE CASCADE,
      action text NOT NULL CHECK (action IN ('resolved', 'reopened', 'created')),
      actor_id text REFERENCES users(id) ON DELETE SET NULL,
      version_id text,
      comment text,
      at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX crash_group_changes_group_idx ON crash_group_changes (group_id, at);

    ALTER TABLE mini_programs ADD COLUMN ingest_key text;
    UPDATE mini_programs SET ingest_key = 'mpik_' || replace(gen_random_uuid()::text, '-', '') WHERE ingest_key IS NULL;
    ALTER TABLE mini_programs ALTER COLUMN ingest_key SET DEFAULT ('mpik_' || replace(gen_random_uuid()::text, '-', '')), ALTER COLUMN ingest_key SET NOT NULL;
    CREATE UNIQUE INDEX mini_programs_ingest_key_idx ON mini_programs (ingest_key);

    -- Crash alerts are a notification kind a member can turn off.
    ALTER TABLE notification_preferences DROP CONSTRAINT notification_preferences_muted_check,
      ADD CONSTRAINT notification_preferences_muted_check CHECK (muted <@ ARRAY['review_requests', 'decisions', 'rollouts', 'halts', 'authorizations', 'crashes']::text[]);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    UPDATE notification_preferences SET muted = array_remove(muted, 'crashes');
    ALTER TABLE notification_preferences DROP CONSTRAINT notification_preferences_muted_check,
      ADD CONSTRAINT notification_preferences_muted_check CHECK (muted <@ ARRAY['review_requests', 'decisions', 'rollouts', 'halts', 'authorizations']::text[]);
    DROP INDEX IF EXISTS mini_programs_ingest_key_idx;
    ALTER TABLE mini_programs DROP COLUMN IF EXISTS ingest_key;
    DROP TABLE IF EXISTS analytics_cohorts, analytics_daily_sessions, analytics_daily_users;
    DROP TABLE IF EXISTS crash_group_changes, crash_group_hourly, crash_group_users, crash_groups,
      analytics_sessions, analytics_users, analytics_user_days, analytics_page_hourly, analytics_hourly, analytics_events CASCADE;
    DROP FUNCTION IF EXISTS analytics_ensure_partition(date);
  `);
};
