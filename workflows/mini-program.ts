import {
  ApplicationFailure, ParentClosePolicy, allHandlersFinished, condition, continueAsNew, getExternalWorkflowHandle, proxyActivities, setHandler, startChild, workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { FailureType } from './contracts/errors.js';
import {
  miniProgramStatusQuery, removeUpdate, rollbackUpdate, submitUpdate, syncUpdate, takeOfflineUpdate, uploadVersionUpdate,
  type LifecycleRequest, type MiniProgramInput, type MiniProgramState, type MiniProgramStatus, type PipelineStarted, type RollbackInput, type SubmitInput,
  type UploadVersionInput, type VersionEntry,
} from './contracts/mini-program.js';
import {
  offlineWorkflowId, releaseProgressSignal, releaseWorkflowId, rollbackWorkflowId, rolloutStatuses, supersedeSignal, terminalReleaseStatuses,
  type ReleaseInput, type ReleaseProgress,
} from './contracts/release.js';
import { MiniProgramIdKey, ReleaseStateKey, WorkspaceIdKey } from './contracts/search-attributes.js';
import { Mutex } from './lib/mutex.js';
import { projection } from './profiles.js';
import { releasePipeline } from './release.js';

const { projectMiniProgram, projectNewVersion, projectVersionStatus } = proxyActivities<Activities>(projection);

function statusOf(s: MiniProgramState): MiniProgramStatus {
  if (s.removed) return 'removed';
  if (s.offline) return 'offline';
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
    // The row needs the summary, not the version list: a long list in every projection would make
    // each history grow with the square of the versions (and continue as new every few uploads).
    const { versions, ...summary } = state;
    await projectMiniProgram({
      state: { ...summary, versions: [] }, versionCount: versions.length, at,
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
      const entry: VersionEntry = { versionId: u.versionId, version: u.version, status: 'uploaded', uploadedBy: u.actorId, packageSha256: u.packageSha256, seq: 1, wasLive: false };
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

  /** The pipeline holding the lane, if any (state recorded before kinds only knows the version). */
  const activePipeline = () => state.activePipelineId ?? (state.activeVersionId ? releaseWorkflowId(state.activeVersionId) : null);
  /** A release whose rollout is in progress may be taken over by a hotfix or a rollback. */
  const takeoverable = () => {
    const active = state.activeVersionId ? findVersion(state.activeVersionId) : undefined;
    return !!active && activePipeline() === releaseWorkflowId(active.versionId) && rolloutStatuses.includes(active.status as never);
  };
  const laneBusy = (what: string) => {
    const active = state.activeVersionId ? findVersion(state.activeVersionId) : undefined;
    const holder = active ? `version ${active.version} is ${active.status.replace('_', ' ')}` : 'another request is in progress';
    return ApplicationFailure.create({
      type: FailureType.wrongState, message: `${holder} in the release lane; ${what}`,
      details: [{ activeVersionId: state.activeVersionId ?? null, activePipelineId: activePipeline() }], nonRetryable: true,
    });
  };
  const checkLive = () => {
    if (state.removed) throw ApplicationFailure.create({ type: FailureType.wrongState, message: 'this mini program was removed', details: [{ status: 'removed' }], nonRetryable: true });
  };

  const checkSubmit = (versionId: string, hotfix = false) => {
    checkLive();
    const v = findVersion(versionId);
    if (!v) throw ApplicationFailure.create({ type: FailureType.notFound, message: 'version not found', nonRetryable: true });
    if (v.status !== 'uploaded') {
      throw ApplicationFailure.create({ type: FailureType.wrongState, message: `version ${v.version} is ${v.status.replace('_', ' ')}, only an uploaded version can be submitted`, details: [{ status: v.status }], nonRetryable: true });
    }
    if (activePipeline() && !(hotfix && takeoverable())) {
      throw laneBusy(hotfix ? 'a hotfix can take over a rollout in progress only; withdraw it or wait for it to finish' : 'withdraw it or wait for it to finish (or submit a hotfix to take over a rollout in progress)');
    }
    return v;
  };

  /** Tells the pipeline in the lane that another took it over (its rollout goes back to the live version). */
  async function supersedeActive(byPipelineId: string, byVersion: string, actorId: string) {
    const holder = activePipeline();
    if (!holder || holder === byPipelineId) return;
    await getExternalWorkflowHandle(holder).signal(supersedeSignal, { byPipelineId, byVersion, actorId });
  }

  const startPipeline = async (workflowId: string, args: ReleaseInput) => {
    state.epoch = (state.epoch ?? 0) + 1;
    // ABANDON: a pipeline must outlive this run when the entity continues as new.
    await startChild(releasePipeline, {
      workflowId,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: WorkspaceIdKey, value: state.workspaceId },
        { key: MiniProgramIdKey, value: state.miniProgramId },
        { key: ReleaseStateKey, value: 'validating' },
      ],
      args: [{ ...args, epoch: state.epoch }],
    });
  };

  const startRelease = (s: SubmitInput) =>
    mutex.run(async () => {
      const v = findVersion(s.versionId);
      if (v && v.status !== 'uploaded' && state.activeVersionId === v.versionId) return v; // the same submit retried
      checkSubmit(s.versionId, s.hotfix);
      const entry = v as VersionEntry;
      const pipelineId = releaseWorkflowId(entry.versionId);
      if (s.hotfix && activePipeline()) await supersedeActive(pipelineId, entry.version, s.actorId);
      entry.status = 'validating';
      state.activeVersionId = entry.versionId;
      state.activePipelineId = pipelineId;
      await startPipeline(pipelineId, {
        versionId: entry.versionId, miniProgramId: state.miniProgramId, miniProgramName: state.name, workspaceId: state.workspaceId, version: entry.version,
        packageSha256: entry.packageSha256, submitterId: s.actorId, parentWorkflowId: workflowInfo().workflowId,
        config: s.config ?? input.releaseConfig, policy: s.policy, hotfix: !!s.hotfix, baselineVersionId: state.liveVersionId, kind: 'release',
      });
      await project();
      return entry;
    });

  const checkRollback = (r: RollbackInput) => {
    checkLive();
    if (state.activePipelineId === rollbackWorkflowId(r.requestId)) return; // the same request retried
    const target = findVersion(r.targetVersionId);
    if (!target) throw ApplicationFailure.create({ type: FailureType.notFound, message: 'version not found', nonRetryable: true });
    // Entries recorded before wasLive existed: only a once-live version was ever superseded.
    if (!(target.wasLive ?? ['released', 'superseded'].includes(target.status))) throw ApplicationFailure.create({ type: FailureType.wrongState, message: `version ${target.version} was never live; a rollback returns to a version that was`, details: [{ status: target.status }], nonRetryable: true });
    if (target.versionId === state.liveVersionId && !state.offline) throw ApplicationFailure.create({ type: FailureType.wrongState, message: `version ${target.version} is the live version already`, details: [{ status: target.status }], nonRetryable: true });
    if (activePipeline() && !takeoverable()) throw laneBusy('a rollback can take over a rollout in progress only; withdraw or wait for the other request');
  };
  setHandler(
    rollbackUpdate,
    (r) => mutex.run(async (): Promise<PipelineStarted> => {
      const pipelineId = rollbackWorkflowId(r.requestId);
      if (state.activePipelineId === pipelineId) return { pipelineId, kind: 'rollback' };
      checkRollback(r);
      const target = findVersion(r.targetVersionId)!;
      if (activePipeline()) await supersedeActive(pipelineId, `a rollback to ${target.version}`, r.actorId);
      state.activeVersionId = null;
      state.activePipelineId = pipelineId;
      await startPipeline(pipelineId, {
        kind: 'rollback', requestId: r.requestId, versionId: target.versionId, miniProgramId: state.miniProgramId, miniProgramName: state.name,
        workspaceId: state.workspaceId, version: target.version, packageSha256: target.packageSha256, submitterId: r.actorId,
        parentWorkflowId: workflowInfo().workflowId, config: r.config, policy: r.policy, reason: r.reason,
        baselineVersionId: state.liveVersionId, baseSeq: target.seq + 1,
      });
      await project({ action: 'rollback_requested', actorId: r.actorId, from: state.status, comment: `to ${target.version}: ${r.reason}` });
      return { pipelineId, kind: 'rollback' };
    }),
    { validator: checkRollback },
  );

  const checkOffline = (r: LifecycleRequest) => {
    checkLive();
    if (state.activePipelineId === offlineWorkflowId(r.requestId)) return;
    if (state.offline) throw ApplicationFailure.create({ type: FailureType.wrongState, message: 'this mini program is offline already', details: [{ status: 'offline' }], nonRetryable: true });
    if (!state.liveVersionId) throw ApplicationFailure.create({ type: FailureType.wrongState, message: 'nothing is live to take offline', details: [{ status: state.status }], nonRetryable: true });
    if (activePipeline()) throw laneBusy('withdraw or abort it first');
  };
  setHandler(
    takeOfflineUpdate,
    (r) => mutex.run(async (): Promise<PipelineStarted> => {
      const pipelineId = offlineWorkflowId(r.requestId);
      if (state.activePipelineId === pipelineId) return { pipelineId, kind: 'offline' };
      checkOffline(r);
      state.activePipelineId = pipelineId;
      await startPipeline(pipelineId, {
        kind: 'offline', requestId: r.requestId, versionId: state.liveVersionId!, miniProgramId: state.miniProgramId, miniProgramName: state.name,
        workspaceId: state.workspaceId, version: state.liveVersion!, packageSha256: '', submitterId: r.actorId, parentWorkflowId: workflowInfo().workflowId,
        config: r.config, policy: r.policy, reason: r.reason, baselineVersionId: state.liveVersionId,
      });
      await project({ action: 'offline_requested', actorId: r.actorId, from: state.status, comment: r.reason });
      return { pipelineId, kind: 'offline' };
    }),
    { validator: checkOffline },
  );

  const checkRemove = (_r?: { actorId: string; reason?: string }) => {
    if (state.removed) return;
    if (!state.offline) throw ApplicationFailure.create({ type: FailureType.wrongState, message: 'take the mini program offline before removing it', details: [{ status: state.status }], nonRetryable: true });
    if (activePipeline()) throw laneBusy('wait for it to finish');
  };
  setHandler(
    removeUpdate,
    (r) => mutex.run(async (): Promise<MiniProgramState> => {
      if (state.removed) return state;
      checkRemove();
      state.removed = true;
      const from = state.status;
      await project({ action: 'removed', actorId: r.actorId, from, comment: r.reason });
      return state;
    }),
    { validator: checkRemove },
  );

  // Registered after startRelease: a submit buffered for a fresh run is handled at registration.
  setHandler(
    submitUpdate,
    async (s) => {
      const entry = await startRelease(s);
      // Answer once the pipeline has written its first state, so the caller reads it back at once.
      await condition(() => entry.seq >= 2);
      return entry;
    },
    { validator: (s) => void checkSubmit(s.versionId, s.hotfix) },
  );

  // Signal handlers never throw; progress is applied in order by the main loop below.
  setHandler(releaseProgressSignal, (p) => void progress.push(p));

  /** Makes a version the live one; the one live before is superseded. */
  async function goLive(v: VersionEntry, at: string) {
    const previous = state.liveVersionId ? findVersion(state.liveVersionId) : undefined;
    if (previous && previous.versionId !== v.versionId) {
      previous.status = 'superseded';
      // One above the release's own last write, so the superseded row is never moved back.
      const seq = (previous.seq += 1);
      await projectVersionStatus({
        versionId: previous.versionId, miniProgramId: state.miniProgramId, workspaceId: state.workspaceId, status: 'superseded', at, seq,
        audit: {
          dedupeKey: `version:${previous.versionId}:superseded:${seq}`, workspaceId: state.workspaceId, subjectType: 'version', subjectId: previous.versionId,
          actorId: null, action: 'superseded', fromState: 'released', toState: 'superseded', comment: `superseded by ${v.version}`, at,
        },
      });
    }
    v.wasLive = true;
    state.liveVersionId = v.versionId;
    state.liveVersion = v.version;
    if (state.offline) state.offline = false;
  }

  async function applyProgress(p: ReleaseProgress) {
    const v = findVersion(p.versionId);
    if (!v) return;
    const kind = p.kind ?? 'release';
    const from = state.status;
    let audit: Parameters<typeof project>[0];
    if (kind === 'release') {
      if (v.seq >= p.seq) return; // stale
      v.seq = p.seq;
      v.status = p.status;
      if (p.status === 'released') {
        await goLive(v, p.at);
        audit = { action: 'version_live', actorId: null, from, comment: `version ${v.version} is live` };
      }
    } else if (p.status === 'released') {
      // A rollback: the target is live again.
      v.seq = Math.max(v.seq, p.seq);
      v.status = 'released';
      await goLive(v, p.at);
      audit = { action: 'rolled_back', actorId: null, from, comment: `back to version ${v.version}` };
    } else if (p.status === 'offline') {
      state.offline = true;
      audit = { action: 'taken_offline', actorId: null, from, comment: 'the mini program is offline' };
    }
    if (terminalReleaseStatuses.includes(p.status)) {
      if (kind === 'release' && state.activeVersionId === v.versionId) state.activeVersionId = null;
      const pipelineId = p.pipelineId ?? releaseWorkflowId(v.versionId); // (progress recorded before kinds: a release)
      if (state.activePipelineId === pipelineId) {
        state.activePipelineId = null;
        if (kind === 'release') state.activeVersionId = null;
      }
    } else if (kind !== 'release') {
      return; // a rollback or offline request's steps do not change the entity
    }
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
