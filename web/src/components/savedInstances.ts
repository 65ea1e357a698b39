import type { InstanceSettings } from './arena-types.js';

/**
 * The compare page's instances, kept in the browser so a reload keeps them, and so the battle page can
 * pit those same configurations against each other.
 */
const STORAGE_KEY = 'ollama-arena-compare-instances';

export function loadInstances(): InstanceSettings[] {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '[]') as unknown;
    return Array.isArray(saved) ? (saved as InstanceSettings[]) : [];
  } catch {
    return [];
  }
}

export function saveInstances(instances: InstanceSettings[]): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(instances));
}
