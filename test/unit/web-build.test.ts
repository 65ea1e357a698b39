import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/server.js';
import { STAMP_FILE, webBuildIsCurrent, webSourcesHash, writeWebStamp } from '../../src/web-build.js';

/**
 * `npm start` rebuilds the web UI only when its sources changed since the last build: the build records
 * the hash of its sources, and a start compares it with the sources as they are.
 */

function fakeRepo(): string {
  const root = tempDir('web-build-');
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  };
  write('web/src/App.tsx', 'export const App = 1;');
  write('web/index.html', '<div id="root"></div>');
  write('src/shared/names.ts', 'export const a = 1;');
  write('src/core/server-only.ts', 'export const b = 1;');
  write('package-lock.json', '{}');
  write('web/dist/index.html', '<html></html>');
  return root;
}

describe('web UI build stamp', () => {
  it('is current after a build of the same sources, and not once a source, a shared module or the lockfile changes', () => {
    const root = fakeRepo();
    expect(webBuildIsCurrent(root)).toBe(false); // built before stamps existed, or interrupted
    writeWebStamp(webSourcesHash(root), root);
    expect(webBuildIsCurrent(root)).toBe(true);

    for (const [file, text] of [
      ['web/src/App.tsx', 'export const App = 2;'],
      ['src/shared/names.ts', 'export const a = 2;'],
      ['package-lock.json', '{"lockfileVersion":3}'],
      ['web/src/pages/New.tsx', 'export {};'],
    ] as const) {
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), text);
      expect(webBuildIsCurrent(root), file).toBe(false);
      writeWebStamp(webSourcesHash(root), root);
    }
  });

  it('ignores what is not bundled (server-only code, the build output) and file times', () => {
    const root = fakeRepo();
    writeWebStamp(webSourcesHash(root), root);
    fs.writeFileSync(path.join(root, 'src/core/server-only.ts'), 'export const b = 2;');
    fs.writeFileSync(path.join(root, 'web/dist/extra.js'), '1');
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(root, 'web/src/App.tsx'), later, later);
    expect(webBuildIsCurrent(root)).toBe(true);
  });

  it('is not current without the built index.html', () => {
    const root = fakeRepo();
    writeWebStamp(webSourcesHash(root), root);
    fs.rmSync(path.join(root, 'web/dist/index.html'));
    expect(webBuildIsCurrent(root)).toBe(false);
    expect(fs.existsSync(path.join(root, 'web/dist', STAMP_FILE))).toBe(true);
  });
});
