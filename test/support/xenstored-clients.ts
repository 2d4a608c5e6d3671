// Connections to a running xenstored, ours or the reference (a RunningXenstored), as the
// differential test opens them: privileged ones on its dom0 socket, and ones acting as
// domain N on N's domain socket once N's home is made afresh as a toolstack makes it;
// and the cleanup that lets scripts run one after another on one server.
// Test support only: imported by test suites, never by simulator code.

import { XS_MKDIR, XS_RELEASE, XS_RM, XS_SET_PERMS } from '../../rings/xenstore.ts';
import type { RunningXenstored } from './xenstored-process.ts';
import { XsWireClient, connectXs, sendExpectingOk } from './xs-wire-client.ts';

export class XenstoredClients {
  private readonly clients: XsWireClient[] = [];
  private admin: XsWireClient | null = null;

  constructor(readonly server: RunningXenstored) {}

  /** A new privileged connection. */
  async dom0(label: string): Promise<XsWireClient> {
    const c = await connectXs(this.server.socket, label);
    this.clients.push(c);
    return c;
  }

  /**
   * A new connection acting as domain `domid` (one the server was started with), after
   * making /local/domain/<domid> afresh, empty and owned by the domain (permissions
   * `n<domid>`), as libxl does. One connection per domain at a time: the reference's
   * domain socket serves its clients one after the other.
   */
  async domU(domid: number, label: string): Promise<XsWireClient> {
    const admin = await this.adminConnection();
    const home = `/local/domain/${domid}`;
    await admin.send(XS_RM, 0, [home, '']);
    await sendExpectingOk(admin, XS_MKDIR, [home, ''], `MKDIR ${home}`);
    await sendExpectingOk(admin, XS_SET_PERMS, [home, `n${domid}`, ''], `SET_PERMS ${home}`);
    const c = await connectXs(this.server.domainSocket(domid), label);
    this.clients.push(c);
    return c;
  }

  /**
   * Removes `paths` and the homes of `domids`, and releases those of `domids` that the
   * server was not started with (a script introduced them itself), so that the next
   * user starts clean. Replies are ignored: most of it is usually not there.
   */
  async cleanUp(paths: readonly string[], domids: readonly number[]): Promise<void> {
    const admin = await this.adminConnection();
    for (const p of paths) await admin.send(XS_RM, 0, [p, '']);
    for (const d of domids) {
      await admin.send(XS_RM, 0, [`/local/domain/${d}`, '']);
      if (!this.server.domains.includes(d)) await admin.send(XS_RELEASE, 0, [String(d), '']);
    }
  }

  /** Closes every connection, then stops the server. */
  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    this.clients.length = 0;
    this.admin = null;
    await this.server.stop();
  }

  private async adminConnection(): Promise<XsWireClient> {
    this.admin ??= await this.dom0(`${this.server.name} admin`);
    return this.admin;
  }
}
