/** Builds dist/ unless it is the build of the current sources; `onBuild` is told before a build starts. */
export function ensureServerBuilt(onBuild?: () => void): Promise<void>;
