/**
 * node-llama-cpp, imported on first use rather than when the server starts: it is the largest of the
 * server's dependencies (some 300 module files, about a third of all the start loads), so the server
 * listens, and answers, before it is in memory. Every use of its values goes through here; its types
 * are imported as usual, which costs nothing at run time.
 */
type NodeLlamaCpp = typeof import('node-llama-cpp');

let loading: Promise<NodeLlamaCpp> | undefined;

export function llamaCpp(): Promise<NodeLlamaCpp> {
  loading ??= import('node-llama-cpp');
  return loading;
}
