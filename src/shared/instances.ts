/**
 * The Arena API's model-instance settings: defaults, documented ranges and the instance id of docs/api-contract.md.
 * Pure code shared by the server (validation) and the browser app (the settings editor), so the
 * two can never disagree about a range or an id.
 */

export const INSTANCE_DEFAULTS = { temperature: 0.7, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: -1, seed: 0 } as const;

export type InstanceSetting = keyof typeof INSTANCE_DEFAULTS;

export const INSTANCE_RANGES: Record<InstanceSetting, { min: number; max: number; integer: boolean }> = {
  temperature: { min: 0.01, max: 2.0, integer: false },
  top_p: { min: 0, max: 1, integer: false },
  top_k: { min: 0, max: 100, integer: true },
  repeat_penalty: { min: 1.0, max: 2.0, integer: false },
  num_predict: { min: -1, max: 4096, integer: true },
  seed: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true },
};

/** The instance id of docs/api-contract.md: `{model}__{temperature}_{top_p}_{top_k}_{repeat_penalty}_{num_predict}_{seed}`. */
export function instanceId(instance: { model: string } & Record<InstanceSetting, number>): string {
  const model = instance.model.replace(/[^A-Za-z0-9]/g, '_');
  const { temperature, top_p, top_k, repeat_penalty, num_predict, seed } = instance;
  return `${model}__${temperature}_${top_p}_${top_k}_${repeat_penalty}_${num_predict}_${seed}`;
}

/**
 * The key of a configuration where the system prompt matters too (the compare page's columns, battle
 * contestants, the leaderboard by configuration): the instance id of docs/api-contract.md, plus a short hash of the system
 * prompt when there is one, so two instances that differ only in it are two configurations.
 */
export function configurationKey(instance: { model: string; system?: string } & Record<InstanceSetting, number>): string {
  const id = instanceId(instance);
  return instance.system ? `${id}__sys_${fnv1a(instance.system)}` : id;
}

/** 32-bit FNV-1a as 8 hex digits: short, stable, the same in Node and the browser (no crypto API needed). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}
