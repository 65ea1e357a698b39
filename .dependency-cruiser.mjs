/**
 * The dependency rule, checked by `npm test` (docs/architecture.md explains the floors):
 *   main, app (composition root), cli → http → arena, access → gateway → providers → domain
 *   store → domain;  shared and domain import nothing of the server;  web → domain, shared
 * An inner floor never imports an outer one, and no module takes part in a cycle, type-only imports
 * included: a cycle is a knot a reader has to untie to understand either end.
 */
export default {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'domain-and-shared-are-the-innermost',
      comment: 'The vocabulary and the plain helpers the browser shares import nothing else of the server.',
      severity: 'error',
      from: { path: '^src/(domain|shared)/' },
      to: { path: '^src/(?!domain/|shared/)' },
    },
    {
      name: 'providers-know-only-the-vocabulary',
      comment: 'Model servers are adapters: the gateway, the product rules, HTTP and the database are not theirs to know.',
      severity: 'error',
      from: { path: '^src/providers/' },
      to: { path: '^src/(gateway|access|arena|http|store|app|main|cli|config)' },
    },
    {
      name: 'store-knows-only-the-vocabulary',
      comment: 'The database layer stores the domain’s shapes; it applies no product rule.',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: '^src/(providers|gateway|access|arena|http|app|main|cli|config)' },
    },
    {
      name: 'gateway-has-no-http-nor-product-rules',
      comment: 'The one generation path: routing, generation, options. Who may call it and what the arena does with it are above it.',
      severity: 'error',
      from: { path: '^src/gateway/' },
      to: { path: '^src/(access|arena|http|app|main|cli)' },
    },
    {
      name: 'access-and-arena-do-not-know-http',
      comment: 'Rules of the product, usable from the CLI as from a route: Fastify stays in http/.',
      severity: 'error',
      from: { path: '^src/(access|arena)/' },
      to: { path: '^src/(http|app|main|cli)' },
    },
    {
      name: 'only-composition-roots-import-them',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(main\\.ts$|cli/)' },
      to: { path: '^src/(app|main)\\.ts$' },
    },
    {
      name: 'web-uses-only-domain-and-shared',
      comment: 'The browser bundle reaches the server over HTTP only; it may reuse the vocabulary and the plain helpers.',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^src/(?!shared/|domain/)' },
    },
    {
      name: 'the-app-never-imports-tests-or-benchmarks',
      severity: 'error',
      from: { path: '^(src|web)/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'tests-do-not-import-benchmarks',
      severity: 'error',
      from: { path: '^test/' },
      to: { path: '^bench/' },
    },
    {
      name: 'benchmarks-use-only-test-support',
      comment: 'Benchmarks start servers as the tests do, through test/support, and nothing else of test/.',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/(?!support/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
  },
};
