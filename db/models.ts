import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from 'sequelize';
import type { WorkspaceRole } from '../lib/permissions.js';

export class User extends Model<InferAttributes<User>, InferCreationAttributes<User>> {
  declare id: string;
  declare email: string;
  declare name: string;
  declare passwordHash: string;
  declare isOperator: CreationOptional<boolean>;
  declare lastWorkspaceId: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
}

export class Session extends Model<InferAttributes<Session>, InferCreationAttributes<Session>> {
  declare idHash: string;
  declare userId: string;
  declare csrfToken: string;
  declare lastWorkspaceId: CreationOptional<string | null>;
  declare userAgent: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare expiresAt: Date;
}

export class ApiToken extends Model<InferAttributes<ApiToken>, InferCreationAttributes<ApiToken>> {
  declare id: string;
  declare userId: string;
  declare name: string;
  declare tokenHash: string;
  declare lastUsedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare revokedAt: CreationOptional<Date | null>;
}

export class Workspace extends Model<InferAttributes<Workspace>, InferCreationAttributes<Workspace>> {
  declare id: string;
  declare name: string;
  declare code: string;
  declare type: CreationOptional<'merchant' | 'developer'>;
  declare createdAt: CreationOptional<Date>;
}

export class Membership extends Model<InferAttributes<Membership>, InferCreationAttributes<Membership>> {
  declare workspaceId: string;
  declare userId: string;
  declare role: WorkspaceRole;
  declare createdAt: CreationOptional<Date>;
}

export class MiniProgramRow extends Model<InferAttributes<MiniProgramRow>, InferCreationAttributes<MiniProgramRow>> {
  declare id: string;
  declare workspaceId: string;
  declare name: string;
  declare description: string;
  declare category: string;
  declare icon: string | null;
  declare status: string;
  declare liveVersionId: string | null;
  declare liveVersion: string | null;
  declare activeVersionId: string | null;
  declare versionCount: number;
  declare createdBy: string;
  declare createdAt: Date;
  declare updatedAt: Date;
  declare seq: number;
}

export class VersionRow extends Model<InferAttributes<VersionRow>, InferCreationAttributes<VersionRow>> {
  declare id: string;
  declare miniProgramId: string;
  declare workspaceId: string;
  declare version: string;
  declare notes: string;
  declare status: string;
  declare packageSha256: string;
  declare packageSize: number;
  declare pageCount: number;
  declare createdBy: string;
  declare submittedBy: string | null;
  declare submittedAt: Date | null;
  declare decidedBy: string | null;
  declare decisionComment: string | null;
  declare releasedAt: Date | null;
  declare createdAt: Date;
  declare updatedAt: Date;
  declare seq: number;
}

export class AuditEntry extends Model<InferAttributes<AuditEntry>, InferCreationAttributes<AuditEntry>> {
  declare id: CreationOptional<string>;
  declare dedupeKey: string;
  declare workspaceId: string;
  declare subjectType: string;
  declare subjectId: string;
  declare actorId: string | null;
  declare action: string;
  declare fromState: string | null;
  declare toState: string | null;
  declare comment: string | null;
  declare at: Date;
  declare recordedAt: CreationOptional<Date>;
}

const str = { type: DataTypes.TEXT, allowNull: false };
const optStr = { type: DataTypes.TEXT, allowNull: true };
const date = { type: DataTypes.DATE, allowNull: false };
const optDate = { type: DataTypes.DATE, allowNull: true };
const base = { underscored: true, timestamps: false } as const;

/** Binds the models to a connection. The one owner of the schema that api/ and activities/ share. */
export function initModels(sequelize: Sequelize) {
  User.init({ id: { ...str, primaryKey: true }, email: str, name: str, passwordHash: str, isOperator: { type: DataTypes.BOOLEAN, defaultValue: false }, lastWorkspaceId: optStr, createdAt: { ...date, defaultValue: DataTypes.NOW } }, { sequelize, tableName: 'users', ...base });
  Session.init({ idHash: { ...str, primaryKey: true }, userId: str, csrfToken: str, lastWorkspaceId: optStr, userAgent: optStr, createdAt: { ...date, defaultValue: DataTypes.NOW }, expiresAt: date }, { sequelize, tableName: 'sessions', ...base });
  ApiToken.init({ id: { ...str, primaryKey: true }, userId: str, name: str, tokenHash: str, lastUsedAt: optDate, createdAt: { ...date, defaultValue: DataTypes.NOW }, revokedAt: optDate }, { sequelize, tableName: 'api_tokens', ...base });
  Workspace.init({ id: { ...str, primaryKey: true }, name: str, code: str, type: { ...str, defaultValue: 'merchant' }, createdAt: { ...date, defaultValue: DataTypes.NOW } }, { sequelize, tableName: 'workspaces', ...base });
  Membership.init({ workspaceId: { ...str, primaryKey: true }, userId: { ...str, primaryKey: true }, role: str, createdAt: { ...date, defaultValue: DataTypes.NOW } }, { sequelize, tableName: 'memberships', ...base });
  MiniProgramRow.init(
    { id: { ...str, primaryKey: true }, workspaceId: str, name: str, description: str, category: str, icon: optStr, status: str, liveVersionId: optStr, liveVersion: optStr, activeVersionId: optStr, versionCount: { type: DataTypes.INTEGER, allowNull: false }, createdBy: str, createdAt: date, updatedAt: date, seq: { type: DataTypes.INTEGER, allowNull: false } },
    { sequelize, tableName: 'mini_programs', ...base },
  );
  VersionRow.init(
    {
      id: { ...str, primaryKey: true }, miniProgramId: str, workspaceId: str, version: str, notes: str, status: str, packageSha256: str,
      packageSize: { type: DataTypes.INTEGER, allowNull: false }, pageCount: { type: DataTypes.INTEGER, allowNull: false }, createdBy: str,
      submittedBy: optStr, submittedAt: optDate, decidedBy: optStr, decisionComment: optStr, releasedAt: optDate, createdAt: date, updatedAt: date,
      seq: { type: DataTypes.INTEGER, allowNull: false },
    },
    { sequelize, tableName: 'versions', ...base },
  );
  AuditEntry.init(
    { id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true }, dedupeKey: str, workspaceId: str, subjectType: str, subjectId: str, actorId: optStr, action: str, fromState: optStr, toState: optStr, comment: optStr, at: date, recordedAt: { ...date, defaultValue: DataTypes.NOW } },
    { sequelize, tableName: 'audit_log', ...base },
  );
  return { User, Session, ApiToken, Workspace, Membership, MiniProgramRow, VersionRow, AuditEntry };
}
