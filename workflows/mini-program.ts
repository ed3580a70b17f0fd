import {
  ApplicationFailure, ParentClosePolicy, allHandlersFinished, condition, continueAsNew, proxyActivities, setHandler, startChild, workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { FailureType } from './contracts/errors.js';
import {
  miniProgramStatusQuery, submitUpdate, syncUpdate, uploadVersionUpdate,
  type MiniProgramInput, type MiniProgramState, type MiniProgramStatus, type SubmitInput, type UploadVersionInput, type VersionEntry,
} from './contracts/mini-program.js';
import { releaseProgressSignal, releaseWorkflowId, terminalReleaseStatuses, type ReleaseProgress } from './contracts/release.js';
import { MiniProgramIdKey, ReleaseStateKey, WorkspaceIdKey } from './contracts/search-attributes.js';
import { Mutex } from './lib/mutex.js';
import { projection } from './profiles.js';
import { releasePipeline } from './release.js';

const { projectMiniProgram, projectNewVersion, projectVersionStatus } = proxyActivities<Activities>(projection);

function statusOf(s: MiniProgramState): MiniProgramStatus {
  if (s.liveVersionId) return 'released';
  if (s.activeVersionId) return 'in_review';
  return s.versions.length ? 'developing' : 'draft';
}

/**
 * MiniProgram: the long-lived entity of one mini program. Owns its version list, which version is
 * live, and the one-release-at-a-time lane; starts a Release child per submission.
 * Id: mini-program:<miniProgramId>.
 */
export async function miniProgramEntity(input: MiniProgramInput): Promise<void> {
  const state: MiniProgramState = input.state ?? {
    miniProgramId: input.miniProgramId,
    workspaceId: input.workspaceId,
    name: input.name,
    description: input.description,
    category: input.category,
    icon: input.icon,
    createdBy: input.createdBy,
    createdAt: input.createdAt,
    status: 'draft',
    liveVersionId: null,
    liveVersion: null,
    activeVersionId: null,
    versions: [],
    seq: 1,
    projected: false,
  };
  const progress: ReleaseProgress[] = [];
  const mutex = new Mutex();

  async function project(audit?: { action: string; actorId: string | null; from: string | null; comment?: string }) {
    state.status = statusOf(state);
    state.seq += 1;
    const at = new Date().toISOString();
    await projectMiniProgram({
      state, at,
      audit: audit && {
        dedupeKey: `${workflowInfo().workflowId}:${workflowInfo().runId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: 'mini_program',
        subjectId: state.miniProgramId, actorId: audit.actorId, action: audit.action, fromState: audit.from, toState: state.status, comment: audit.comment ?? null, at,
      },
    });
  }

  const findVersion = (versionId: string) => state.versions.find((v) => v.versionId === versionId);
  const duplicateVersion = (u: UploadVersionInput) => state.versions.find((v) => v.version === u.version && v.versionId !== u.versionId);
  const conflict = (message: string, details: Record<string, unknown>) => ApplicationFailure.create({ type: FailureType.conflict, message, details: [details], nonRetryable: true });

  setHandler(miniProgramStatusQuery, () => state);
  setHandler(syncUpdate, async () => {
    await condition(() => state.projected);
    return state;
  });

  setHandler(
    uploadVersionUpdate,
    (u) => mutex.run(async (): Promise<VersionEntry> => {
      const existing = findVersion(u.versionId);
      if (existing) return existing; // the same upload retried
      const dup = duplicateVersion(u);
      if (dup) throw conflict(`version ${u.version} already exists`, { version: u.version, versionId: dup.versionId });
      const entry: VersionEntry = { versionId: u.versionId, version: u.version, status: 'uploaded', uploadedBy: u.actorId, packageSha256: u.packageSha256, seq: 1 };
      state.versions.push(entry);
      const at = new Date().toISOString();
      await projectNewVersion({
        versionId: u.versionId, miniProgramId: state.miniProgramId, workspaceId: state.workspaceId, version: u.version, notes: u.notes, status: 'uploaded',
        packageSha256: u.packageSha256, packageSize: u.packageSize, pageCount: u.pageCount, createdBy: u.actorId, createdAt: at, at, seq: 1,
        audit: {
          dedupeKey: `version:${u.versionId}:uploaded`, workspaceId: state.workspaceId, subjectType: 'version', subjectId: u.versionId,
          actorId: u.actorId, action: 'uploaded', fromState: null, toState: 'uploaded', comment: u.notes || null, at,
        },
      });
      const from = state.status;
      await project(from === 'draft' ? { action: 'first_version_uploaded', actorId: u.actorId, from } : undefined);
      return entry;
    }),
    {
      validator: (u) => {
        const dup = duplicateVersion(u);
        if (dup) throw conflict(`version ${u.version} already exists`, { version: u.version, versionId: dup.versionId });
      },
    },
  );

  const checkSubmit = (versionId: string) => {
    const v = findVersion(versionId);
    if (!v) throw ApplicationFailure.create({ type: FailureType.notFound, message: 'version not found', nonRetryable: true });
    if (v.status !== 'uploaded') {
      throw ApplicationFailure.create({ type: FailureType.wrongState, message: `version ${v.version} is ${v.status.replace('_', ' ')}, only an uploaded version can be submitted`, details: [{ status: v.status }], nonRetryable: true });
    }
    if (state.activeVersionId) {
      const active = findVersion(state.activeVersionId);
      throw ApplicationFailure.create({
        type: FailureType.wrongState, message: `version ${active?.version} is already in the release lane; withdraw it or wait for it to finish`,
        details: [{ status: v.status, activeVersionId: state.activeVersionId }], nonRetryable: true,
      });
    }
    return v;
  };

  const startRelease = (s: SubmitInput) =>
    mutex.run(async () => {
      const v = findVersion(s.versionId);
      if (v && v.status !== 'uploaded' && state.activeVersionId === v.versionId) return v; // the same submit retried
      checkSubmit(s.versionId);
      const entry = v as VersionEntry;
      entry.status = 'validating';
      state.activeVersionId = entry.versionId;
      // ABANDON: a release must outlive this run when the entity continues as new.
      await startChild(releasePipeline, {
        workflowId: releaseWorkflowId(entry.versionId),
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: WorkspaceIdKey, value: state.workspaceId },
          { key: MiniProgramIdKey, value: state.miniProgramId },
          { key: ReleaseStateKey, value: 'validating' },
        ],
        args: [{
          versionId: entry.versionId, miniProgramId: state.miniProgramId, miniProgramName: state.name, workspaceId: state.workspaceId, version: entry.version,
          packageSha256: entry.packageSha256, submitterId: s.actorId, parentWorkflowId: workflowInfo().workflowId,
          config: input.releaseConfig,
        }],
      });
      await project();
      return entry;
    });

  // Registered after startRelease: a submit buffered for a fresh run is handled at registration.
  setHandler(
    submitUpdate,
    async (s) => {
      const entry = await startRelease(s);
      // Answer once the pipeline has written its first state, so the caller reads it back at once.
      await condition(() => entry.seq >= 2);
      return entry;
    },
    { validator: (s) => void checkSubmit(s.versionId) },
  );

  // Signal handlers never throw; progress is applied in order by the main loop below.
  setHandler(releaseProgressSignal, (p) => void progress.push(p));

  async function applyProgress(p: ReleaseProgress) {
    const v = findVersion(p.versionId);
    if (!v) return;
    if (v.seq >= p.seq) return; // stale
    v.seq = p.seq;
    v.status = p.status;
    const from = state.status;
    let audit: Parameters<typeof project>[0];
    if (p.status === 'released') {
      const previous = state.liveVersionId ? findVersion(state.liveVersionId) : undefined;
      if (previous && previous.versionId !== v.versionId) {
        previous.status = 'superseded';
        // One above the release's own last write, so the superseded row is never moved back.
        const seq = (previous.seq += 1);
        await projectVersionStatus({
          versionId: previous.versionId, miniProgramId: state.miniProgramId, workspaceId: state.workspaceId, status: 'superseded', at: p.at, seq,
          audit: {
            dedupeKey: `version:${previous.versionId}:superseded`, workspaceId: state.workspaceId, subjectType: 'version', subjectId: previous.versionId,
            actorId: null, action: 'superseded', fromState: 'released', toState: 'superseded', comment: `superseded by ${v.version}`, at: p.at,
          },
        });
      }
      state.liveVersionId = v.versionId;
      state.liveVersion = v.version;
      audit = { action: 'version_live', actorId: null, from, comment: `version ${v.version} is live` };
    }
    if (terminalReleaseStatuses.includes(p.status) && state.activeVersionId === v.versionId) state.activeVersionId = null;
    await project(audit);
  }

  await mutex.run(async () => {
    if (!state.projected) {
      await project({ action: 'created', actorId: input.createdBy, from: null });
      state.projected = true;
    }
  });

  // Continue as new once the history grows long, but only between commands: an update handler
  // may be waiting for progress (submit waits for the pipeline's first write), so progress keeps
  // being applied while handlers finish, never blocked behind them.
  const readyForNewRun = () => workflowInfo().continueAsNewSuggested && allHandlersFinished() && progress.length === 0;
  for (;;) {
    await condition(() => progress.length > 0 || readyForNewRun());
    while (progress.length) {
      const p = progress.shift() as ReleaseProgress;
      await mutex.run(() => applyProgress(p));
    }
    if (readyForNewRun()) await continueAsNew<typeof miniProgramEntity>({ ...input, state });
  }
}
