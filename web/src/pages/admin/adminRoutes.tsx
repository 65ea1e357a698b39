import type { Route } from '../../route.js';
import { ApiKeysPage } from './ApiKeysPage.js';
import { PlaygroundPage } from './PlaygroundPage.js';
import { UsagePage } from './UsagePage.js';

/** The API-management pages (the management API); `/admin` alone opens the keys. */
export const adminRoutes: Route[] = [
  { pattern: '/admin/api-keys', label: 'API keys', render: () => <ApiKeysPage /> },
  { pattern: '/admin/usage', label: 'Usage', render: () => <UsagePage /> },
  { pattern: '/admin/playground', label: 'Playground', render: () => <PlaygroundPage /> },
  { pattern: '/admin', render: () => <ApiKeysPage /> },
];
