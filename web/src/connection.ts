// WebsocketProvider setup, connection state and permission signals.
//
// Server closes carry a code and a reason (wire/protocol.py `Close`); the state keeps the last
// one until the next sync, so the page can say why it is offline. Closes after which a
// reconnect would fail the same way stop the retries (the server's NO_RETRY, and 4400-4499).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as authProtocol from 'y-protocols/auth'
import type { PageConfig } from './config'
import { Emitter } from './emitter'
import { Close, NO_RETRY } from './types.gen'

/** 'closed': the server ended the connection for good (see `close`); `reconnect()` tries again. */
export type ConnState = 'connecting' | 'connected' | 'offline' | 'denied' | 'closed'

export interface ServerClose { code: number; reason: string }

export interface ConnEvents {
  state: { state: ConnState; detail?: string; close?: ServerClose }
  /** The server said this peer may not write (auth PermissionDenied). */
  denied: string
}

export interface Connection {
  provider: WebsocketProvider
  state(): ConnState
  /** The server's last close since the last sync, if it said anything. */
  lastClose(): ServerClose | null
  reconnect(): void
  on: Emitter<ConnEvents>['on']
}

/** Closes after which reconnecting fails the same way: the server's NO_RETRY, and 4400-4499. */
const permanent = (code: number) => NO_RETRY.includes(code) || (code >= 4400 && code < 4500)
/** Bad room name, bad token, token for another room: this link has no access. */
const NO_ACCESS: readonly number[] = [Close.BAD_ROOM, Close.BAD_TOKEN, Close.WRONG_ROOM]

export function connect(cfg: PageConfig, doc: Y.Doc): Connection {
  const params: Record<string, string> = {}
  if (cfg.token) params.token = cfg.token
  const provider = new WebsocketProvider(cfg.wsBase, cfg.room, doc, {
    params, disableBc: true, shouldReconnect: (ev: CloseEvent) => !permanent(ev.code),
  })
  const events = new Emitter<ConnEvents>()
  let state: ConnState = 'connecting'
  let close: ServerClose | null = null
  const set = (s: ConnState, detail?: string) => {
    if (state === 'denied' && s !== 'connected') return
    if (s === 'connected') close = null
    state = s
    events.emit('state', { state: s, detail: detail ?? close?.reason, close: close ?? undefined })
  }

  provider.messageHandlers[2] = (_enc: unknown, decoder: decoding.Decoder) => {
    authProtocol.readAuthMessage(decoder, doc, (_y: unknown, reason: string) => {
      console.warn('inhabit: permission denied:', reason)
      events.emit('denied', reason)
    })
  }
  provider.on('connection-close', (ev) => {
    // 1005/1006: no close frame (server gone, network down): nothing to say beyond "offline".
    if (ev && ev.code !== 1000 && ev.code !== 1005 && ev.code !== 1006) {
      close = { code: ev.code, reason: ev.reason.slice(0, 200) }
      console.warn(`inhabit: server closed the connection (${ev.code}): ${ev.reason}`)
    }
  })
  provider.on('status', ({ status }) => {
    if (status === 'connected') set(provider.synced ? 'connected' : 'connecting')
    else if (status === 'disconnected') set('offline')
    // Reconnect attempts after a lost connection still count as offline.
    else set(provider.wsUnsuccessfulReconnects > 0 ? 'offline' : 'connecting')
  })
  provider.on('sync', (synced) => { if (synced) set('connected') })
  provider.on('closed', (ev) => {
    close = { code: ev.code, reason: ev.reason.slice(0, 200) }
    set(NO_ACCESS.includes(ev.code) ? 'denied' : 'closed', ev.reason || `closed (${ev.code})`)
  })
  window.addEventListener('online', () => provider.connect())

  return {
    provider,
    state: () => state,
    lastClose: () => close,
    reconnect: () => { if (state === 'closed') { close = null; set('connecting'); provider.connect() } },
    on: events.on.bind(events),
  }
}
