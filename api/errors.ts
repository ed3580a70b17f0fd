import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { AppError } from '../lib/errors.js';
import { FailureType } from '../workflows/contracts/errors.js';
import type { AppEnv } from './deps.js';

const failureStatus: Record<string, 403 | 404 | 409 | 400> = {
  [FailureType.wrongState]: 409,
  [FailureType.conflict]: 409,
  [FailureType.forbiddenActor]: 403,
  [FailureType.notFound]: 404,
  comment_required: 400,
  already_approved: 409,
  reason_required: 400,
  invalid_plan: 400,
  not_a_narrowing: 400,
  own_change: 403,
  not_proposer: 403,
  validation_failed: 400,
};

/** Turns a Temporal update refusal (validator or handler) into the domain error it stands for. */
export function fromTemporal(err: unknown): AppError | null {
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const f = err.cause;
    const status = failureStatus[f.type ?? ''];
    if (status) {
      const details = (f.details?.[0] ?? undefined) as Record<string, unknown> | undefined;
      return new AppError(status, f.type as string, f.message, details);
    }
  }
  if (err instanceof WorkflowNotFoundError) return new AppError(404, 'not_found', 'no such process');
  return null;
}

/** The one error funnel: domain errors become 4xx with a code; anything else a 500 with only the request id. */
export function onError(err: Error, c: Context<AppEnv>) {
  const requestId = c.get('requestId') ?? 'unknown';
  const domain = err instanceof AppError ? err : fromTemporal(err);
  if (domain) {
    // The client may still be sending a refused body: close the connection rather than reuse it.
    if (domain.status === 413) c.header('Connection', 'close');
    if (domain.status === 429 && typeof domain.details?.retryAfterSeconds === 'number') c.header('Retry-After', String(domain.details.retryAfterSeconds));
    return c.json({ error: { code: domain.code, message: domain.message, details: domain.details ?? {}, requestId } }, domain.status);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const code = status === 413 ? 'payload_too_large' : status === 401 ? 'unauthenticated' : 'bad_request';
    return c.json({ error: { code, message: err.message || 'Bad request', details: {}, requestId } }, status);
  }
  const unavailable = /ECONNREFUSED|Connection refused|UNAVAILABLE|SequelizeConnection/i.test(`${err.name} ${err.message}`);
  console.error(`[api] ${requestId} ${c.req.method} ${c.req.path}`, err);
  if (unavailable) return c.json({ error: { code: 'unavailable', message: 'A dependency is down; try again shortly', details: {}, requestId } }, 503);
  return c.json({ error: { code: 'internal', message: `Internal error (request ${requestId})`, details: {}, requestId } }, 500);
}
