// The one event mechanism of the page: a tiny typed emitter.
//
//   const events = new Emitter<{ change: void; state: ConnState }>()
//   const off = events.on('state', (s) => ...)   // returns its own unsubscribe
//   events.emit('state', 'connected')
//   events.emit('change')                         // `void` events take no payload
//
// Library emitters (Yjs, y-websocket, awareness) keep their own `.on`; this is for our code.

type Payload<T> = [T] extends [void] ? [] : [T]
type Listener<T> = (...payload: Payload<T>) => void

export class Emitter<Events> {
  private listeners: { [K in keyof Events]?: Set<Listener<Events[K]>> } = {}

  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    const set = (this.listeners[event] ??= new Set())
    set.add(fn)
    return () => { set.delete(fn) }
  }

  emit<K extends keyof Events>(event: K, ...payload: Payload<Events[K]>): void {
    for (const fn of this.listeners[event] ?? []) fn(...payload)
  }
}
