import crypto from 'node:crypto';
import type { ToolCall, ToolDefinition } from '../domain/chat.js';
import { OptionsError } from './options.js';
import { isRecord } from '../shared/is-record.js';

/**
 * Tool calling across the two wire formats: both take `tools` as `{type: "function", function: {name,
 * description, parameters}}`; Ollama carries a call's arguments as a JSON object, OpenAI as a JSON string.
 * Inside the gateway they are always objects (`ToolCall`).
 */

export function parseTools(value: unknown): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new OptionsError('tools must be an array');
  return value.map((tool, index) => {
    if (!isRecord(tool) || (tool.type !== undefined && tool.type !== 'function') || !isRecord(tool.function)) {
      throw new OptionsError(`tools[${index}] must be {"type": "function", "function": {...}}`);
    }
    const fn = tool.function;
    if (typeof fn.name !== 'string' || fn.name === '') throw new OptionsError(`tools[${index}].function.name is required`);
    if (fn.description !== undefined && typeof fn.description !== 'string') {
      throw new OptionsError(`tools[${index}].function.description must be a string`);
    }
    if (fn.parameters !== undefined && !isRecord(fn.parameters)) {
      throw new OptionsError(`tools[${index}].function.parameters must be a JSON schema object`);
    }
    return {
      type: 'function',
      function: { name: fn.name, description: fn.description as string | undefined, parameters: fn.parameters as Record<string, unknown> | undefined },
    };
  });
}

/**
 * OpenAI's `tool_choice` applied to the tools offered: "none" offers none (the model must answer in
 * text), a named function offers only that one and requires it, "required" requires some call.
 * A requirement is passed on to backends that can enforce it (OpenAI-compatible servers); the
 * embedded engine and Ollama cannot force a call, so there the model may still answer in text.
 */
export function applyToolChoice(choice: unknown, tools: ToolDefinition[] | undefined): { tools?: ToolDefinition[]; toolChoice?: 'required' } {
  if (choice === undefined || choice === null || choice === 'auto') return { tools };
  if (choice === 'none') return {};
  if (choice === 'required') {
    if (!tools?.length) throw new OptionsError('tool_choice "required" needs tools');
    return { tools, toolChoice: 'required' };
  }
  if (isRecord(choice) && choice.type === 'function' && isRecord(choice.function) && typeof choice.function.name === 'string') {
    const name = choice.function.name;
    const named = tools?.filter((tool) => tool.function.name === name);
    if (!named?.length) throw new OptionsError(`tool_choice names function '${name}', which is not among the tools`);
    return { tools: named, toolChoice: 'required' };
  }
  throw new OptionsError('tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}');
}

/** `tool_calls` of an incoming assistant message; `argumentsAs` says which wire format they are in. */
export function parseToolCalls(value: unknown, where: string, argumentsAs: 'object' | 'string'): ToolCall[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new OptionsError(`${where}.tool_calls must be an array`);
  return value.map((call, index) => {
    const at = `${where}.tool_calls[${index}]`;
    if (!isRecord(call) || !isRecord(call.function) || typeof call.function.name !== 'string') {
      throw new OptionsError(`${at} must have a function with a name`);
    }
    let args: unknown = call.function.arguments ?? {};
    if (argumentsAs === 'string' && typeof args === 'string') {
      try {
        args = args.trim() === '' ? {} : JSON.parse(args);
      } catch {
        throw new OptionsError(`${at}.function.arguments must be a JSON string`);
      }
    }
    if (!isRecord(args)) throw new OptionsError(`${at}.function.arguments must be ${argumentsAs === 'string' ? 'a JSON object string' : 'an object'}`);
    return { id: typeof call.id === 'string' ? call.id : undefined, function: { name: call.function.name, arguments: args } };
  });
}

/** Ollama's wire shape: arguments as an object. */
export function ollamaToolCalls(calls: ToolCall[]): { id?: string; function: { index: number; name: string; arguments: Record<string, unknown> } }[] {
  return calls.map((call, index) => ({
    ...(call.id ? { id: call.id } : {}),
    function: { index, name: call.function.name, arguments: call.function.arguments },
  }));
}

/** OpenAI's wire shape: every call has an id and its arguments as a JSON string. */
export function openAiToolCalls(calls: ToolCall[]): { id: string; type: 'function'; function: { name: string; arguments: string } }[] {
  return calls.map((call) => ({
    id: call.id ?? `call_${crypto.randomBytes(12).toString('hex')}`,
    type: 'function',
    function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments) },
  }));
}
