import { AppError } from '../lib/errors.js';

/**
 * Keyset paging for lists ordered by (time DESC, id DESC): the cursor is the last row's time and id,
 * opaque to clients. The time is kept as the database gave it (text), so microseconds survive.
 */
export const encodeCursor = (at: Date | string, id: string) =>
  Buffer.from(JSON.stringify([at instanceof Date ? at.toISOString() : at, id])).toString('base64url');

export function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' && !Number.isNaN(Date.parse(v[0]))) return [v[0], v[1]];
  } catch { /* fall through */ }
  throw new AppError(400, 'invalid_cursor', 'The cursor is not one this API issued');
}
