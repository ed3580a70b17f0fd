import { api, unwrap } from './http';

/** Forgotten passwords: ask for a mailed link, then set a new password with its token. */

export async function requestPasswordReset(email: string): Promise<void> {
  await unwrap(api.auth['password-reset'].$post({ json: { email } }));
}

export async function confirmPasswordReset(token: string, password: string): Promise<void> {
  await unwrap(api.auth['password-reset'].confirm.$post({ json: { token, password } }));
}
