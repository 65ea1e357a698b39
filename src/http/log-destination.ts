import { pino } from 'pino';

/** About this many characters of log lines go out in one write. */
const BATCH_CHARS = 32 * 1024;
/** A line waits at most this long to be written. */
const FLUSH_MS = 1000;

/**
 * Where the server's logs go by default: stdout, written asynchronously by pino's own destination
 * (sonic-boom), in writes of about 32 KiB and at least once a second. Each write is a hand-off to a
 * thread and back, which per line would be a share of the gateway's CPU under load.
 *
 * The lines are gathered here rather than in sonic-boom's own buffer: it appends each line to one
 * growing string and measures that whole string's UTF-8 length at every line, a cost that grows with
 * the batch (at 32 KiB it was about 2% of the gateway's CPU per request). A list of lines joined once
 * per write costs each line the same, whatever the batch.
 */
export class BatchedLogDestination {
  private lines: string[] = [];
  private chars = 0;
  /** Writes each batch as it is given; pino has it write what it holds when the process exits. */
  private readonly out: ReturnType<typeof pino.destination>;

  /** `dest`: a file descriptor (stdout's by default) or a file's path. */
  constructor(dest: number | string = 1) {
    this.out = pino.destination({ dest, sync: false });
    setInterval(() => this.release(), FLUSH_MS).unref();
    // The lines still gathered here are handed over, and written, before the process ends.
    process.once('exit', () => {
      try {
        this.flushSync();
      } catch {
        // Closed already (its last lines written): nothing is left to write.
      }
    });
  }

  write(line: string): void {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= BATCH_CHARS) this.release();
  }

  /** pino's `logger.flush()`: what is gathered is written now. */
  flush(done?: (error?: Error) => void): void {
    this.release();
    this.out.flush(done);
  }

  flushSync(): void {
    this.release();
    this.out.flushSync();
  }

  private release(): void {
    if (this.lines.length === 0) return;
    const batch = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    this.out.write(batch);
  }
}

let stdout: BatchedLogDestination | undefined;

/** The one destination of this process's stdout, shared by every server it builds. */
export function stdoutLog(): BatchedLogDestination {
  return (stdout ??= new BatchedLogDestination());
}
