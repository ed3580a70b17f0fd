import { randomBytes } from 'node:crypto';

/** Opaque, time-ordered, unguessable ids with a type prefix: mp_…, ver_…, usr_…, ws_…. */
export function newId(prefix: string): string {
  const time = Date.now().toString(36).padStart(9, '0');
  return `${prefix}_${time}${randomBytes(10).toString('hex')}`;
}
