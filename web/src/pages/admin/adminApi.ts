import { apiFetch, apiJson } from '../../api.js';
import type { KeyView, Tier } from '../../../../src/core/api-keys.js';
import type { UsageTotals } from '../../../../src/store/api-keys.js';

/**
 * The admin API (issue 5) as the admin pages use it: one module holds its shapes, so the pages never
 * spell a route or a field name twice.
 */

// The shapes come from the server's own types (erased from the bundle), so the two cannot drift.
export type { Tier } from '../../../../src/core/api-keys.js';
export type { UsageTotals };

export type KeyStatus = KeyView['status'];

/** A key as listed: everything but the secret, which the server keeps only as a hash. */
export interface ApiKey extends Omit<KeyView, 'tier'> {
  tier: Tier;
  /** All time. */
  usage: UsageTotals;
}

/** Creating or rotating answers the secret, once. */
export interface IssuedKey extends Omit<ApiKey, 'last_used_at' | 'revoked_at' | 'status' | 'usage'> {
  key: string;
}

export interface NewKey {
  name: string;
  tier: Tier;
  rpm?: number;
  tpm?: number;
  models?: string[];
  expires_at?: string;
}

export const listKeys = () => apiJson<{ keys: ApiKey[] }>('/api/admin/keys').then((r) => r.keys);

export const createKey = (key: NewKey) => apiJson<IssuedKey>('/api/admin/keys', { method: 'POST', body: JSON.stringify(key) });

export const revokeKey = (id: string) => apiFetch(`/api/admin/keys/${encodeURIComponent(id)}`, { method: 'DELETE' }).then(() => undefined);

export const rotateKey = (id: string) => apiJson<IssuedKey>(`/api/admin/keys/${encodeURIComponent(id)}/rotate`, { method: 'POST' });

export interface UsageReport {
  from: string | null;
  to: string | null;
  interval: 'day' | 'hour';
  totals: UsageTotals;
  by_key: (UsageTotals & { key_id: string | null; name: string | null; prefix: string | null })[];
  by_model: (UsageTotals & { model: string | null })[];
  by_day: (UsageTotals & { day: string })[];
  series_by_model: (UsageTotals & { period: string; model: string | null })[];
  series_by_key: (UsageTotals & { period: string; key_id: string | null })[];
}

/** `from` inclusive, `to` inclusive of its whole day (dates as YYYY-MM-DD). */
export const fetchUsage = (range: { from?: string; to?: string } = {}) => {
  const query = new URLSearchParams({ interval: 'day', ...range });
  return apiJson<UsageReport>(`/api/admin/usage?${query}`);
};

export const listModels = () => apiJson<{ models: string[] }>('/api/models').then((r) => r.models);

export function totalTokens(t: UsageTotals): number {
  return t.prompt_tokens + t.completion_tokens;
}
