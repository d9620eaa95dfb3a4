/**
 * A TCP proxy in front of a sidecar that can lose answers: in `lose` mode it forwards the request,
 * lets the server handle it, and, as soon as the server starts its answer (an HTTP/2 HEADERS frame
 * on a stream), resets the caller's connection instead of forwarding it. The caller then sees
 * UNAVAILABLE for a call the server did (and committed): an unknown outcome. In `down` mode nothing
 * gets through (a closed connection: the request never reaches the server).
 */
import { connect, createServer } from "node:net";
import type { Server, Socket } from "node:net";

export type ProxyMode = "pass" | "lose" | "down";

const FRAME_HEADER = 9;
const HEADERS = 0x1;

export class LossyProxy {
  private current: ProxyMode = "pass";
  /** Answers lost so far (one per call whose answer was dropped). */
  lost = 0;
  /** In `lose` mode, lose only this many answers, then pass (Infinity: all). */
  loseLimit = Infinity;
  address = "";
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  get mode(): ProxyMode {
    return this.current;
  }

  /** `down` also cuts the connections already open, as a service going away does. */
  set mode(mode: ProxyMode) {
    this.current = mode;
    if (mode === "down") {
      this.sockets.forEach((socket) => socket.destroy());
    }
  }

  static async start(target: string): Promise<LossyProxy> {
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    const proxy = new LossyProxy({ host, port });
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    const bound = proxy.server.address();
    proxy.address = `127.0.0.1:${typeof bound === "object" && bound ? bound.port : 0}`;
    return proxy;
  }

  async close(): Promise<void> {
    this.sockets.forEach((socket) => socket.destroy());
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => undefined);
    if (this.mode === "down") {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(upstream);
    upstream.on("close", () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.on("data", (chunk: Buffer) => upstream.write(chunk));
    // The server's bytes, frame by frame: connection frames (stream 0) pass, an answer may be lost.
    let pending = Buffer.alloc(0);
    upstream.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= FRAME_HEADER) {
        const size = FRAME_HEADER + pending.readUIntBE(0, 3);
        if (pending.length < size) {
          break;
        }
        const frame = pending.subarray(0, size);
        pending = pending.subarray(size);
        const stream = frame.readUInt32BE(5) & 0x7fffffff;
        if (this.mode === "lose" && frame[3] === HEADERS && stream !== 0 && this.lost < this.loseLimit) {
          this.lost += 1;
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        client.write(frame);
      }
    });
  }
}
