import { useCallback, useEffect, useState } from 'react';
import { apiJson } from '../api.js';
import type { ModelDetails } from './arena-types.js';

/** Every model with its details, reloadable after a load, unload, pull or delete. */
export function useModels() {
  const [models, setModels] = useState<ModelDetails[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      const body = await apiJson<{ models: ModelDetails[] }>('/api/models?details=true');
      setModels(body.models);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { models, error, reload };
}
