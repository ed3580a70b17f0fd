import type { InferResponseType } from 'hono/client';
import { writable } from 'svelte/store';
import type { ApiClient } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/**
 * A workspace's console branding (logo, favicon, About Us URL) and its domain preference.
 * The header, the tab icon and the footer read `brandings`; uploads publish there, so the
 * console shows a new logo at once.
 */

type Ws = ApiClient['workspaces'][':workspaceId'];

export type Branding = InferResponseType<Ws['branding']['$get'], 200>;
export type BrandImage = NonNullable<Branding['logo']>;
export type BrandSlot = 'logo' | 'favicon';
export type DomainPreference = InferResponseType<Ws['domains']['$get'], 200>;
export type DomainList = 'server' | 'webview';
/** One refused entry of a domain list, as the API names it (details.invalid). */
export interface DomainProblem {
  list: DomainList;
  value: string;
  reason: string;
}

/** Branding per workspace id (null: none readable, e.g. a workspace one is not a member of). */
export const brandings = writable<Record<string, Branding | null>>({});
const loading = new Map<string, Promise<Branding | null>>();

function publish(workspaceId: string, b: Branding | null) {
  brandings.update((all) => ({ ...all, [workspaceId]: b }));
}

const ws = (workspaceId: string) => ({ workspaceId: seg(workspaceId) });

export async function getBranding(workspaceId: string): Promise<Branding> {
  const b = await unwrap<Branding>(api.workspaces[':workspaceId'].branding.$get({ param: ws(workspaceId) }));
  publish(workspaceId, b);
  return b;
}

/** Loads a workspace's branding once for the console's chrome; failures leave mpdp's own. */
export function ensureBranding(workspaceId: string): Promise<Branding | null> {
  let p = loading.get(workspaceId);
  if (!p) {
    p = getBranding(workspaceId).catch(() => {
      publish(workspaceId, null);
      loading.delete(workspaceId);
      return null;
    });
    loading.set(workspaceId, p);
  }
  return p;
}

export async function uploadBrandImage(workspaceId: string, slot: BrandSlot, file: File): Promise<Branding> {
  const b = await unwrap<Branding>(api.workspaces[':workspaceId'].branding[':slot'].$put({ param: { ...ws(workspaceId), slot }, form: { file } }));
  publish(workspaceId, b);
  return b;
}

export async function removeBrandImage(workspaceId: string, slot: BrandSlot): Promise<Branding> {
  const b = await unwrap<Branding>(api.workspaces[':workspaceId'].branding[':slot'].$delete({ param: { ...ws(workspaceId), slot } }));
  publish(workspaceId, b);
  return b;
}

/** Sets (or with null, removes) the About Us URL of the footer. */
export async function setAboutUrl(workspaceId: string, url: string | null): Promise<Branding> {
  const b = await unwrap<Branding>(api.workspaces[':workspaceId']['about-url'].$put({ param: ws(workspaceId), json: { url } }));
  publish(workspaceId, b);
  return b;
}

export function getDomains(workspaceId: string): Promise<DomainPreference> {
  return unwrap<DomainPreference>(api.workspaces[':workspaceId'].domains.$get({ param: ws(workspaceId) }));
}

/** Replaces one or both lists; the API answers the normalised lists or names each bad entry. */
export function saveDomains(workspaceId: string, lists: Partial<Record<DomainList, string[]>>): Promise<DomainPreference> {
  return unwrap<DomainPreference>(api.workspaces[':workspaceId'].domains.$put({ param: ws(workspaceId), json: lists }));
}
