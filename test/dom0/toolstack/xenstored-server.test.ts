// `xensim xenstored` on real Unix sockets: malformed and hostile clients get an error
// reply or lose their connection, never crash the server, and leave other clients alone.

import { expect } from 'chai';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startXenstoredServer, type XenstoredServer } from '../../../dom0/toolstack/xenstored-server.ts';
import * as W from '../../../dom0/xenstore/wire.ts';
import { bytes } from '../../support/xs-harness.ts';

/** A raw client: sends bytes, reads whole messages. */
class Raw {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly sock: Socket) {
    sock.on('data', (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(b: Uint8Array): void {
    this.sock.write(b);
  }

  /** The next message, or null if the server closed the connection first. */
  async next(): Promise<{ type: number; reqId: number; payload: string } | null> {
    for (;;) {
      if (this.buf.length >= 16) {
        const len = this.buf.readUInt32LE(12);
        if (this.buf.length >= 16 + len) {
          const m = { type: this.buf.readUInt32LE(0), reqId: this.buf.readUInt32LE(4), payload: this.buf.subarray(16, 16 + len).toString('latin1').replace(/\0/g, '|') };
          this.buf = this.buf.subarray(16 + len);
          return m;
        }
      }
      if (this.closed) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async req(type: number, payload: string, reqId = 1): Promise<string> {
    this.write(W.encodeMessage(type, reqId, 0, bytes(payload)));
    const m = await this.next();
    if (m === null) return 'closed';
    return m.type === W.XS_ERROR ? `E:${m.payload.replace(/\|$/, '')}` : m.payload;
  }

  /** Resolves once the server has closed the connection. */
  async gone(): Promise<boolean> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
    return true;
  }

  end(): void {
    this.sock.destroy();
  }
}

describe('xensim xenstored on Unix sockets', () => {
  let dir: string;
  let server: XenstoredServer;
  let sock: string;
  let dom3: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xensim-xs-'));
    sock = join(dir, 'xs.sock');
    dom3 = join(dir, 'dom3.sock');
    server = await startXenstoredServer({ socket: sock, domainSockets: [{ domid: 3, path: dom3 }] });
  });

  afterEach(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a header announcing more than 4096 bytes closes that connection; the others keep working', async () => {
    const bad = await Raw.open(sock);
    const good = await Raw.open(sock);
    const hdr = new Uint8Array(16);
    W.writeHeader(hdr, 0, W.XS_WRITE, 1, 0, 4097);
    bad.write(hdr);
    expect(await bad.gone()).to.equal(true);
    expect(await good.req(W.XS_WRITE, '/still|ok')).to.equal('OK|');
    good.end();
  });

  it('missing NULs, unknown types, invalid paths and unknown transactions get error replies on a working connection', async () => {
    const c = await Raw.open(sock);
    expect(await c.req(W.XS_READ, '/tool')).to.equal('E:EINVAL');
    expect(await c.req(99, '/tool|')).to.equal('E:ENOSYS');
    expect(await c.req(W.XS_WRITE, '/a//b|v')).to.equal('E:EINVAL');
    c.write(W.encodeMessage(W.XS_READ, 7, 12345, bytes('/tool|')));
    expect((await c.next())?.payload).to.equal('ENOENT|');
    expect(await c.req(W.XS_READ, '/tool/xenstored|')).to.equal('');
    c.end();
  });

  it('a client that vanishes mid-message costs nothing: its watches and transactions go with it', async () => {
    const c = await Raw.open(dom3);
    expect(await c.req(W.XS_WATCH, '/local/domain/3|t|')).to.equal('OK|');
    await c.next();
    c.write(W.encodeMessage(W.XS_WRITE, 2, 0, bytes('/x|y')).subarray(0, 10));
    c.end();
    const other = await Raw.open(sock);
    expect(await other.req(W.XS_WRITE, '/after|1')).to.equal('OK|');
    for (let i = 0; i < 50 && server.daemon.connections.length > 1; i++) await other.req(W.XS_READ, '/after|');
    expect(server.daemon.connections.length).to.equal(1);
    expect(server.daemon.domains.get(3).watches).to.equal(0);
    other.end();
  });

  it('a client that never reads its replies stalls only itself', async () => {
    const hog = await Raw.open(sock);
    hog.sock.pause();
    const big = W.encodeMessage(W.XS_READ, 1, 0, bytes('/hog|'));
    expect(await (await Raw.open(sock)).req(W.XS_WRITE, `/hog|${'v'.repeat(4000)}`)).to.equal('OK|');
    const burst = Buffer.concat(Array.from({ length: 2000 }, () => Buffer.from(big)));
    hog.write(burst);
    const other = await Raw.open(sock);
    for (let i = 0; i < 20; i++) expect(await other.req(W.XS_WRITE, `/o${i}|v`)).to.equal('OK|');
    hog.end();
    other.end();
  });

  it('a domain socket acts as that unprivileged domain: relative paths, permissions', async () => {
    const tools = await Raw.open(sock);
    expect(await tools.req(W.XS_MKDIR, '/local/domain/3|')).to.equal('OK|');
    expect(await tools.req(W.XS_SET_PERMS, '/local/domain/3|n3|')).to.equal('OK|');
    const g = await Raw.open(dom3);
    expect(await g.req(W.XS_WRITE, 'name|guest')).to.equal('OK|');
    expect(await tools.req(W.XS_READ, '/local/domain/3/name|')).to.equal('guest');
    expect(await g.req(W.XS_WRITE, '/tool/x|1')).to.equal('E:EACCES');
    expect(await g.req(W.XS_INTRODUCE, '5|1|1|')).to.equal('E:EACCES');
    tools.end();
    g.end();
  });

  it('a domain\'s client that pipelines requests without reading has at most 20 outstanding (4.17\'s quota); others are served, and it gets every reply once it reads', async () => {
    const tools = await Raw.open(sock);
    expect(await tools.req(W.XS_MKDIR, '/local/domain/3|')).to.equal('OK|');
    expect(await tools.req(W.XS_SET_PERMS, '/local/domain/3|n3|')).to.equal('OK|');
    expect(await tools.req(W.XS_WRITE, `/local/domain/3/big|${'v'.repeat(4000)}`)).to.equal('OK|');
    const hog = await Raw.open(dom3);
    hog.sock.pause();
    // 4 MB of replies: far more than the socket buffers between server and client hold.
    const n = 1000;
    hog.write(Buffer.concat(Array.from({ length: n }, (_, i) => W.encodeMessage(W.XS_READ, i + 1, 0, bytes('big|')))));
    const conn = server.daemon.connections.find((c) => c.domid === 3 && !c.privileged);
    expect(conn).to.not.equal(undefined);
    // Asking the server (no timers) until the quota holds the connection: 20 replies not
    // yet handed to the kernel, and a request it has not taken.
    for (let i = 0; i < 10_000 && !(conn!.held && conn!.outstanding === 20); i++) await tools.req(W.XS_READ, '/tool|');
    expect(conn!.held).to.equal(true);
    expect(conn!.outstanding).to.equal(20);
    expect(await tools.req(W.XS_CONTROL, 'quota|3|')).to.match(/outstanding *: *20\n/);
    const other = await Raw.open(dom3);
    expect(await other.req(W.XS_GET_DOMAIN_PATH, '3|')).to.equal('/local/domain/3|');
    expect(await tools.req(W.XS_READ, '/local/domain/3/big|')).to.have.length(4000);
    hog.sock.resume();
    for (let i = 1; i <= n; i++) {
      const m = await hog.next();
      expect(m?.reqId).to.equal(i);
      expect(m?.payload).to.have.length(4000);
    }
    expect(conn!.held).to.equal(false);
    let report = '';
    for (let i = 0; i < 100 && !/outstanding *: *0\n/.test(report); i++) report = await tools.req(W.XS_CONTROL, 'quota|3|');
    expect(report).to.match(/outstanding *: *0\n/);
    tools.end();
    other.end();
    hog.end();
  });

  it('close removes the sockets', async () => {
    expect(existsSync(sock)).to.equal(true);
    await server.close();
    expect(existsSync(sock)).to.equal(false);
    expect(existsSync(dom3)).to.equal(false);
    server = await startXenstoredServer({ socket: sock, domainSockets: [] });
  });

  it('refuses to replace a file that is not a socket, and leaves it as it was', async () => {
    const file = join(dir, 'precious');
    writeFileSync(file, 'keep me');
    let err: Error | null = null;
    try {
      await startXenstoredServer({ socket: file, domainSockets: [] });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/not a socket/);
    expect(existsSync(file)).to.equal(true);
  });
});
