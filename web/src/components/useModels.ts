import { useCallback, useEffect, useRef, useState } from 'react';
import { apiJson, ApiError } from '../api.js';
import { listCatalog, type CatalogModel } from '../pages/admin/adminApi.js';
import type { ModelDetails } from './arena-types.js';

const fetchModels = () => apiJson<{ models: ModelDetails[] }>('/api/models?details=true').then((body) => body.models);

/** A list fetched on mount, reloadable after a change; the last error is kept until a load succeeds. */
function useList<T>(load: () => Promise<T[]>) {
  const [models, setModels] = useState<T[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      setModels(await load());
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [load]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { models, error, reload };
}

/** Every model that may be used (inactive ones are hidden), with its details, reloadable after a change. */
export function useModels() {
  return useList(fetchModels);
}

/**
 * The Models page's list. An admin gets the catalog's, which also holds inactive models (so they can
 * be switched back on) and entries of models not served now. Whoever the admin API refuses (an API
 * key, 403; no or a stale token, 401) gets the public list and no catalog controls; the refusal is
 * remembered, so reloads do not ask the admin API again.
 */
export function useModelList() {
  const [admin, setAdmin] = useState<boolean | null>(null);
  const refused = useRef(false);
  const load = useCallback(async (): Promise<CatalogModel[]> => {
    if (!refused.current) {
      try {
        const models = await listCatalog();
        setAdmin(true);
        return models;
      } catch (e) {
        if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403)) throw e;
        refused.current = true;
      }
    }
    setAdmin(false);
    // The public list holds served models only.
    return (await fetchModels()).map((model) => ({ ...model, available: true }));
  }, []);
  return { ...useList(load), admin };
}
