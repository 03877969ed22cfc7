/**
 * A misbehaving Ollama-protocol server for fault tests and `npm run bench:faults` (never
 * shipped): 127.0.0.1 only, random port. /api/generate answers with an NDJSON stream that never
 * says `done` — `fast`: lines as fast as the socket takes them, `slow`: one line every `intervalMs`.
 * Every stream is bounded (`maxLines`), and ends when the client goes away.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface FaultyServerOptions {
  readonly mode: 'fast' | 'slow';
  /** Text of each streamed line's `response` (default 1 KiB of 'x'). */
  readonly piece?: string;
  readonly intervalMs?: number;
  /** Lines per stream at most (default 1,000,000): the server's own loop is bounded. */
  readonly maxLines?: number;
}

export class FaultyServer {
  /** Lines written per stream, in order of the streams. */
  readonly linesWritten: number[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(options: FaultyServerOptions): Promise<FaultyServer> {
    const ref: { self?: FaultyServer } = {};
    const server = createServer((req, res) => {
      req.resume();
      if (req.url?.startsWith('/api/generate') === true) void ref.self!.stream(res, options);
      else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ version: '0.12.11' }));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    ref.self = new FaultyServer(server, `http://127.0.0.1:${port}`);
    return ref.self;
  }

  private async stream(res: ServerResponse, o: FaultyServerOptions): Promise<void> {
    const index = this.linesWritten.push(0) - 1;
    const line = `${JSON.stringify({ model: 'm', created_at: new Date(0).toISOString(), response: o.piece ?? 'x'.repeat(1024), done: false })}\n`;
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    const max = o.maxLines ?? 1_000_000;
    for (let i = 0; i < max && !res.destroyed && !res.writableEnded; i++) {
      const more = res.write(line);
      this.linesWritten[index] = i + 1;
      if (o.mode === 'slow') await new Promise((r) => setTimeout(r, o.intervalMs ?? 20));
      else if (!more) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    res.end();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
