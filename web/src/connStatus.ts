// The connection banner (top right): live / connecting / offline, and when the server closed
// the connection, what it said. A close for good ('closed') offers a click to reconnect.
import type { Connection, ConnState, ServerClose } from './connection'
import { Close } from './types.gen'

const LABEL: Record<ConnState, string> = {
  connecting: 'Connecting…', connected: 'Live', offline: 'Offline — edits will sync', denied: 'No access', closed: 'Disconnected',
}

/** Labels for the closes a person can act on. */
const CLOSE_LABEL: Record<number, string> = {
  [Close.POLICY]: 'Disconnected: a limit was crossed',
  [Close.TOO_BIG]: 'Disconnected: a message was too large',
  [Close.TOO_SLOW]: 'Reconnecting: the connection fell behind',
  [Close.ROOM_FULL]: 'Room full: it takes no more edits',
  [Close.UNAVAILABLE]: "The server can't save right now — retrying",
}

/** A link revoked or expired while its page was open: the server closes with 4401 and one of
 * these reasons (`common/lapses.py` REVOKED, EXPIRED); the page says it in so many words. */
const LAPSED: Record<string, string> = { 'this link was revoked': 'Link revoked', 'this link expired': 'Link expired' }

/** The banner's label for a close that says this page's link lapsed, else null. */
export const lapsed = (close?: ServerClose | null): string | null =>
  (close && close.code === Close.BAD_TOKEN && LAPSED[close.reason]) || null

export function mountConnStatus(el: HTMLElement, conn: Connection) {
  const label = el.querySelector<HTMLElement>('.label')!
  const reason = document.createElement('span')
  reason.className = 'reason'
  reason.dataset.testid = 'connection-reason'
  el.append(reason)

  const show = (s: ConnState, detail?: string, close?: ServerClose) => {
    el.dataset.state = s
    el.dataset.code = close ? String(close.code) : ''
    const text = s !== 'connected' && close ? lapsed(close) ?? CLOSE_LABEL[close.code] ?? LABEL[s] : LABEL[s]
    label.textContent = text
    reason.textContent = s !== 'connected' && detail ? detail : ''
    reason.hidden = !reason.textContent
    el.title = s === 'closed' ? `${text}: ${detail ?? ''} (click to reconnect)` : detail ? `${text}: ${detail}` : text
  }
  el.addEventListener('click', () => conn.reconnect())
  conn.on('state', ({ state, detail, close }) => show(state, detail, close))
  show(conn.state(), undefined, conn.lastClose() ?? undefined)
  return { show }
}
