// WebsocketProvider setup, connection state and permission signals.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as authProtocol from 'y-protocols/auth'
import type { PageConfig } from './config'
import { Emitter } from './emitter'

export type ConnState = 'connecting' | 'connected' | 'offline' | 'denied'

export interface ConnEvents {
  state: { state: ConnState; detail?: string }
  /** The server said this peer may not write (auth PermissionDenied). */
  denied: string
}

export interface Connection {
  provider: WebsocketProvider
  state(): ConnState
  on: Emitter<ConnEvents>['on']
}

export function connect(cfg: PageConfig, doc: Y.Doc): Connection {
  const params: Record<string, string> = {}
  if (cfg.token) params.token = cfg.token
  const provider = new WebsocketProvider(cfg.wsBase, cfg.room, doc, { params, disableBc: true })
  const events = new Emitter<ConnEvents>()
  let state: ConnState = 'connecting'
  const set = (s: ConnState, detail?: string) => {
    if (state === 'denied' && s !== 'connected') return
    state = s
    events.emit('state', { state: s, detail })
  }

  provider.messageHandlers[2] = (_enc: unknown, decoder: decoding.Decoder) => {
    authProtocol.readAuthMessage(decoder, doc, (_y: unknown, reason: string) => {
      console.warn('inhabit: permission denied:', reason)
      events.emit('denied', reason)
    })
  }
  provider.on('status', ({ status }) => {
    if (status === 'connected') set(provider.synced ? 'connected' : 'connecting')
    else if (status === 'disconnected') set('offline')
    // Reconnect attempts after a lost connection still count as offline.
    else set(provider.wsUnsuccessfulReconnects > 0 ? 'offline' : 'connecting')
  })
  provider.on('sync', (synced) => { if (synced) set('connected') })
  // A permanent close (4400-4499: bad token, wrong room) ends reconnecting.
  provider.on('closed', (ev) => set('denied', ev.reason || `closed (${ev.code})`))
  window.addEventListener('online', () => provider.connect())

  return { provider, state: () => state, on: events.on.bind(events) }
}
