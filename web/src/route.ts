import type { ReactElement } from 'react';

/** One page of the app: its path pattern (`:name` segments become params), its menu label, its view. */
export interface Route {
  pattern: string;
  label?: string;
  render: (params: Record<string, string>) => ReactElement;
}
