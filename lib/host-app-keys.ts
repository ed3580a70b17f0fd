/**
 * Host app keys: checking uploaded public keys, issuing key pairs, sealing the platform's private
 * keys at rest, and verifying requests a host app signs. node:crypto only.
 *
 * Fingerprints are SHA-256 over the key's SubjectPublicKeyInfo DER, written like OpenSSH writes
 * its fingerprints: `SHA256:` + base64 without padding. Reproduce one with
 * `openssl pkey -pubin -in key.pem -outform DER | openssl dgst -sha256 -binary | base64 | tr -d =`.
 *
 * Request signatures (verifyHostAppSignature): the app signs the canonical string
 * `${METHOD}\n${path}\n${timestamp}\n${sha256hex(body)}` with its private key:
 *   - EC P-256 keys: ECDSA with SHA-256; the signature as DER (what OpenSSL, Java, Android and
 *     iOS `ecdsaSignatureMessageX962SHA256` produce) or as raw r‖s, 64 bytes (WebCrypto);
 *   - RSA keys: RSASSA-PKCS1-v1_5 with SHA-256.
 * sent base64 in X-Mpdp-Signature, with X-Mpdp-Timestamp (ms since the epoch, within 5 minutes)
 * and optionally X-Mpdp-Key (the key's fingerprint).
 */
import {
  createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, randomBytes, sign, verify, type KeyObject,
} from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';

// ───────────── Checking public keys ─────────────

/** What the platform can issue; EC P-256 is the default. */
export const issuableAlgorithms = ['ec-p256', 'rsa-2048', 'rsa-3072'] as const;
export type IssuableAlgorithm = (typeof issuableAlgorithms)[number];

/** Smallest RSA modulus accepted, and the largest (bigger keys only cost verification time). */
export const minRsaBits = 2048;
export const maxRsaBits = 8192;
/** Longest PEM text accepted (an RSA-8192 public key is about 1.5 KB). */
export const maxPemLength = 16_384;

export type KeyErrorCode = 'invalid_key' | 'weak_key' | 'unsupported_key' | 'private_key_not_accepted';

/** A refused public key. The message never quotes the input (it may be a private key). */
export class KeyError extends Error {
  constructor(public readonly code: KeyErrorCode, message: string) {
    super(message);
  }
}

export interface CheckedKey {
  /** `SHA256:<base64 without padding>` of the SPKI DER. */
  fingerprint: string;
  /** 'EC P-256' or 'RSA-<bits>'. */
  algorithm: string;
  keyType: 'ec' | 'rsa';
  bits: number;
  /** The key re-encoded as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), whatever form was pasted. */
  publicPem: string;
  keyObject: KeyObject;
}

/** `SHA256:<base64 without padding>` over the SubjectPublicKeyInfo DER (as OpenSSH prints fingerprints). */
export function fingerprintOf(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Checks a pasted public key: PEM (SPKI "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY"), RSA of at
 * least 2048 bits or EC on P-256. Throws KeyError: private_key_not_accepted for anything private,
 * weak_key for short RSA, unsupported_key for other types and curves, invalid_key for the rest
 * (garbage, certificates, several blocks).
 */
export function checkPublicKey(text: string): CheckedKey {
  if (typeof text !== 'string' || !text.trim()) throw new KeyError('invalid_key', 'Paste the public key in PEM form (-----BEGIN PUBLIC KEY-----)');
  // Checked before anything else so a private key is never parsed further, kept or echoed.
  if (/PRIVATE KEY/i.test(text) || /PuTTY-User-Key-File/i.test(text)) {
    throw new KeyError('private_key_not_accepted', 'This is a private key: it was not stored. Paste only the public key (openssl pkey -in private.pem -pubout), and keep the private key secret');
  }
  if (text.length > maxPemLength) throw new KeyError('invalid_key', `A public key in PEM is at most ${maxPemLength} characters`);
  const blocks = [...text.matchAll(pemBlock)];
  if (!blocks.length) {
    if (/^\s*(ssh-|ecdsa-sha2-)/.test(text)) throw new KeyError('invalid_key', 'This is an OpenSSH public key; paste it in PEM form (ssh-keygen -e -m PKCS8 -f key.pub)');
    throw new KeyError('invalid_key', 'Not a PEM public key: expected -----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----');
  }
  if (blocks.length > 1) throw new KeyError('invalid_key', 'Paste one public key at a time');
  const label = blocks[0]![1]!;
  if (label === 'CERTIFICATE' || label.includes('CERTIFICATE')) {
    throw new KeyError('invalid_key', 'This is a certificate, not a public key; extract its key with openssl x509 -in cert.pem -pubkey -noout');
  }
  if (label !== 'PUBLIC KEY' && label !== 'RSA PUBLIC KEY') throw new KeyError('invalid_key', `A "${label.slice(0, 40)}" block is not a public key: expected -----BEGIN PUBLIC KEY-----`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: blocks[0]![0], format: 'pem' });
  } catch {
    throw new KeyError('invalid_key', 'The PEM block cannot be read as a public key (damaged or truncated?)');
  }
  if (key.type !== 'public') throw new KeyError('private_key_not_accepted', 'This is not a public key: it was not stored');
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < minRsaBits) throw new KeyError('weak_key', `RSA keys need at least ${minRsaBits} bits; this one has ${bits}. Generate a new key (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072)`);
    if (bits > maxRsaBits) throw new KeyError('unsupported_key', `RSA keys of more than ${maxRsaBits} bits are not supported; this one has ${bits}`);
    return { fingerprint: fingerprintOf(key), algorithm: `RSA-${bits}`, keyType: 'rsa', bits, publicPem: spkiPem(key), keyObject: key };
  }
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve !== 'prime256v1') {
      throw new KeyError('unsupported_key', `Only the EC curve P-256 (prime256v1) is supported; this key is on ${details.namedCurve ?? 'an unknown curve'}`);
    }
    return { fingerprint: fingerprintOf(key), algorithm: 'EC P-256', keyType: 'ec', bits: 256, publicPem: spkiPem(key), keyObject: key };
  }
  throw new KeyError('unsupported_key', `${String(key.asymmetricKeyType ?? 'This').toUpperCase()} keys are not supported: use RSA (2048 bits or more) or EC P-256`);
}

const spkiPem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();

// ───────────── Issuing key pairs ─────────────

export interface IssuedPair extends CheckedKey {
  /** PKCS#8 PEM. */
  privatePem: string;
}

/** A fresh key pair for a host app. */
export function generateHostAppKeyPair(algorithm: IssuableAlgorithm = 'ec-p256'): IssuedPair {
  const { publicKey, privateKey } = algorithm === 'ec-p256'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairSync('rsa', { modulusLength: algorithm === 'rsa-2048' ? 2048 : 3072 });
  const checked = checkPublicKey(spkiPem(publicKey));
  return { ...checked, privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

// ───────────── Private keys at rest ─────────────

/** Thrown when sealed material cannot be opened (another KEY_ENCRYPTION_KEY, another row, or altered). */
export class SealError extends Error {}

const sealVersion = 'v1';
const sealingKeys = new Map<string, Buffer>();

/** AES-256 key derived with HKDF-SHA256 from the configured key-encryption key. */
function sealingKey(kek: string): Buffer {
  let key = sealingKeys.get(kek);
  if (!key) {
    key = Buffer.from(hkdfSync('sha256', kek, 'mpdp', 'mpdp host app private key v1', 32));
    sealingKeys.set(kek, key);
  }
  return key;
}

/** Seals a private key PEM: `v1.<iv>.<ciphertext>.<tag>` (base64url, AES-256-GCM), bound to the key id. */
export function sealPrivateKey(privatePem: string, kek: string, keyId: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(kek), iv);
  cipher.setAAD(Buffer.from(`host-app-key:${keyId}`));
  const ct = Buffer.concat([cipher.update(privatePem, 'utf8'), cipher.final()]);
  return [sealVersion, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

export function openPrivateKey(sealed: string, kek: string, keyId: string): string {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== sealVersion) throw new SealError('the stored private key has an unknown format');
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(kek), Buffer.from(parts[1]!, 'base64url'));
    decipher.setAAD(Buffer.from(`host-app-key:${keyId}`));
    decipher.setAuthTag(Buffer.from(parts[3]!, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(parts[2]!, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new SealError('the stored private key cannot be opened (was KEY_ENCRYPTION_KEY changed?); issue a new platform key');
  }
}

// ───────────── Signing and verifying ─────────────

/** How far a request's timestamp may be from the server's clock. */
export const maxSkewMs = 5 * 60_000;

export const sha256hex = (body: string | Uint8Array) => createHash('sha256').update(body).digest('hex');

/** The text a host app signs. The method is upper-cased; the path is the request path with its query string. */
export function canonicalString(method: string, path: string, timestamp: string | number, body: string | Uint8Array): string {
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${sha256hex(body)}`;
}

/** Signs with a PEM private key the way a host app must (ECDSA P-256 / RSA PKCS#1 v1.5, SHA-256; DER for EC); base64. */
export function signCanonical(privatePem: string | KeyObject, canonical: string): string {
  return sign('sha256', Buffer.from(canonical), privatePem).toString('base64');
}

/** KeyObjects parsed from stored PEM, by fingerprint: parsing costs far more than verifying. */
const keyCache = new Map<string, KeyObject>();
const keyCacheMax = 2000;

function cachedKey(fingerprint: string, pem: string): KeyObject {
  let key = keyCache.get(fingerprint);
  if (!key) {
    key = createPublicKey(pem);
    if (keyCache.size >= keyCacheMax) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(fingerprint, key);
  }
  return key;
}

function verifyWith(key: KeyObject, canonical: string, signature: Buffer): boolean {
  try {
    const data = Buffer.from(canonical);
    if (key.asymmetricKeyType === 'ec' && signature.length === 64) return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    // RSA: PKCS#1 v1.5 is node's default padding for RSA keys.
    return verify('sha256', data, key, signature);
  } catch {
    return false;
  }
}

export type SignatureFailure = 'unknown_app' | 'app_disabled' | 'timestamp_skew' | 'signature_invalid' | 'unknown_key' | 'key_revoked' | 'key_expired';

export type SignatureResult =
  | { verified: true; keyId: string; keyFingerprint: string; keyStatus: 'active' | 'rotated' }
  | { verified: false; code: SignatureFailure; message: string; keyFingerprint?: string };

export interface SignedRequest {
  appId: string;
  method: string;
  /** The request path as sent, with its query string. */
  path: string;
  /** X-Mpdp-Timestamp: ms since the epoch, as sent. */
  timestamp: string | number | null | undefined;
  body: string | Uint8Array;
  /** X-Mpdp-Signature: base64. */
  signature: string | null | undefined;
  /** X-Mpdp-Key: the fingerprint of the key used; optional. */
  keyFingerprint?: string | null;
  now?: Date;
}

interface KeyRow {
  app_status: string;
  id: string | null;
  fingerprint: string | null;
  public_pem: string | null;
  status: 'active' | 'rotated' | 'revoked' | null;
  overlap_ends_at: Date | null;
  revoked_at: Date | null;
}

/**
 * Verifies a request a host app signed with one of its app keys (uploaded or issued as an app
 * signing key; platform keys sign the platform's messages and never verify the app's). A key
 * verifies while active, and once rotated until its overlap ends; a revoked key never. One
 * indexed query per call (so a revocation counts at once); parsed keys are cached by fingerprint.
 */
export async function verifyHostAppSignature(sequelize: Sequelize, req: SignedRequest): Promise<SignatureResult> {
  const now = req.now ?? new Date();
  const rows = await sequelize.query<KeyRow>(
    `SELECT a.status AS app_status, k.id, k.fingerprint, k.public_pem, k.status, k.overlap_ends_at, k.revoked_at
     FROM host_apps a LEFT JOIN host_app_keys k ON k.host_app_id = a.id AND k.purpose = 'app'
     WHERE a.id = :appId`,
    { replacements: { appId: req.appId }, type: QueryTypes.SELECT },
  );
  if (!rows.length) return { verified: false, code: 'unknown_app', message: 'No host app has this id' };
  if (rows[0]!.app_status !== 'active') return { verified: false, code: 'app_disabled', message: 'This host app is disabled' };
  const ts = typeof req.timestamp === 'number' ? String(req.timestamp) : (req.timestamp ?? '').trim();
  if (!/^\d{1,16}$/.test(ts)) return { verified: false, code: 'timestamp_skew', message: 'X-Mpdp-Timestamp must be the signing time in milliseconds since the epoch' };
  if (Math.abs(now.getTime() - Number(ts)) > maxSkewMs) {
    return { verified: false, code: 'timestamp_skew', message: `The timestamp is more than ${maxSkewMs / 60_000} minutes from the server's clock` };
  }
  const signature = Buffer.from((req.signature ?? '').trim(), 'base64');
  if (!signature.length) return { verified: false, code: 'signature_invalid', message: 'X-Mpdp-Signature is missing or not base64' };

  const keys = rows.filter((r): r is KeyRow & { id: string; fingerprint: string; public_pem: string } => r.id !== null);
  const usable = (k: KeyRow) => k.status === 'active' || (k.status === 'rotated' && k.overlap_ends_at !== null && k.overlap_ends_at.getTime() > now.getTime());
  const wanted = req.keyFingerprint?.trim();
  const candidates = wanted ? keys.filter((k) => k.fingerprint === wanted) : keys;
  if (wanted && !candidates.length) return { verified: false, code: 'unknown_key', message: 'This host app has no key with that fingerprint', keyFingerprint: wanted };
  const canonical = canonicalString(req.method, req.path, ts, req.body);
  // Keys that verify now first (the active one before rotated ones): the common case checks one signature.
  const ordered = [...candidates].sort((a, b) => Number(usable(b)) - Number(usable(a)) || Number(b.status === 'active') - Number(a.status === 'active'));
  for (const k of ordered) {
    if (!verifyWith(cachedKey(k.fingerprint, k.public_pem), canonical, signature)) continue;
    if (usable(k)) return { verified: true, keyId: k.id, keyFingerprint: k.fingerprint, keyStatus: k.status as 'active' | 'rotated' };
    if (k.status === 'revoked') return { verified: false, code: 'key_revoked', message: 'The key that made this signature was revoked', keyFingerprint: k.fingerprint };
    return { verified: false, code: 'key_expired', message: `The key that made this signature was rotated and stopped verifying at ${k.overlap_ends_at?.toISOString()}`, keyFingerprint: k.fingerprint };
  }
  return { verified: false, code: 'signature_invalid', message: keys.length ? 'The signature does not verify with any key of this host app' : 'This host app has no key to verify with' };
}

/** Signs a message as the platform with an app's active platform key (the app verifies it with the public part). */
export async function signAsPlatform(sequelize: Sequelize, kek: string, appId: string, message: string | Uint8Array): Promise<{ keyFingerprint: string; signature: string } | null> {
  const [row] = await sequelize.query<{ id: string; fingerprint: string; private_sealed: string }>(
    `SELECT id, fingerprint, private_sealed FROM host_app_keys WHERE host_app_id = :appId AND purpose = 'platform' AND status = 'active' AND private_sealed IS NOT NULL`,
    { replacements: { appId }, type: QueryTypes.SELECT },
  );
  if (!row) return null;
  const key = createPrivateKey(openPrivateKey(row.private_sealed, kek, row.id));
  return { keyFingerprint: row.fingerprint, signature: sign('sha256', typeof message === 'string' ? Buffer.from(message) : message, key).toString('base64') };
}
