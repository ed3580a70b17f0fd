import type { RolloutStage, Version, VersionAction, VersionDetail } from '$lib/api/types';
import { ApiError } from '$lib/utils/errors';
import { api, apiBase, csrfHeaders, newKey, seg, unwrap } from './http';
import { releasePipelineId, rollback, runPipelineAction } from './pipelines';

/** Versions of a mini program: upload (with progress), detail, release commands, package download. */

const versionRoute = () => api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'].versions[':versionId'];

export function getVersion(workspaceId: string, miniProgramId: string, versionId: string): Promise<VersionDetail> {
  return unwrap<VersionDetail>(versionRoute().$get({ param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId), versionId: seg(versionId) } }));
}

/** What a command may carry besides its name. */
export interface VersionCommandInput {
  comment?: string;
  /** `submit`: a hotfix may take the lane from a rollout in progress. */
  hotfix?: boolean;
  /** `reject`: one of the workspace's reject reasons, and an optional file (≤ 2 MB). */
  reasonCode?: string;
  attachment?: File | null;
  /** `release`: the rollout plan (omitted: the default ladder). */
  plan?: RolloutStage[];
  /** `rollback`: why (required). */
  reason?: string;
}

/** The largest file a reviewer can attach to a rejection. */
export const maxAttachmentBytes = 2 * 1024 * 1024;

/** A file as base64 (without the data: prefix), for the JSON body of a rejection. */
function base64Of(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error ?? new Error('Could not read the file'));
    reader.readAsDataURL(file);
  });
}

/**
 * Runs a release command. The answer is the version's new state, which the caller shows as is.
 * `reject` needs a reason code and a comment. Rollout controls and rollback run on the pipeline
 * routes; the version is then read again (its pipeline is queried live, so it is current).
 */
export async function runVersionAction(
  workspaceId: string,
  miniProgramId: string,
  versionId: string,
  action: VersionAction,
  input: VersionCommandInput = {},
): Promise<VersionDetail> {
  const param = { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId), versionId: seg(versionId) };
  const options = { headers: { 'Idempotency-Key': newKey() } };
  const comment = input.comment?.trim() || undefined;
  const r = versionRoute();
  switch (action) {
    case 'submit':
      return unwrap<VersionDetail>(r.submit.$post({ param, json: { hotfix: input.hotfix || undefined } }, options));
    case 'approve':
      return unwrap<VersionDetail>(r.approve.$post({ param, json: { comment } }, options));
    case 'reject': {
      const file = input.attachment;
      const attachment = file ? { name: file.name, contentType: file.type || 'application/octet-stream', dataBase64: await base64Of(file) } : undefined;
      return unwrap<VersionDetail>(r.reject.$post({ param, json: { reasonCode: input.reasonCode ?? '', comment: comment ?? '', attachment } }, options));
    }
    case 'withdraw':
      return unwrap<VersionDetail>(r.withdraw.$post({ param, json: { comment } }, options));
    case 'release':
      return unwrap<VersionDetail>(r.release.$post({ param, json: { plan: input.plan, comment } }, options));
    case 'rollback':
      await rollback(workspaceId, miniProgramId, versionId, input.reason ?? '');
      return getVersion(workspaceId, miniProgramId, versionId);
    default:
      await runPipelineAction(workspaceId, releasePipelineId(versionId), action, { comment });
      return getVersion(workspaceId, miniProgramId, versionId);
  }
}

/** Where the browser downloads the file attached to a version's rejection. */
export function rejectionAttachmentUrl(workspaceId: string, miniProgramId: string, versionId: string): string {
  return `${apiBase}/workspaces/${seg(workspaceId)}/mini-programs/${seg(miniProgramId)}/versions/${seg(versionId)}/rejection/attachment`;
}

export function packageUrl(workspaceId: string, miniProgramId: string, versionId: string): string {
  return `${apiBase}/workspaces/${seg(workspaceId)}/mini-programs/${seg(miniProgramId)}/versions/${seg(versionId)}/package`;
}

export interface UploadInput {
  file: File;
  version: string;
  notes: string;
}

export interface Upload {
  /** Resolves with the created version; rejects with an ApiError (server message) or a network error. */
  done: Promise<Version>;
  abort(): void;
}

/**
 * Uploads a package as multipart/form-data. XMLHttpRequest rather than fetch because only it
 * reports upload progress; `onProgress` gets the fraction sent (0..1).
 */
export function uploadVersion(workspaceId: string, miniProgramId: string, input: UploadInput, onProgress: (fraction: number) => void): Upload {
  const xhr = new XMLHttpRequest();
  const done = new Promise<Version>((resolve, reject) => {
    const form = new FormData();
    form.append('package', input.file, input.file.name);
    form.append('version', input.version.trim());
    form.append('notes', input.notes);
    xhr.open('POST', `${apiBase}/workspaces/${seg(workspaceId)}/mini-programs/${seg(miniProgramId)}/versions`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Idempotency-Key', newKey());
    for (const [k, v] of Object.entries(csrfHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.upload.onload = () => onProgress(1);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as Version);
      else reject(ApiError.fromBody(xhr.status, body, xhr.statusText));
    };
    xhr.onerror = () => reject(new TypeError('Network error during upload'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'Upload cancelled'));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}
