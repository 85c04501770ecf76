// Agent run cards in the chat: status, stroke count, code, calls, errors, and "Undo run".
//
// Requests are per room, not per card: the cards share one `GET /runs` (summaries), fetched
// when a run's messages change (at most once per LIST_GAP_MS) and re-polled only while a shown
// run is queued or running. A run's full record (`GET /runs/{id}`: code and calls) is fetched
// when its card's code or calls are opened. Undo is POST /runs/{id}/undo: the server erases
// the run's strokes in the document (they vanish here through sync) and marks the run undone,
// so every page and the run history agree.
import type { PageConfig } from './config'
import type { StrokeStore } from './store'
import type { AgentRun, CallRecord, RunSummary } from './types.gen'
import { getRun, listRuns, undoRun } from './api'

const STATUS_LABEL: Record<AgentRun['status'], string> = { queued: 'Queued', running: 'Running…', done: 'Done', failed: 'Failed' }

const UNDO_REFUSED: Record<number, string> = {
  0: 'Could not reach the server. Try again.',
  403: 'Undo needs an edit link for this room; this link can only view.',
  404: 'The server has no record of this run, so it cannot undo it.',
}

/** At most one run-list request per this many ms, however fast messages arrive. */
const LIST_GAP_MS = 1000
/** Re-poll interval while a shown run is queued or running. */
const POLL_MS = 1500
/** List fetches in a row that may miss a shown run (it may not be recorded yet) before we stop. */
const MAX_MISSES = 3

interface Card {
  id: string
  el: HTMLElement
  full: AgentRun | null
  /** The summary state (`keyOf`) the full record was last fetched for. */
  fetchedFor: string | null
  undo: 'idle' | 'pending' | 'done'
  undoError: string
}

export interface RunCardDeps {
  cfg: PageConfig
  store: StrokeStore
  readOnly: () => boolean
}

const keyOf = (s: RunSummary | undefined) => (s ? `${s.status}|${s.undone}` : '')
const pending = (s: RunSummary | undefined) => s?.status === 'queued' || s?.status === 'running'

export function createRunCards({ cfg, store, readOnly }: RunCardDeps) {
  const cards = new Map<string, Card>()
  let summaries = new Map<string, RunSummary>()

  // ---- the shared run list ----------------------------------------------------
  let timer = 0
  let lastList = -Infinity
  let misses = 0

  /** Fetch the run list soon: now if the last fetch is LIST_GAP_MS old, else once it is. */
  const scheduleList = (delay = 0) => {
    if (timer) return
    const wait = Math.max(delay, lastList + LIST_GAP_MS - performance.now())
    timer = window.setTimeout(fetchList, wait)
  }

  const fetchList = async () => {
    lastList = performance.now()
    const r = await listRuns(cfg)
    timer = 0
    if (!r.ok) return // no agent on this server (404), or unreachable: the next message retries
    const before = summaries
    summaries = new Map(r.value.runs.map((s) => [s.id, s]))
    for (const card of cards.values()) {
      const s = summaries.get(card.id)
      if (JSON.stringify(s) !== JSON.stringify(before.get(card.id))) render(card)
    }
    const shown = [...cards.keys()]
    const missing = shown.some((id) => !summaries.has(id))
    misses = missing ? misses + 1 : 0
    if (shown.some((id) => pending(summaries.get(id))) || (missing && misses < MAX_MISSES)) scheduleList(POLL_MS)
  }

  // ---- cards --------------------------------------------------------------------

  /** The card for run `id`, created on first use. */
  const cardEl = (id: string): HTMLElement => {
    const existing = cards.get(id)
    if (existing) return existing.el
    const el = document.createElement('div')
    el.className = 'run'
    el.dataset.testid = 'run'
    el.dataset.runId = id
    el.innerHTML = `
      <div class="run-head">
        <span class="run-status" data-testid="run-status" data-status="unknown">…</span>
        <span class="run-strokes" data-testid="run-strokes"></span>
        <button class="run-undo" data-testid="run-undo" title="Erase every stroke this run drew">Undo run</button>
      </div>
      <div class="run-undo-error" data-testid="run-undo-error" hidden></div>
      <details class="run-code" data-testid="run-code"><summary>JavaScript</summary><div class="code-list"></div></details>
      <details class="run-calls" data-testid="run-calls"><summary>Calls</summary><ol class="calls-list"></ol></details>
      <div class="run-error" data-testid="run-error" hidden></div>`
    const card: Card = { id, el, full: null, fetchedFor: null, undo: 'idle', undoError: '' }
    el.querySelector<HTMLButtonElement>('.run-undo')!.onclick = () => undo(card)
    for (const d of el.querySelectorAll('details')) d.addEventListener('toggle', () => { if (d.open) loadFull(card) })
    cards.set(id, card)
    render(card)
    scheduleList()
    return el
  }

  /** Fetch the full record (code, calls) once per state of the run (a failed fetch included). */
  const loadFull = async (card: Card) => {
    const key = keyOf(summaries.get(card.id))
    if (card.fetchedFor === key) return
    card.fetchedFor = key
    card.full = (await getRun(cfg, card.id)) ?? card.full
    render(card)
  }

  const undo = async (card: Card) => {
    card.undo = 'pending'
    card.undoError = ''
    render(card)
    const r = await undoRun(cfg, card.id)
    card.undo = r.ok ? 'done' : 'idle'
    card.undoError = r.ok ? '' : UNDO_REFUSED[r.status] ?? `Undo failed (HTTP ${r.status}).`
    render(card)
    if (r.ok) scheduleList() // the summary, now marked undone
  }

  const render = (card: Card) => {
    const { el } = card
    const s = summaries.get(card.id)
    const $ = <T extends HTMLElement>(sel: string) => el.querySelector<T>(sel)!
    const status = s?.status ?? 'unknown'
    el.dataset.status = status
    const st = $('.run-status')
    st.dataset.status = status
    st.textContent = s ? STATUS_LABEL[s.status] : 'Run'

    const n = store.countRun(card.id)
    $('.run-strokes').textContent = `${n} stroke${n === 1 ? '' : 's'}`
    const undone = card.undo === 'done' || !!s?.undone
    el.dataset.undone = String(undone)
    const undoBtn = $<HTMLButtonElement>('.run-undo')
    undoBtn.textContent = undone ? 'Undone' : card.undo === 'pending' ? 'Undoing…' : 'Undo run'
    undoBtn.disabled = readOnly() || n === 0 || undone || card.undo === 'pending'
    const undoErr = $('.run-undo-error')
    undoErr.hidden = !card.undoError
    undoErr.textContent = card.undoError

    renderDetails(card, s)
    const errors = s?.errors ?? []
    const err = $('.run-error')
    err.hidden = errors.length === 0
    err.textContent = errors.join('\n')
    // An open card of a run that moved on shows stale code: fetch it again.
    if (s && [...el.querySelectorAll('details')].some((d) => d.open)) loadFull(card)
  }

  /** Code and calls: shown once the server knows the run; their contents once fetched. */
  const renderDetails = (card: Card, s: RunSummary | undefined) => {
    const $ = <T extends HTMLElement>(sel: string) => card.el.querySelector<T>(sel)!
    const full = card.full
    const code = full?.code ?? []
    const calls = full?.calls ?? []
    $('.run-code').hidden = !s || (!!full && code.length === 0)
    $('.run-calls').hidden = !s || (!!full && calls.length === 0)
    $('.run-code summary').textContent = full && code.length > 1 ? `JavaScript (${code.length} blocks)` : 'JavaScript'
    // The record keeps every call counted and a sample of them (the first and the last): say so when some are left out.
    const total = full ? Math.max(calls.length, Object.values(full.call_counts ?? {}).reduce((a, b) => a + b, 0)) : 0
    const shown = full && total > calls.length ? ` (the first and last ${calls.length} shown)` : ''
    $('.run-calls summary').textContent = full ? `${total} call${total === 1 ? '' : 's'}${shown}` : 'Calls'
    const codeList = $('.code-list')
    if (codeList.childElementCount !== code.length) {
      codeList.replaceChildren(...code.map((c) => {
        const pre = document.createElement('pre')
        pre.textContent = c.replace(/^\s*\n/, '').trimEnd()
        return pre
      }))
    }
    const callList = $('.calls-list')
    if (callList.childElementCount !== calls.length) {
      callList.replaceChildren(...calls.map((c) => {
        const li = document.createElement('li')
        li.textContent = describeCall(c)
        return li
      }))
    }
  }

  const renderAll = () => { for (const card of cards.values()) render(card) }
  // Stroke counts: only the cards of runs whose strokes changed.
  store.on('runs', (runs) => { for (const id of runs) { const c = cards.get(id); if (c) render(c) } })

  return {
    card: cardEl,
    /** A message about some run arrived: its status may have changed. */
    refresh: () => scheduleList(),
    /** Forget the cards of runs no longer shown in the chat. */
    retain(ids: Set<string>) { for (const id of cards.keys()) if (!ids.has(id)) cards.delete(id) },
    renderAll,
  }
}

/** `canvas.draw({...})  ✗ error`, cut to fit one line of the card. */
function describeCall(c: CallRecord): string {
  let args = c.args == null ? '' : JSON.stringify(c.args).replace(/^\[|\]$/g, '')
  if (args.length > 160) args = args.slice(0, 157) + '…'
  return `${c.name}(${args})${c.error ? `  ✗ ${c.error.slice(0, 120)}` : ''}`
}
