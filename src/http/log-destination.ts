import { pino } from 'pino';

/** Bytes of log lines that go out in one write, at most (a line longer than this goes out alone). */
const BATCH_BYTES = 32 * 1024;
/** A line waits at most this long to be written. */
const FLUSH_MS = 1000;
/** The most bytes one UTF-16 code unit of a string takes in UTF-8. */
const MAX_UTF8_BYTES_PER_UNIT = 3;

/** sonic-boom in buffer mode, as used here. */
interface BufferDestination {
  write(data: Buffer): boolean;
  flush(done?: (error?: Error) => void): void;
  flushSync(): void;
}

/**
 * Where the server's logs go by default: stdout, written asynchronously by pino's own destination
 * (sonic-boom), in writes of at most 32 KiB and at least once a second. Each write is a hand-off to a
 * thread and back, which per line would be a share of the gateway's CPU under load.
 *
 * Each line is encoded into the batch's buffer as it comes, outside the JavaScript heap, and the
 * string is dropped at once. Lines kept as strings until their batch is written outlived the heap's
 * young generation under load, and copying them at every collection cost more than encoding them
 * (bench/RESULTS.md, Gateway overhead). sonic-boom's own buffer would keep them as one growing string
 * and measure its whole UTF-8 length at every line.
 */
export class BatchedLogDestination {
  private batch = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  /** Writes each batch as it is given; pino has it write what it holds when the process exits. */
  private readonly out: BufferDestination;

  /** `dest`: a file descriptor (stdout's by default) or a file's path. */
  constructor(dest: number | string = 1) {
    // In buffer mode sonic-boom takes Buffers, which its types do not say.
    this.out = pino.destination({ dest, sync: false, contentMode: 'buffer' }) as unknown as BufferDestination;
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
    const most = line.length * MAX_UTF8_BYTES_PER_UNIT;
    if (this.used + most > BATCH_BYTES) {
      this.release();
      if (most > BATCH_BYTES) return void this.out.write(Buffer.from(line, 'utf8'));
    }
    this.used += this.batch.write(line, this.used, 'utf8');
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

  /** Hands the batch to sonic-boom, which writes it when the write before it is done; the next batch gets a buffer of its own. */
  private release(): void {
    if (this.used === 0) return;
    this.out.write(this.batch.subarray(0, this.used));
    this.batch = Buffer.allocUnsafe(BATCH_BYTES);
    this.used = 0;
  }
}

let stdout: BatchedLogDestination | undefined;

/** The one destination of this process's stdout, shared by every server it builds. */
export function stdoutLog(): BatchedLogDestination {
  return (stdout ??= new BatchedLogDestination());
}
