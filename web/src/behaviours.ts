// Behaviours in the chat panel: the programs the agent left running in the room, one card each
// (name, triggers, status, firing count, last result), with pause/resume/remove, and on demand
// the recent firings, each of which can be undone.
//
// The list is one `GET /behaviours` for all cards: on load, when a chat line or a stroke from a
// behaviour arrives (at most once per LIST_GAP_MS), and every POLL_MS while one is active (its
// firings count changes without any chat line). A card's firings (`GET /behaviours/{id}`) are
// fetched when its "Firings" section is opened, and again when its count changes while open.
import type { PageConfig } from './config'
import type { BehaviourSummary, Every, Firing } from './types.gen'
import { getBehaviour, listBehaviours, removeBehaviour, setBehaviour, undoFiring, type Refusal } from './api'

const LIST_GAP_MS = 1000
const POLL_MS = 2000

const STATUS_LABEL: Record<BehaviourSummary['status'], string> = { active: 'Active', paused: 'Paused', stopped: 'Stopped', failed: 'Failed' }

interface Card {
  el: HTMLElement
  summary: BehaviourSummary
  firings: Firing[] | null
  /** The firings count the shown firings were fetched for. */
  fetchedAt: number
  error: string
}

export interface BehaviourDeps {
  cfg: PageConfig
  el: HTMLElement
  readOnly: () => boolean
}

const triggers = (on: BehaviourSummary['on']) =>
  on.map((t) => (typeof t === 'string' ? t : `every ${(t as Every).every}s`)).join(', ')

const refusalText = (r: Refusal) =>
  r.error || (r.status === 403 ? 'This needs an edit link; yours can only view.' : `The server answered HTTP ${r.status}.`)

export function mountBehaviours({ cfg, el, readOnly }: BehaviourDeps) {
  const cards = new Map<string, Card>()
  const list = document.createElement('div')
  list.className = 'behaviour-list'
  const head = document.createElement('div')
  head.className = 'behaviours-head'
  head.textContent = 'Behaviours'
  el.append(head, list)

  let timer = 0
  let lastList = -Infinity
  let absent = false // this server has no agent (404): stop asking
  let fetching = false
  let again = false // asked while a fetch was on its way: its answer may predate the change

  const scheduleList = (delay = 0) => {
    if (absent) return
    if (fetching) {
      again = true
      return
    }
    if (timer) return
    timer = window.setTimeout(fetchList, Math.max(delay, lastList + LIST_GAP_MS - performance.now()))
  }

  const fetchList = async () => {
    timer = 0
    fetching = true
    lastList = performance.now()
    const r = await listBehaviours(cfg)
    fetching = false
    if (again) {
      again = false
      scheduleList()
    }
    if (!r.ok) {
      absent = r.status === 404
      return
    }
    const seen = new Set<string>()
    for (const s of r.value.behaviours) {
      seen.add(s.id)
      const old = cards.get(s.id)
      const card = old ?? newCard(s)
      const changed = !old || JSON.stringify(old.summary) !== JSON.stringify(s)
      card.summary = s
      if (changed) render(card)
      if (changed && card.firings && s.firings !== card.fetchedAt) loadFirings(card)
    }
    for (const [id, card] of cards) if (!seen.has(id)) { card.el.remove(); cards.delete(id) }
    el.hidden = cards.size === 0
    if (r.value.behaviours.some((s) => s.status === 'active') && document.visibilityState === 'visible') scheduleList(POLL_MS)
  }

  const newCard = (s: BehaviourSummary): Card => {
    const div = document.createElement('div')
    div.className = 'behaviour'
    div.dataset.testid = 'behaviour'
    div.dataset.behaviourId = s.id
    div.innerHTML = `
      <div class="behaviour-head">
        <span class="behaviour-name" data-testid="behaviour-name"></span>
        <span class="behaviour-status" data-testid="behaviour-status"></span>
      </div>
      <div class="behaviour-meta"><span data-testid="behaviour-on"></span> · <span data-testid="behaviour-firings"></span></div>
      <div class="behaviour-anyone" data-testid="behaviour-anyone" hidden
        title="Installed with anyone: true. Without it, what a viewer causes (their prompt in the chat, their joining) fires it read-only.">Anyone, viewers included, can make it draw and erase</div>
      <div class="behaviour-last" data-testid="behaviour-last"></div>
      <div class="behaviour-actions">
        <button data-testid="behaviour-toggle"></button>
        <button data-testid="behaviour-remove" title="Remove this behaviour for good">Remove</button>
      </div>
      <div class="behaviour-error" data-testid="behaviour-error" hidden></div>
      <details data-testid="behaviour-firings-list"><summary>Firings</summary><ol></ol></details>`
    const card: Card = { el: div, summary: s, firings: null, fetchedAt: -1, error: '' }
    const $ = <T extends HTMLElement>(sel: string) => div.querySelector<T>(sel)!
    $<HTMLButtonElement>('[data-testid=behaviour-toggle]').onclick = () =>
      act(card, () => setBehaviour(cfg, card.summary.id, card.summary.status === 'active' ? 'pause' : 'resume'))
    $<HTMLButtonElement>('[data-testid=behaviour-remove]').onclick = () => act(card, () => removeBehaviour(cfg, card.summary.id))
    $('details').addEventListener('toggle', () => { if (div.querySelector('details')!.open) loadFirings(card) })
    cards.set(s.id, card)
    list.append(div)
    return card
  }

  /** A change asked of the server; whatever it answers, the list is fetched again. */
  const act = async (card: Card, request: () => Promise<{ ok: true } | Refusal>) => {
    card.error = ''
    const r = await request()
    if (!r.ok) card.error = refusalText(r)
    render(card)
    scheduleList()
  }

  const loadFirings = async (card: Card) => {
    card.fetchedAt = card.summary.firings
    const r = await getBehaviour(cfg, card.summary.id)
    if (r.ok) card.firings = r.value.firings
    render(card)
  }

  const render = (card: Card) => {
    const s = card.summary
    const $ = <T extends HTMLElement>(sel: string) => card.el.querySelector<T>(sel)!
    card.el.dataset.status = s.status
    $('[data-testid=behaviour-name]').textContent = s.name
    const status = $('[data-testid=behaviour-status]')
    status.textContent = STATUS_LABEL[s.status]
    status.dataset.status = s.status
    status.title = s.reason ?? ''
    $('[data-testid=behaviour-on]').textContent = `on ${triggers(s.on)}`
    $('[data-testid=behaviour-firings]').textContent = `${s.firings} firing${s.firings === 1 ? '' : 's'}`
    $('[data-testid=behaviour-anyone]').hidden = !s.anyone
    const last = s.last
    $('[data-testid=behaviour-last]').textContent = s.reason && s.status !== 'active' ? s.reason
      : last ? (last.ok ? `Last: ${last.type}, drew ${last.drawn}${last.said ? `, said ${last.said}` : ''}` : `Last: failed — ${last.error ?? ''}`) : 'Not fired yet'
    const toggle = $<HTMLButtonElement>('[data-testid=behaviour-toggle]')
    toggle.textContent = s.status === 'active' ? 'Pause' : 'Resume'
    toggle.disabled = readOnly() || s.status === 'stopped'
    $<HTMLButtonElement>('[data-testid=behaviour-remove]').disabled = readOnly()
    const err = $('[data-testid=behaviour-error]')
    err.hidden = !card.error
    err.textContent = card.error
    const ol = $('details ol')
    ol.replaceChildren(...(card.firings ?? []).map((f) => firingEl(card, f)))
  }

  const firingEl = (card: Card, f: Firing) => {
    const li = document.createElement('li')
    li.dataset.testid = 'firing'
    li.dataset.firingId = f.id
    const when = new Date(f.event.t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    const text = document.createElement('span')
    const by = f.event.actor ? ` by ${f.event.actor.name}${f.event.actor.role === 'view' ? ' (viewer)' : ''}` : ''
    const limited = f.grant === 'read' ? ' (read-only)' : ''
    text.textContent = f.ok ? `${when} ${f.event.type}${by}${limited}: drew ${f.writes.drawn.length}`
      : `${when} ${f.event.type}${by}${limited}: ${f.error?.message ?? 'failed'}`
    if (f.read_only) text.title = `Read-only: ${f.read_only}`
    li.append(text)
    if (f.writes.drawn.length) {
      const undo = document.createElement('button')
      undo.dataset.testid = 'firing-undo'
      undo.textContent = f.undone ? 'Undone' : 'Undo'
      undo.disabled = f.undone || readOnly()
      undo.onclick = async () => {
        undo.disabled = true
        const r = await undoFiring(cfg, card.summary.id, f.id)
        if (r.ok) f.undone = true
        else card.error = refusalText(r)
        render(card)
      }
      li.append(undo)
    }
    return li
  }

  el.hidden = true
  scheduleList()
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') scheduleList() })

  return {
    /** Something from a behaviour (or about one) arrived: the list may have changed. */
    refresh: () => scheduleList(),
    renderAll: () => { for (const card of cards.values()) render(card) },
  }
}
