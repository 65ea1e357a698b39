import type net from 'node:net';
import { EVAL_USAGE, EXIT, parseEvalArgs, runEvalCommand, UsageError, type EvalOptions } from './eval.js';
import { SuiteError } from '../arena/evals/suite-error.js';

/**
 * The `ollama-arena` command. `eval` runs an evaluation suite, against --server or against a server
 * started in this process (the same code as `npm start`, on a free local port, closed at the end).
 */

const io = { out: (text: string) => void process.stdout.write(text), err: (text: string) => void process.stderr.write(text), tty: process.stderr.isTTY === true };

async function inProcess(options: EvalOptions): Promise<number> {
  const [{ loadConfig }, { buildServer }, { createBackends }, { pino }] = await Promise.all([
    import('../config.js'),
    import('../app.js'),
    import('../providers/index.js'),
    import('pino'),
  ]);
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env, PORT: '0', HOST: '127.0.0.1' });
  const backends = createBackends(config, pino({ level: config.logLevel }).child({ component: 'backends' }));
  const { app } = await buildServer({ config, backends, logStream: process.stderr });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as net.AddressInfo;
  try {
    // In process the admin token (if the environment sets one) is ours to use.
    return await runEvalCommand({ ...options, token: options.token ?? config.webChatToken }, `http://127.0.0.1:${port}`, io);
  } finally {
    await app.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(EVAL_USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command !== 'eval') {
    io.err(`unknown command '${command}'\n\n${EVAL_USAGE}`);
    return EXIT.usage;
  }
  try {
    const options = parseEvalArgs(args);
    if (options.server) return await runEvalCommand(options, options.server, io);
    return await inProcess(options);
  } catch (error) {
    if (error instanceof UsageError || error instanceof SuiteError) {
      io.err(`error: ${error.message}\n`);
      return EXIT.usage;
    }
    // fetch's "fetch failed" hides the reason (refused, unknown host) in its cause.
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    io.err(`error: ${(error as Error).message}${cause ? ` (${cause})` : ''}\n`);
    return EXIT.usage;
  }
}

process.exitCode = await main(process.argv.slice(2));
