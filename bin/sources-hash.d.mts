/** The hash of every file under `entries` (files or directories, relative to `root`), by path and contents. */
export function sourcesHash(root: string, entries: string[]): string;
