/**
 * What a mini program may call through the features it holds.
 *
 * A mini program holds a feature when its `mini_program_features` row is `active` and the feature
 * itself is `active` (not archived). Each such feature grants every JSAPI it lists. The catalog's
 * own rules (open APIs need no feature, disabled APIs nobody may call) are the caller's to apply:
 * this module answers only "which held features grant which JSAPI".
 */
import { QueryTypes, type Sequelize } from 'sequelize';

/** A held feature that grants a JSAPI. */
export interface FeatureGrant {
  featureId: string;
  featureName: string;
}

/**
 * The JSAPIs the mini program may call through its active features: JSAPI name → the features
 * (sorted by name) that grant it. A JSAPI no held feature lists is absent from the map.
 */
export async function grantedJsapis(sequelize: Sequelize, miniProgramId: string): Promise<Map<string, FeatureGrant[]>> {
  const rows = await sequelize.query<{ api: string; feature_id: string; feature_name: string }>(
    `SELECT DISTINCT unnest(f.jsapis) AS api, f.id AS feature_id, f.name AS feature_name
       FROM mini_program_features mpf
       JOIN features f ON f.id = mpf.feature_id AND f.workspace_id = mpf.workspace_id
      WHERE mpf.mini_program_id = :miniProgramId AND mpf.status = 'active' AND f.status = 'active'
      ORDER BY api, feature_name, feature_id`,
    { replacements: { miniProgramId }, type: QueryTypes.SELECT },
  );
  const grants = new Map<string, FeatureGrant[]>();
  for (const row of rows) {
    const list = grants.get(row.api) ?? [];
    list.push({ featureId: row.feature_id, featureName: row.feature_name });
    grants.set(row.api, list);
  }
  return grants;
}
