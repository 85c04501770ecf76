// Agent run cards in the chat: status, stroke count, code, calls, errors, and "Undo run".
// The record is GET /runs/{id}, polled while the run is queued or running. Undo is
// POST /runs/{id}/undo: the server erases the run's strokes in the document (they vanish here
// through sync) and marks the record undone, so every page and the run history agree.
import type { PageConfig } from './config'
import type { StrokeStore } from './store'
import type { AgentRun, CallRecord } from './types.gen'
import { getRun, undoRun } from './api'

const STATUS_LABEL: Record<AgentRun['status'], string> = { queued: 'Queued', running: 'Running…', done: 'Done', failed: 'Failed' }

const UNDO_REFUSED: Record<number, string> = {
  0: 'Could not reach the server. Try again.',
  403: 'Undo needs an edit link for this room; this link can only view.',
  404: 'The server has no record of this run, so it cannot undo it.',
}

interface Card {
  id: string
  el: HTMLElement
  rec: AgentRun | null
  polls: number
  timer: number
  undo: 'idle' | 'pending' | 'done'
  undoError: string
}

export interface RunCardDeps {
  cfg: PageConfig
  store: StrokeStore
  readOnly: () => boolean
}

export function createRunCards({ cfg, store, readOnly }: RunCardDeps) {
  const cards = new Map<string, Card>()

  /** The card for run `id`, created (and its record fetched) on first use. */
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
      <details class="run-code" data-testid="run-code"><summary>Code</summary><div class="code-list"></div></details>
      <details class="run-calls" data-testid="run-calls"><summary>Calls</summary><ol class="calls-list"></ol></details>
      <div class="run-error" data-testid="run-error" hidden></div>`
    const card: Card = { id, el, rec: null, polls: 0, timer: 0, undo: 'idle', undoError: '' }
    el.querySelector<HTMLButtonElement>('.run-undo')!.onclick = () => undo(card)
    cards.set(id, card)
    poll(id)
    render(card)
    return el
  }

  const undo = async (card: Card) => {
    card.undo = 'pending'
    card.undoError = ''
    render(card)
    const r = await undoRun(cfg, card.id)
    card.undo = r.ok ? 'done' : 'idle'
    card.undoError = r.ok ? '' : UNDO_REFUSED[r.status] ?? `Undo failed (HTTP ${r.status}).`
    render(card)
    if (r.ok) poll(card.id) // fetch the record, now marked undone
  }

  /** Fetch run `id` now, and again later while it is pending (or not found yet). */
  const poll = async (id: string) => {
    const card = cards.get(id)
    if (!card) return
    clearTimeout(card.timer)
    const rec = await getRun(cfg, id)
    if (rec) card.rec = rec
    card.polls++
    render(card)
    const st = card.rec?.status
    const pending = !card.rec ? card.polls < 5 : st === 'queued' || st === 'running'
    if (pending) card.timer = window.setTimeout(() => poll(id), Math.min(4000, 600 + card.polls * 200))
  }

  const render = (card: Card) => {
    const { el, rec } = card
    const $ = <T extends HTMLElement>(sel: string) => el.querySelector<T>(sel)!
    const status = rec?.status ?? 'unknown'
    el.dataset.status = status
    const st = $('.run-status')
    st.dataset.status = status
    st.textContent = rec ? STATUS_LABEL[rec.status] : 'Run'

    const n = store.countRun(card.id)
    $('.run-strokes').textContent = `${n} stroke${n === 1 ? '' : 's'}`
    const undone = card.undo === 'done' || !!rec?.undone
    el.dataset.undone = String(undone)
    const undoBtn = $<HTMLButtonElement>('.run-undo')
    undoBtn.textContent = undone ? 'Undone' : card.undo === 'pending' ? 'Undoing…' : 'Undo run'
    undoBtn.disabled = readOnly() || n === 0 || undone || card.undo === 'pending'
    const undoErr = $('.run-undo-error')
    undoErr.hidden = !card.undoError
    undoErr.textContent = card.undoError

    const code = rec?.code ?? []
    const codeBox = $('.run-code')
    codeBox.hidden = code.length === 0
    $('.run-code summary').textContent = `JavaScript${code.length > 1 ? ` (${code.length} blocks)` : ''}`
    const codeList = $('.code-list')
    if (codeList.childElementCount !== code.length) {
      codeList.replaceChildren(...code.map((c) => {
        const pre = document.createElement('pre')
        pre.textContent = c.replace(/^\s*\n/, '').trimEnd()
        return pre
      }))
    }

    const calls = rec?.calls ?? []
    $('.run-calls').hidden = calls.length === 0
    $('.run-calls summary').textContent = `${calls.length} call${calls.length === 1 ? '' : 's'}`
    const callList = $('.calls-list')
    if (callList.childElementCount !== calls.length) {
      callList.replaceChildren(...calls.map((c) => {
        const li = document.createElement('li')
        li.textContent = describeCall(c)
        return li
      }))
    }

    const errors = rec?.errors ?? []
    const err = $('.run-error')
    err.hidden = errors.length === 0
    err.textContent = errors.join('\n')
  }

  const renderAll = () => { for (const card of cards.values()) render(card) }
  store.on('change', renderAll) // stroke counts

  return {
    card: cardEl,
    /** Re-fetch a run's record (an agent message about it arrived). */
    refresh: (id: string) => { if (cards.has(id)) poll(id) },
    renderAll,
  }
}

/** `canvas.draw({...})  ✗ error`, cut to fit one line of the card. */
function describeCall(c: CallRecord): string {
  let args = c.args == null ? '' : JSON.stringify(c.args).replace(/^\[|\]$/g, '')
  if (args.length > 160) args = args.slice(0, 157) + '…'
  return `${c.name}(${args})${c.error ? `  ✗ ${c.error.slice(0, 120)}` : ''}`
}
