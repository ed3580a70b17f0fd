import type { UserSession } from '$lib/api/types';
import { api, unwrap } from './http';

/** The signed-in user's own sessions (browsers and devices). */

export async function listSessions(): Promise<UserSession[]> {
  return (await unwrap<{ items: UserSession[] }>(api.me.sessions.$get())).items;
}

export function endSession(sessionId: string): Promise<void> {
  return unwrap(api.me.sessions[':sessionId'].$delete({ param: { sessionId } }));
}

export function endOtherSessions(): Promise<{ ended: number }> {
  return unwrap(api.me.sessions['end-others'].$post());
}
