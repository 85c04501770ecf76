// WebsocketProvider setup, connection state and permission signals.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as authProtocol from 'y-protocols/auth'
import type { PageConfig } from './config'

export type ConnState = 'connecting' | 'connected' | 'offline' | 'denied'

export interface Connection {
  provider: WebsocketProvider
  state(): ConnState
  onState(fn: (s: ConnState, detail?: string) => void): void
  /** Fired when the server says this peer may not write (auth PermissionDenied). */
  onDenied(fn: (reason: string) => void): void
}

export function connect(cfg: PageConfig, doc: Y.Doc): Connection {
  const params: Record<string, string> = {}
  if (cfg.token) params.token = cfg.token
  const provider = new WebsocketProvider(cfg.wsBase, cfg.room, doc, { params, disableBc: true })
  let state: ConnState = 'connecting'
  const stateFns: ((s: ConnState, d?: string) => void)[] = []
  const deniedFns: ((r: string) => void)[] = []
  const set = (s: ConnState, d?: string) => {
    if (state === 'denied' && s !== 'connected') return
    state = s
    for (const fn of stateFns) fn(s, d)
  }

  provider.messageHandlers[2] = (_enc: unknown, decoder: decoding.Decoder) => {
    authProtocol.readAuthMessage(decoder, doc, (_y: unknown, reason: string) => {
      console.warn('inhabit: permission denied:', reason)
      for (const fn of deniedFns) fn(reason)
    })
  }
  provider.on('status', ({ status }: { status: string }) => {
    if (status === 'connected') set(provider.synced ? 'connected' : 'connecting')
    else if (status === 'disconnected') set('offline')
    // Reconnect attempts after a lost connection still count as offline.
    else set(provider.wsUnsuccessfulReconnects > 0 ? 'offline' : 'connecting')
  })
  provider.on('sync', (synced: boolean) => { if (synced) set('connected') })
  provider.on('closed' as any, (ev: { code: number; reason: string }) => {
    set('denied', ev?.reason || `closed (${ev?.code})`)
  })
  window.addEventListener('online', () => provider.connect())

  return {
    provider,
    state: () => state,
    onState: (fn) => { stateFns.push(fn) },
    onDenied: (fn) => { deniedFns.push(fn) },
  }
}
