import crypto from 'node:crypto';
import type { Scope } from '../domain/access.js';

/**
 * Who is calling. `open` is the unauthenticated caller of a server with no token and no keys (it binds
 * to 127.0.0.1 by default; docs/api-contract.md, access); `admin` holds WEB_CHAT_TOKEN; `key` holds an API key.
 */
export type Principal =
  | { kind: 'open' }
  | { kind: 'admin' }
  | { kind: 'key'; keyId: string; name: string; tier: string; rpm: number; tpm?: number; models?: string[]; scopes: Scope[] };

/**
 * What each route needs: nothing; any principal allowed to use models; model management (loading
 * and unloading models other clients may be using: the admin, or a key with the `manage` scope);
 * or the admin.
 */
export type AccessLevel = 'public' | 'model' | 'manage' | 'admin';


/**
 * Whether the caller may change which models are loaded for everyone: the admin, the caller of an
 * open server, or a key given the `manage` scope.
 */
export function mayManageModels(principal: Principal | undefined): boolean {
  return principal?.kind !== 'key' || principal.scopes.includes('manage');
}

/** The API-key side of authentication, implemented by the key store. */
export interface KeyVerifier {
  /** The keyed hash of a secret: 32 bytes, the same for the same secret. */
  digest(secret: string): Buffer;
  /** The key's principal, or why it is refused; `digest` is the secret's, when already made. */
  verify(secret: string, digest?: Buffer): Promise<Extract<Principal, { kind: 'key' }> | { refused: string }>;
  /** Whether any key was ever created: with none and no admin token, the server is open. */
  anyKeys(): Promise<boolean>;
}

export const MANAGE_REFUSED = 'Loading and unloading models needs the admin token or an API key with the manage scope';

export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; status: 401 | 403; message: string; code: string };

function digest(value: string): Buffer {
  return crypto.hash('sha256', value, 'buffer');
}

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export class Authenticator {
  /** The admin token's digest: by SHA-256, then by the keys' own hash once there are keys. */
  private adminDigest?: Buffer;
  /**
   * The last token each connection sent, with its digest: a keep-alive client sends the same token on
   * every request, and the keyed hash was the largest part of authenticating it. Only the digest is
   * remembered; the key behind it is looked up again on every request, so a revoked key stops at once.
   */
  private lastOnConnection = new WeakMap<object, { token: Buffer; digest: Buffer }>();

  constructor(
    private readonly adminToken: string | undefined,
    private keys?: KeyVerifier,
  ) {
    this.adminDigest = adminToken === undefined ? undefined : digest(adminToken);
  }

  get hasAdminToken(): boolean {
    return this.adminDigest !== undefined;
  }

  useKeys(keys: KeyVerifier): void {
    this.keys = keys;
    // One digest per request serves both checks: the token is hashed as keys are, and the admin
    // token was hashed the same way here.
    if (this.adminToken !== undefined) this.adminDigest = keys.digest(this.adminToken);
    this.lastOnConnection = new WeakMap();
  }

  /** Digests of equal length compared in constant time: neither the token's content nor its length leaks through timing. */
  private isAdmin(tokenDigest: Buffer): boolean {
    return this.adminDigest !== undefined && crypto.timingSafeEqual(tokenDigest, this.adminDigest);
  }

  /**
   * The digest of a token, remembered per connection. The token is compared with the one remembered in
   * constant time: a proxy in front of the gateway may carry several clients' requests on one connection.
   */
  private tokenDigest(token: string, connection: object): Buffer {
    const sent = Buffer.from(token);
    const last = this.lastOnConnection.get(connection);
    if (last && last.token.length === sent.length && crypto.timingSafeEqual(last.token, sent)) return last.digest;
    const made = this.keys ? this.keys.digest(token) : digest(token);
    this.lastOnConnection.set(connection, { token: sent, digest: made });
    return made;
  }

  /** `connection` (the request's socket) lets a keep-alive client's token be hashed once. */
  async authenticate(authorization: string | undefined, level: AccessLevel, connection: object): Promise<AuthOutcome> {
    if (level === 'public') return { ok: true, principal: { kind: 'open' } };
    const token = bearerToken(authorization);
    const locked = this.hasAdminToken || (await this.keys?.anyKeys()) === true;
    if (!locked) return { ok: true, principal: { kind: 'open' } };
    if (token === undefined) {
      return { ok: false, status: 401, message: 'Missing or invalid Authorization header', code: 'missing_api_key' };
    }
    const tokenDigest = this.tokenDigest(token, connection);
    if (this.isAdmin(tokenDigest)) return { ok: true, principal: { kind: 'admin' } };
    if (this.keys) {
      const verdict = await this.keys.verify(token, tokenDigest);
      if ('refused' in verdict) return { ok: false, status: 401, message: verdict.refused, code: 'invalid_api_key' };
      if (level === 'admin') {
        return { ok: false, status: 403, message: 'This route needs the admin token', code: 'insufficient_permissions' };
      }
      if (level === 'manage' && !mayManageModels(verdict)) {
        return { ok: false, status: 403, message: MANAGE_REFUSED, code: 'insufficient_permissions' };
      }
      return { ok: true, principal: verdict };
    }
    return { ok: false, status: 401, message: 'Invalid authorization token', code: 'invalid_api_key' };
  }
}
