import { apiFetch, apiJson } from '../../api.js';
import type { KeyView, Scope, Tier, UsageTotals } from '../../../../src/domain/access.js';
import type { ModelDetails, ModelParameters } from '../../components/arena-types.js';

/**
 * The admin API as the admin pages use it: one module holds its shapes, so the pages never
 * spell a route or a field name twice.
 */

// The shapes come from the server's own types (erased from the bundle), so the two cannot drift.
export type { Tier } from '../../../../src/domain/access.js';
export type { UsageTotals };


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
  /** `manage`: the key may load and unload models. */
  scopes?: Scope[];
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

/**
 * A model as the catalog lists it: every served model, inactive ones too, and the entries of models
 * no backend serves now (`available: false`, so there is nothing to load or delete).
 */
export interface CatalogModel extends ModelDetails {
  available: boolean;
}

/** What an admin sets; `parameters` replaces the whole set of defaults. */
export interface CatalogChange {
  description: string;
  is_active: boolean;
  parameters: ModelParameters;
}

const catalogPath = (name: string) => `/api/admin/models/${encodeURIComponent(name)}`;

export const listCatalog = () => apiJson<{ models: CatalogModel[] }>('/api/admin/models').then((r) => r.models);

export const saveCatalogEntry = (name: string, change: CatalogChange) => apiFetch(catalogPath(name), { method: 'PUT', body: JSON.stringify(change) }).then(() => undefined);

/** Back to the defaults: active, no description, no default parameters. */
export const resetCatalogEntry = (name: string) => apiFetch(catalogPath(name), { method: 'DELETE' }).then(() => undefined);

export function totalTokens(t: UsageTotals): number {
  return t.prompt_tokens + t.completion_tokens;
}
