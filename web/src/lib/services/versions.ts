import type { Version, VersionAction, VersionDetail } from '$lib/api/types';
import { ApiError } from '$lib/utils/errors';
import { api, apiBase, csrfHeaders, newKey, seg, unwrap } from './http';

/** Versions of a mini program: upload (with progress), detail, release commands, package download. */

const versionRoute = () => api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'].versions[':versionId'];

export function getVersion(workspaceId: string, miniProgramId: string, versionId: string): Promise<VersionDetail> {
  return unwrap<VersionDetail>(versionRoute().$get({ param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId), versionId: seg(versionId) } }));
}

/**
 * Runs a release command. The answer is the version's new state, which the caller shows as is.
 * `reject` needs a comment.
 */
export function runVersionAction(
  workspaceId: string,
  miniProgramId: string,
  versionId: string,
  action: VersionAction,
  comment?: string,
): Promise<VersionDetail> {
  const param = { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId), versionId: seg(versionId) };
  const options = { headers: { 'Idempotency-Key': newKey() } };
  const body = comment?.trim() ? { comment: comment.trim() } : {};
  const r = versionRoute();
  switch (action) {
    case 'submit':
      return unwrap<VersionDetail>(r.submit.$post({ param }, options));
    case 'approve':
      return unwrap<VersionDetail>(r.approve.$post({ param, json: body }, options));
    case 'reject':
      return unwrap<VersionDetail>(r.reject.$post({ param, json: body }, options));
    case 'withdraw':
      return unwrap<VersionDetail>(r.withdraw.$post({ param, json: body }, options));
    case 'release':
      return unwrap<VersionDetail>(r.release.$post({ param, json: body }, options));
  }
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
