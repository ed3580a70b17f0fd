import type { DevMail, DevMailSummary } from '$lib/api/types';
import { ApiError } from '$lib/utils/errors';
import { api, unwrap } from './http';

/** The local mail catcher's inbox (development and test modes; the API answers 404 in production). */

export async function listDevMail(): Promise<DevMailSummary[]> {
  return (await unwrap<{ items: DevMailSummary[] }>(api.dev.mail.$get())).items;
}

export function getDevMail(mailId: string): Promise<DevMail> {
  return unwrap(api.dev.mail[':mailId'].$get({ param: { mailId } }));
}

let available: Promise<boolean> | null = null;
/** Whether this server has a dev mailbox (asked once per page load). */
export function devMailboxAvailable(): Promise<boolean> {
  available ??= listDevMail().then(
    () => true,
    (err) => (err instanceof ApiError && err.status === 404 ? false : Promise.reject(err)),
  ).catch(() => false);
  return available;
}
