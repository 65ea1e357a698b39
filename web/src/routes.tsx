import type { Route } from './route.js';
import { adminRoutes } from './pages/admin/adminRoutes.js';
import { BattlePage } from './pages/BattlePage.js';
import { ComparePage } from './pages/ComparePage.js';
import { EvalPage } from './pages/EvalPage.js';
import { EvalsPage } from './pages/EvalsPage.js';
import { LeaderboardPage } from './pages/LeaderboardPage.js';
import { ModelsPage } from './pages/ModelsPage.js';
import { RunPage } from './pages/RunPage.js';
import { RunsPage } from './pages/RunsPage.js';

/**
 * Every page of the app: its path pattern (`:param` segments), its label in the navigation (none =
 * not in the navigation), and what it renders. Pages register here; App.tsx only reads this table.
 */

export const routes: Route[] = [
  { pattern: '/', label: 'Compare', render: () => <ComparePage /> },
  { pattern: '/battle', label: 'Battle', render: () => <BattlePage /> },
  { pattern: '/leaderboard', label: 'Leaderboard', render: () => <LeaderboardPage /> },
  { pattern: '/evals', label: 'Evaluations', render: () => <EvalsPage /> },
  { pattern: '/runs', label: 'History', render: () => <RunsPage /> },
  { pattern: '/models', label: 'Models', render: () => <ModelsPage /> },
  { pattern: '/runs/:id', render: (params) => <RunPage id={params.id!} /> },
  { pattern: '/evals/:id', render: (params) => <EvalPage id={params.id!} /> },
];
// The admin pages keep their own table; they follow the others in the navigation.
routes.push(...adminRoutes);

export function matchRoute(path: string): { route: Route; params: Record<string, string> } | undefined {
  const parts = path.replace(/\/+$/, '').split('/');
  for (const route of routes) {
    const pattern = route.pattern.replace(/\/+$/, '').split('/');
    if (pattern.length !== parts.length) continue;
    const params: Record<string, string> = {};
    if (pattern.every((p, i) => (p.startsWith(':') ? ((params[p.slice(1)] = decodeURIComponent(parts[i]!)), true) : p === parts[i]))) {
      return { route, params };
    }
  }
  return undefined;
}
