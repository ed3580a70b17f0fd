import { createHash } from 'node:crypto';

/**
 * PLACEHOLDER (issue 7 scaffolding; the crash helper replaces the body, keeping the signature):
 * the group fingerprint of an error or crash from its message and stack.
 */
export function fingerprintOf(message: string, stack: string | null): string {
  return createHash('sha256').update(`${message}\n${stack ?? ''}`).digest('hex').slice(0, 32);
}
