// TCP window tracking (kernel nf_conntrack_proto_tcp.c tcp_in_window, tcp_options, tcp_sack; Guido van Rooij's
// "Real Stateful TCP Packet Filtering"). Per direction: td_end (highest seq+len sent), td_maxend (highest
// ack+window the other side allowed), td_maxwin (largest window), td_scale, flags. A segment is in window when
//   I.   seq <= sender.td_maxend                        II.  seq+len >= sender.td_end - receiver.td_maxwin
//   III. sack <= receiver.td_end                        IV.  sack >= receiver.td_end - MAXACKWINDOW(sender)
// Out-of-window segments are INVALID unless the side is BE_LIBERAL (mid-stream pick-ups). No NAT seq adjustment
// (no helpers here), nf_conntrack_tcp_be_liberal=0 as the kernel's default.
import type { ConntrackTable } from "./conntrack-table.js";
import {
  TCP_LAST_ACK, TCP_LAST_DIR, TCP_LAST_END, TCP_LAST_SEQ, TCP_LAST_WIN, TCP_LAST_WSCALE, TCP_RETRANS, TCP_SIDE, TCP_STRIDE, TD_END, TD_FLAGS,
  TD_MAXACK, TD_MAXEND, TD_MAXWIN, TD_SCALE,
} from "./conntrack-table.js";
import type { TupleScratch } from "./tuple.js";

export const IP_CT_TCP_FLAG_WINDOW_SCALE = 0x01;
export const IP_CT_TCP_FLAG_SACK_PERM = 0x02;
export const IP_CT_TCP_FLAG_CLOSE_INIT = 0x04;
export const IP_CT_TCP_FLAG_BE_LIBERAL = 0x08;
export const IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10;
export const IP_CT_TCP_FLAG_MAXACK_SET = 0x20;

const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_WINDOW = 3;
const TCPOPT_SACK_PERM = 4;
const TCPOPT_SACK = 5;
const TCP_MAX_WSCALE = 14;
const MAXACKWINCONST = 66000;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

// tcpInWindow (per packet) writes the flag bits, MAXACKWINCONST and ct.tcp's layout as literals with their names in comments (V8
// loads a module binding on every use); checked once here.
if (IP_CT_TCP_FLAG_WINDOW_SCALE !== 0x01 || IP_CT_TCP_FLAG_SACK_PERM !== 0x02 || IP_CT_TCP_FLAG_BE_LIBERAL !== 0x08 ||
    IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED !== 0x10 || IP_CT_TCP_FLAG_MAXACK_SET !== 0x20 || MAXACKWINCONST !== 66000 ||
    FIN !== 0x01 || SYN !== 0x02 || RST !== 0x04 || ACK !== 0x10 || TCP_STRIDE !== 24 || TCP_SIDE !== 8 || TD_END !== 0 ||
    TD_MAXEND !== 1 || TD_MAXWIN !== 2 || TD_MAXACK !== 3 || TD_SCALE !== 4 || TD_FLAGS !== 5 || TCP_LAST_DIR !== 7 ||
    TCP_RETRANS !== 14 || TCP_LAST_SEQ !== 16 || TCP_LAST_ACK !== 17 || TCP_LAST_END !== 18 || TCP_LAST_WIN !== 19) {
  throw new Error("netfilter/conntrack-tcp-window.ts: literal flags out of step with their definitions");
}

/** seq1 before seq2 in 32-bit sequence space (kernel before()). */
export function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/** kernel segment_seq_plus_len */
export function segEnd(t: TupleScratch): number {
  const f = t.tcpFlags;
  return (t.seq + (t.l4len - t.doff) + ((f >>> 1) & 1 /* SYN */) + (f & 1 /* FIN */)) >>> 0;
}

/**
 * kernel tcp_options: window scale and SACK-permitted of a SYN, into the direction whose window data is at word
 * `sd` of ct.tcp (flags keep only BE_LIBERAL).
 */
export function tcpOptions(ct: ConntrackTable, sd: number, t: TupleScratch): void {
  let len = t.doff - 20;
  if (len <= 0) return;
  const tcp = ct.tcp;
  tcp[sd + TD_SCALE] = 0;
  tcp[sd + TD_FLAGS]! &= IP_CT_TCP_FLAG_BE_LIBERAL;
  const b = t.buf;
  let p = t.l4off + 20;
  while (len > 0) {
    const op = b[p++]!;
    if (op === TCPOPT_EOL) return;
    if (op === TCPOPT_NOP) {
      len--;
      continue;
    }
    if (len < 2) return;
    const size = b[p++]!;
    if (size < 2 || size > len) return;
    if (op === TCPOPT_SACK_PERM && size === 2) tcp[sd + TD_FLAGS]! |= IP_CT_TCP_FLAG_SACK_PERM;
    else if (op === TCPOPT_WINDOW && size === 3) {
      tcp[sd + TD_SCALE] = Math.min(b[p]!, TCP_MAX_WSCALE);
      tcp[sd + TD_FLAGS]! |= IP_CT_TCP_FLAG_WINDOW_SCALE;
    }
    p += size - 2;
    len -= size;
  }
}

/** Window scale and SACK-permitted options of a segment as last_flags/last_wscale (the IGNORE path's annotation). */
export function tcpOptionsLast(ct: ConntrackTable, i: number, t: TupleScratch): number {
  let len = t.doff - 20;
  let flags = 0;
  const w = i * TCP_STRIDE + TCP_LAST_WSCALE;
  ct.tcp[w] = 0;
  const b = t.buf;
  let p = t.l4off + 20;
  while (len > 0) {
    const op = b[p++]!;
    if (op === TCPOPT_EOL) break;
    if (op === TCPOPT_NOP) {
      len--;
      continue;
    }
    if (len < 2) break;
    const size = b[p++]!;
    if (size < 2 || size > len) break;
    if (op === TCPOPT_SACK_PERM && size === 2) flags |= IP_CT_TCP_FLAG_SACK_PERM;
    else if (op === TCPOPT_WINDOW && size === 3) {
      ct.tcp[w] = Math.min(b[p]!, TCP_MAX_WSCALE);
      flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
    }
    p += size - 2;
    len -= size;
  }
  return flags;
}

/** kernel tcp_sack: the highest right edge of the SACK blocks, or `sack` when there are none. */
function tcpSack(t: TupleScratch, sack: number): number {
  let len = t.doff - 20;
  if (len <= 0) return sack;
  const b = t.buf;
  let p = t.l4off + 20;
  // Fast path: timestamps only (NOP, NOP, TIMESTAMP, 10).
  if (len === 12 && b[p] === 1 && b[p + 1] === 1 && b[p + 2] === 8 && b[p + 3] === 10) return sack;
  while (len > 0) {
    const op = b[p++]!;
    if (op === TCPOPT_EOL) return sack;
    if (op === TCPOPT_NOP) {
      len--;
      continue;
    }
    if (len < 2) return sack;
    const size = b[p++]!;
    if (size < 2 || size > len) return sack;
    if (op === TCPOPT_SACK && size >= 10 && (size - 2) % 8 === 0) {
      for (let k = 0; k < size - 2; k += 8) {
        const edge = ((b[p + k + 4]! << 24) | (b[p + k + 5]! << 16) | (b[p + k + 6]! << 8) | b[p + k + 7]!) >>> 0;
        if (after(edge, sack)) sack = edge;
      }
      return sack;
    }
    p += size - 2;
    len -= size;
  }
  return sack;
}

/** Initialise the direction whose window data is at word `sd` of ct.tcp from a SYN (tcp_new, or a re-opening SYN). */
export function initFromSyn(ct: ConntrackTable, sd: number, t: TupleScratch, end: number): void {
  const tcp = ct.tcp;
  tcp[sd + TD_END] = end;
  tcp[sd + TD_MAXEND] = end;
  tcp[sd + TD_MAXWIN] = t.win === 0 ? 1 : t.win;
  tcpOptions(ct, sd, t);
}

/**
 * kernel tcp_in_window for entry `i`, direction `dir`, tcp_bit_set `index`, TCP state `state`. Updates both sides
 * and the retransmission counters; returns whether the segment is acceptable. ct.tcp offsets as literals: the
 * sender's window data at s + 0..5 (END, MAXEND, MAXWIN, MAXACK, SCALE, FLAGS), the receiver's at r + 0..5, the
 * entry's last-packet annotations at e + 7 (LAST_DIR), 14 (RETRANS), 16..19 (LAST_SEQ, ACK, END, WIN).
 */
export function tcpInWindow(ct: ConntrackTable, i: number, dir: number, index: number, state: number, t: TupleScratch): boolean {
  const tcp = ct.tcp;
  const e = i * 24; // TCP_STRIDE
  const s = e + dir * 8; // TCP_SIDE
  const r = e + (dir ^ 1) * 8;
  const flags = t.tcpFlags;
  let seq = t.seq;
  let ack = t.ack;
  let sack = ack;
  let win = t.win;
  let end = segEnd(t);
  if (tcp[r + 5]! & 0x02 /* IP_CT_TCP_FLAG_SACK_PERM */) sack = tcpSack(t, sack);

  if (tcp[s + 2 /* MAXWIN */] === 0) {
    if (flags & 0x02 /* SYN */) {
      // SYN/ACK answering a SYN, or a SYN from the reply side (simultaneous open).
      initFromSyn(ct, s, t, end);
      if (!(tcp[s + 5]! & 0x01 /* IP_CT_TCP_FLAG_WINDOW_SCALE */ && tcp[r + 5]! & 0x01 /* IP_CT_TCP_FLAG_WINDOW_SCALE */)) {
        tcp[s + 4 /* SCALE */] = 0;
        tcp[r + 4 /* SCALE */] = 0;
      }
      if (!(flags & 0x10 /* ACK */)) return true;
    } else {
      // Mid-connection: its history is lost, use the segment.
      tcp[s /* END */] = end;
      const swin = (win << tcp[s + 4 /* SCALE */]!) >>> 0;
      tcp[s + 2 /* MAXWIN */] = swin === 0 ? 1 : swin;
      tcp[s + 1 /* MAXEND */] = (end + tcp[s + 2]!) >>> 0;
      if (tcp[r + 2 /* MAXWIN */] === 0) {
        tcp[r /* END */] = sack;
        tcp[r + 1 /* MAXEND */] = sack;
      } else if (sack === ((tcp[r]! + 1) >>> 0)) tcp[r] = (tcp[r]! + 1) >>> 0; // keepalive reply
    }
  } else if (((state === 1 && dir === 0) || (state === 2 && dir === 1)) && after(end, tcp[s /* END */]!)) {
    // SYN_SENT (original) / SYN_RECV (reply): a reinitialised connection with higher sequence numbers (RFC 793).
    initFromSyn(ct, s, t, end);
  }

  if (!(flags & 0x10 /* ACK */)) ack = sack = tcp[r /* END */]!;
  else if ((flags & (0x10 /* ACK */ | 0x04 /* RST */)) === (0x10 /* ACK */ | 0x04 /* RST */) && ack === 0) ack = sack = tcp[r /* END */]!; // broken stacks
  if (flags & 0x04 /* RST */ && seq === 0 && state === 1) seq = end = tcp[s /* END */]!; // RST answering a SYN

  const sEnd = tcp[s /* END */]!;
  const sMaxend = tcp[s + 1 /* MAXEND */]!;
  const sMaxwin = tcp[s + 2 /* MAXWIN */]!;
  const rEnd = tcp[r /* END */]!;
  const rMaxwin = tcp[r + 2 /* MAXWIN */]!;
  const inRecvWin = rMaxwin === 0 || after(end, (sEnd - rMaxwin - 1) >>> 0);
  const maxAckWin = sMaxwin > 66000 /* MAXACKWINCONST */ ? sMaxwin : 66000 /* MAXACKWINCONST */;
  if (before(seq, (sMaxend + 1) >>> 0) && inRecvWin && before(sack, (rEnd + 1) >>> 0) && after(sack, (rEnd - maxAckWin - 1) >>> 0)) {
    if (!(flags & 0x02 /* SYN */)) win = (win << tcp[s + 4 /* SCALE */]!) >>> 0;
    const swin = (win + (sack - ack)) >>> 0;
    if (sMaxwin < swin) tcp[s + 2 /* MAXWIN */] = swin;
    if (after(end, sEnd)) {
      tcp[s /* END */] = end;
      tcp[s + 5 /* FLAGS */]! |= 0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */;
    }
    if (flags & 0x10 /* ACK */) {
      if (!(tcp[s + 5 /* FLAGS */]! & 0x20 /* IP_CT_TCP_FLAG_MAXACK_SET */)) {
        tcp[s + 3 /* MAXACK */] = ack;
        tcp[s + 5 /* FLAGS */]! |= 0x20 /* IP_CT_TCP_FLAG_MAXACK_SET */;
      } else if (after(ack, tcp[s + 3 /* MAXACK */]!)) tcp[s + 3 /* MAXACK */] = ack;
    }
    if (rMaxwin !== 0 && after(end, sMaxend)) tcp[r + 2 /* MAXWIN */] = (rMaxwin + (end - sMaxend)) >>> 0;
    if (after((sack + win) >>> 0, (tcp[r + 1 /* MAXEND */]! - 1) >>> 0)) {
      tcp[r + 1 /* MAXEND */] = (sack + win) >>> 0;
      if (win === 0) tcp[r + 1] = (tcp[r + 1]! + 1) >>> 0;
    }
    if (ack === rEnd) tcp[r + 5 /* FLAGS */]! &= ~0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */;
    if (index === 3 /* TCP_ACK_SET */) {
      if (tcp[e + 7 /* LAST_DIR */] === dir && tcp[e + 16 /* LAST_SEQ */] === seq && tcp[e + 17 /* LAST_ACK */] === ack &&
          tcp[e + 18 /* LAST_END */] === end && tcp[e + 19 /* LAST_WIN */] === t.win) {
        if (tcp[e + 14 /* RETRANS */]! < 255) tcp[e + 14]!++;
      } else {
        tcp[e + 7 /* LAST_DIR */] = dir;
        tcp[e + 16 /* LAST_SEQ */] = seq;
        tcp[e + 17 /* LAST_ACK */] = ack;
        tcp[e + 18 /* LAST_END */] = end;
        tcp[e + 19 /* LAST_WIN */] = t.win;
        tcp[e + 14 /* RETRANS */] = 0;
      }
    }
    return true;
  }
  if (tcp[s + 5 /* FLAGS */]! & 0x08 /* IP_CT_TCP_FLAG_BE_LIBERAL */) return true;
  // Only the sequence check failed and the data might still be acked: remember it so a later ACK is not "over
  // the upper bound" (the segment itself stays INVALID).
  if (!before(seq, (sMaxend + 1) >>> 0)) {
    const overshot = (end - sMaxend + 1) >>> 0;
    if (inRecvWin && after(sack, (rEnd - maxAckWin - 1) >>> 0) && overshot <= rMaxwin && before(sack, (rEnd + 1) >>> 0)) {
      tcp[s /* END */] = end;
      tcp[s + 5 /* FLAGS */]! |= 0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */;
    }
  }
  return false;
}
