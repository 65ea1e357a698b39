import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/server.js';

/**
 * `npm ci` must install cleanly on every Node release the project says it supports: a dependency that
 * requires a newer Node than the oldest one in `engines` makes npm warn (EBADENGINE) and may break at
 * run time there. Checked against the lockfile, so an upgrade that brings such a package fails here.
 */
describe('the supported Node range', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean; optional?: boolean }>;
  };

  it('starts at the Node this machine kind runs, or lower', () => {
    expect(semver.satisfies(process.version, manifest.engines.node)).toBe(true);
  });

  it('is accepted by every installed package, at its oldest release', () => {
    const oldest = semver.minVersion(manifest.engines.node)!.version;
    const refusing = Object.entries(lock.packages)
      .filter(([name, entry]) => name !== '' && !Array.isArray(entry.engines) && typeof entry.engines?.node === 'string')
      .filter(([, entry]) => !semver.satisfies(oldest, (entry.engines as { node: string }).node, { includePrerelease: true }))
      .map(([name, entry]) => `${name.replace(/^.*node_modules\//, '')} (${(entry.engines as { node: string }).node})`);
    expect(refusing).toEqual([]);
  });
});
