import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes, registered on the dev server at start (temporal/dev-server.ts). */
export const WorkspaceIdKey = defineSearchAttributeKey('WorkspaceId', SearchAttributeType.KEYWORD);
export const MiniProgramIdKey = defineSearchAttributeKey('MiniProgramId', SearchAttributeType.KEYWORD);
export const ReleaseStateKey = defineSearchAttributeKey('ReleaseState', SearchAttributeType.KEYWORD);
export const customSearchAttributes = [WorkspaceIdKey, MiniProgramIdKey, ReleaseStateKey];
