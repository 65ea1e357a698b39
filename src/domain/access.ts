/**
 * API keys as the admin pages and the admin API show them: rights, tiers, the view of a key, and
 * usage totals.
 */

/** Rights an admin may add to an API key beyond using models. */
export const SCOPES = ['manage'] as const;
export type Scope = (typeof SCOPES)[number];

/** A key as the admin API shows it: never its secret. */
export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  tier: string;
  rpm: number;
  tpm: number | null;
  models: string[] | null;
  /** Rights beyond using models: `manage` loads and unloads models. */
  scopes: Scope[];
  expires_at: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  status: 'active' | 'expired' | 'revoked';
}

export type Tier = 'standard' | 'premium';

export interface UsageTotals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
}
