/**
 * The dependency rule, checked by `npm test`. The server's floors, from the outside in:
 *   main / server (composition root) → surfaces (HTTP) → core, evals (the product's rules)
 *   → backends (model servers) and store (the database) → domain (the product's vocabulary)
 *   and shared (plain data helpers).
 * An inner floor never imports an outer one, and no module takes part in a cycle, type-only
 * imports included: a cycle is a knot a reader has to untie to understand either end.
 */
export default {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'inner-floors-do-not-import-surfaces',
      comment: 'HTTP is the outermost floor: the rules of the product do not know about routes or replies.',
      severity: 'error',
      from: { path: '^src/(core|evals|backends|store|shared)/' },
      to: { path: '^src/surfaces/' },
    },
    {
      name: 'backends-and-store-do-not-import-the-product',
      comment: 'Model servers and the database are adapters: they know the shapes they speak, not the product rules.',
      severity: 'error',
      from: { path: '^src/(backends|store)/' },
      to: { path: '^src/(core|evals|surfaces|server|main|config)' },
    },
    {
      name: 'shared-and-domain-import-nothing-of-the-server',
      comment: 'src/domain (the product vocabulary) and src/shared (plain data logic) are what the web UI may use too.',
      severity: 'error',
      from: { path: '^src/(shared|domain)/' },
      to: { path: '^src/(?!shared/|domain/)' },
    },
    {
      name: 'web-uses-only-shared',
      comment: 'The browser bundle reaches the server over HTTP only; it may reuse src/domain and src/shared.',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^src/(?!shared/|domain/)' },
    },
    {
      name: 'tests-do-not-import-benchmarks',
      severity: 'error',
      from: { path: '^test/' },
      to: { path: '^bench/' },
    },
    {
      name: 'benchmarks-use-only-test-helpers',
      comment: 'Benchmarks start servers as the tests do, through test/support, and nothing else of test/.',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/(?!support/)' },
    },
    {
      name: 'only-the-composition-root-imports-the-composition-root',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(main\\.ts$|cli/)' },
      to: { path: '^src/(server|main)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
  },
};
