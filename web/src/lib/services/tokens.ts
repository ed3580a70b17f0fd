import type { InferResponseType } from 'hono/client';
import { api, unwrap } from './http';

/** The signed-in user's personal access tokens (for the mpdp CLI and CI). */

type Tokens = (typeof api)['me']['tokens'];
export type AccessToken = InferResponseType<Tokens['$get'], 200>['items'][number];
export type AccessTokenStatus = AccessToken['status'];
/** A token just made: the only answer that carries the secret itself. */
export type NewAccessToken = InferResponseType<Tokens['$post'], 201>;

/** Expiry choices offered by the console; null = never expires. */
export const expiryChoices = [
  { days: 30, label: '30 days' },
  { days: 90, label: '90 days' },
  { days: null, label: 'No expiry' },
] as const;

export async function listTokens(): Promise<AccessToken[]> {
  return (await unwrap<{ items: AccessToken[] }>(api.me.tokens.$get())).items;
}

export function createToken(name: string, expiresInDays: number | null): Promise<NewAccessToken> {
  return unwrap(api.me.tokens.$post({ json: { name, expiresInDays } }));
}

export function revokeToken(tokenId: string): Promise<void> {
  return unwrap(api.me.tokens[':tokenId'].$delete({ param: { tokenId } }));
}
