// Guest-side event channels, as a PV kernel's Xen layer writes them: each EVTCHNOP's
// struct goes into the guest's own memory at a scratch address and the hypercall gets a
// pointer; the 2-level bits are read and written in the guest's mapping of shared_info.
// Layer: guests (imports only hypervisor/public/).

import * as E from '../../hypervisor/public/event-channel.ts';
import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import { DOMID_SELF, HYPERVISOR_event_channel_op, SHARED_INFO, VCPU_INFO } from '../../hypervisor/public/xen.ts';

/** A hypercall's result and, when it succeeded, the port it returned. */
export interface PortResult {
  rc: number;
  port: number;
}

function op(v: GuestVcpu, cmd: number, buf: number): number {
  return v.hypercall(HYPERVISOR_event_channel_op, cmd, buf);
}

/** Fills a struct at buf: zeroes, then 32-bit words (u16 pairs already packed). */
function put(v: GuestVcpu, buf: number, size: number, words: readonly number[]): void {
  v.write(buf, new Uint8Array(size));
  words.forEach((w, i) => v.store32(buf + i * 4, w));
}

/** The port field at `offset` after a successful bind, else -1. */
function portAt(v: GuestVcpu, buf: number, offset: number, rc: number): PortResult {
  return { rc, port: rc === 0 ? v.load32(buf + offset) : -1 };
}

/** EVTCHNOP_alloc_unbound: a port of `dom` for `remoteDom` to bind. */
export function evtchnAllocUnbound(v: GuestVcpu, buf: number, remoteDom: number, dom = DOMID_SELF): PortResult {
  const F = E.EVTCHN_ALLOC_UNBOUND.fields;
  put(v, buf, E.EVTCHN_ALLOC_UNBOUND.size, []);
  v.store16(buf + F.dom.offset, dom);
  v.store16(buf + F.remote_dom.offset, remoteDom);
  return portAt(v, buf, F.port.offset, op(v, E.EVTCHNOP_alloc_unbound, buf));
}

/** EVTCHNOP_bind_interdomain: a new local port connected to remoteDom's remotePort. */
export function evtchnBindInterdomain(v: GuestVcpu, buf: number, remoteDom: number, remotePort: number): PortResult {
  const F = E.EVTCHN_BIND_INTERDOMAIN.fields;
  put(v, buf, E.EVTCHN_BIND_INTERDOMAIN.size, []);
  v.store16(buf + F.remote_dom.offset, remoteDom);
  v.store32(buf + F.remote_port.offset, remotePort);
  return portAt(v, buf, F.local_port.offset, op(v, E.EVTCHNOP_bind_interdomain, buf));
}

export function evtchnBindVirq(v: GuestVcpu, buf: number, virq: number, vcpu = 0): PortResult {
  put(v, buf, E.EVTCHN_BIND_VIRQ.size, [virq, vcpu]);
  return portAt(v, buf, E.EVTCHN_BIND_VIRQ.fields.port.offset, op(v, E.EVTCHNOP_bind_virq, buf));
}

export function evtchnBindPirq(v: GuestVcpu, buf: number, pirq: number, flags = 0): PortResult {
  put(v, buf, E.EVTCHN_BIND_PIRQ.size, [pirq, flags]);
  return portAt(v, buf, E.EVTCHN_BIND_PIRQ.fields.port.offset, op(v, E.EVTCHNOP_bind_pirq, buf));
}

export function evtchnBindIpi(v: GuestVcpu, buf: number, vcpu = 0): PortResult {
  put(v, buf, E.EVTCHN_BIND_IPI.size, [vcpu]);
  return portAt(v, buf, E.EVTCHN_BIND_IPI.fields.port.offset, op(v, E.EVTCHNOP_bind_ipi, buf));
}

export function evtchnClose(v: GuestVcpu, buf: number, port: number): number {
  put(v, buf, E.EVTCHN_CLOSE.size, [port]);
  return op(v, E.EVTCHNOP_close, buf);
}

export function evtchnSend(v: GuestVcpu, buf: number, port: number): number {
  put(v, buf, E.EVTCHN_SEND.size, [port]);
  return op(v, E.EVTCHNOP_send, buf);
}

export function evtchnBindVcpu(v: GuestVcpu, buf: number, port: number, vcpu: number): number {
  put(v, buf, E.EVTCHN_BIND_VCPU.size, [port, vcpu]);
  return op(v, E.EVTCHNOP_bind_vcpu, buf);
}

export function evtchnUnmask(v: GuestVcpu, buf: number, port: number): number {
  put(v, buf, E.EVTCHN_UNMASK.size, [port]);
  return op(v, E.EVTCHNOP_unmask, buf);
}

export function evtchnReset(v: GuestVcpu, buf: number, dom = DOMID_SELF): number {
  v.store16(buf + E.EVTCHN_RESET.fields.dom.offset, dom);
  return op(v, E.EVTCHNOP_reset, buf);
}

/** What EVTCHNOP_status reports; the union fields as raw words. */
export interface EvtchnStatus {
  rc: number;
  status: number;
  vcpu: number;
  /** u.unbound.dom or u.interdomain.dom. */
  dom: number;
  /** u.interdomain.port. */
  port: number;
  /** u.virq or u.pirq. */
  virq: number;
}

export function evtchnStatus(v: GuestVcpu, buf: number, port: number, dom = DOMID_SELF): EvtchnStatus {
  const F = E.EVTCHN_STATUS.fields;
  put(v, buf, E.EVTCHN_STATUS.size, []);
  v.store16(buf + F.dom.offset, dom);
  v.store32(buf + F.port.offset, port);
  const rc = op(v, E.EVTCHNOP_status, buf);
  return {
    rc,
    status: v.load32(buf + F.status.offset),
    vcpu: v.load32(buf + F.vcpu.offset),
    dom: v.load16(buf + F['u.unbound.dom'].offset),
    port: v.load32(buf + F['u.interdomain.port'].offset),
    virq: v.load32(buf + F['u.virq'].offset),
  };
}

// ---- the 2-level bits, in the guest's mapping of shared_info at `si` -----------------

const PENDING = SHARED_INFO.fields.evtchn_pending.offset;
const MASK = SHARED_INFO.fields.evtchn_mask.offset;

function bitAt(v: GuestVcpu, va: number, port: number): boolean {
  return (v.load8(va + (port >>> 3)) & (1 << (port & 7))) !== 0;
}

function setBitAt(v: GuestVcpu, va: number, port: number, on: boolean): void {
  const at = va + (port >>> 3);
  const b = v.load8(at);
  v.store8(at, on ? b | (1 << (port & 7)) : b & ~(1 << (port & 7)));
}

export function evtchnIsPending(v: GuestVcpu, si: number, port: number): boolean {
  return bitAt(v, si + PENDING, port);
}

export function evtchnIsMasked(v: GuestVcpu, si: number, port: number): boolean {
  return bitAt(v, si + MASK, port);
}

/** The guest masks or unmasks a port itself (unmasking this way does not re-check pending). */
export function evtchnSetMask(v: GuestVcpu, si: number, port: number, masked: boolean): void {
  setBitAt(v, si + MASK, port, masked);
}

export function evtchnClearPending(v: GuestVcpu, si: number, port: number): void {
  setBitAt(v, si + PENDING, port, false);
}

function vcpuInfo(si: number, vcpu: number): number {
  return si + SHARED_INFO.fields.vcpu_info.offset + vcpu * VCPU_INFO.size;
}

export function upcallPending(v: GuestVcpu, si: number, vcpu: number): number {
  return v.load8(vcpuInfo(si, vcpu) + VCPU_INFO.fields.evtchn_upcall_pending.offset);
}

export function upcallMask(v: GuestVcpu, si: number, vcpu: number): number {
  return v.load8(vcpuInfo(si, vcpu) + VCPU_INFO.fields.evtchn_upcall_mask.offset);
}

export function setUpcallPending(v: GuestVcpu, si: number, vcpu: number, value: number): void {
  v.store8(vcpuInfo(si, vcpu) + VCPU_INFO.fields.evtchn_upcall_pending.offset, value);
}

export function setUpcallMask(v: GuestVcpu, si: number, vcpu: number, value: number): void {
  v.store8(vcpuInfo(si, vcpu) + VCPU_INFO.fields.evtchn_upcall_mask.offset, value);
}

/** Whether selector bit `word` (= port >> 6) is set in vCPU `vcpu`'s evtchn_pending_sel. */
export function pendingSelBit(v: GuestVcpu, si: number, vcpu: number, word: number): boolean {
  return bitAt(v, vcpuInfo(si, vcpu) + VCPU_INFO.fields.evtchn_pending_sel.offset, word);
}

/** The guest takes its selector word (Linux's xchg(&pending_sel, 0)). */
export function clearPendingSel(v: GuestVcpu, si: number, vcpu: number): void {
  v.store64(vcpuInfo(si, vcpu) + VCPU_INFO.fields.evtchn_pending_sel.offset, 0, 0);
}
