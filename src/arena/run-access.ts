import { ApiKeys } from '../access/api-keys.js';
import type { Principal } from '../access/auth.js';

/** Who may see a saved run or battle, and use the models it names: the API key that made it, or the admin. */

/** The API key a run belongs to; the admin token and an open server own nothing (they see all). */
export function ownerOf(principal: Principal | null | undefined): string | null {
  return principal?.kind === 'key' ? principal.keyId : null;
}

/** A caller with an API key sees only its own runs and battles. */
export function maySee(principal: Principal | null | undefined, owner: string | null): boolean {
  return principal?.kind !== 'key' || principal.keyId === owner;
}

/** The key's model allow-list, for requests whose models are not in their body (pools, re-runs). */
export function mayUseModel(principal: Principal | null | undefined, model: string): boolean {
  return principal?.kind !== 'key' || ApiKeys.allows(principal, model);
}

export function notAllowedMessage(model: string): string {
  return `This API key is not allowed to use model '${model}'`;
}
