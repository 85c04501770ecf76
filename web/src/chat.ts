// Chat & agent panel: messages list, prompt box, run cards (status, code, calls, undo).
import type * as Y from 'yjs'
import type { PageConfig } from './config'
import type { AgentRun, CallRecord, Message } from './types.gen'
import { isMessage } from './schema'
import { messagesOf, postMessage, runStrokeIds, undoRun } from './ops'
import { getRun, sendPrompt } from './api'
import { initials } from './identity'
import { ROBOT } from './icons'

interface Deps {
  doc: Y.Doc
  cfg: PageConfig
  list: HTMLOListElement
  form: HTMLFormElement
  input: HTMLTextAreaElement
  me: () => { name: string; color: string }
}

const AGENT_RE = /^@agent\b/i
const STATUS_LABEL: Record<AgentRun['status'], string> = { queued: 'Queued', running: 'Running…', done: 'Done', failed: 'Failed' }
const fmtTime = (t: number) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })

export function mountChat(d: Deps) {
  const { doc, list, form, input } = d
  const msgs = messagesOf(doc)
  const runs = new Map<string, { rec: AgentRun | null; card: HTMLElement; timer: number; polls: number }>()
  let readOnly = false

  // ---- run cards --------------------------------------------------------
  const runCard = (id: string): HTMLElement => {
    const existing = runs.get(id)
    if (existing) return existing.card
    const card = document.createElement('div')
    card.className = 'run'
    card.dataset.testid = 'run'
    card.dataset.runId = id
    card.innerHTML = `
      <div class="run-head">
        <span class="run-status" data-testid="run-status" data-status="unknown">…</span>
        <span class="run-strokes" data-testid="run-strokes"></span>
        <button class="run-undo" data-testid="run-undo" title="Erase every stroke this run drew">Undo run</button>
      </div>
      <details class="run-code" data-testid="run-code"><summary>Code</summary><div class="code-list"></div></details>
      <details class="run-calls" data-testid="run-calls"><summary>Calls</summary><ol class="calls-list"></ol></details>
      <div class="run-error" data-testid="run-error" hidden></div>`
    card.querySelector<HTMLButtonElement>('.run-undo')!.onclick = () => {
      const n = undoRun(doc, id)
      card.dataset.undone = String(n)
      updateCard(id)
    }
    const entry = { rec: null as AgentRun | null, card, timer: 0, polls: 0 }
    runs.set(id, entry)
    poll(id)
    updateCard(id)
    return card
  }

  const poll = async (id: string) => {
    const e = runs.get(id)
    if (!e) return
    clearTimeout(e.timer)
    const rec = await getRun(d.cfg, id)
    if (rec) e.rec = rec
    e.polls++
    updateCard(id)
    const st = e.rec?.status
    const pending = !e.rec ? e.polls < 5 : st === 'queued' || st === 'running'
    if (pending) e.timer = window.setTimeout(() => poll(id), Math.min(4000, 600 + e.polls * 200))
  }

  const updateCard = (id: string) => {
    const e = runs.get(id)
    if (!e) return
    const { card, rec } = e
    const status = rec?.status ?? 'unknown'
    const st = card.querySelector<HTMLElement>('.run-status')!
    st.dataset.status = status
    st.textContent = rec ? STATUS_LABEL[rec.status] : 'Run'
    const n = runStrokeIds(doc, id).length
    card.querySelector('.run-strokes')!.textContent = `${n} stroke${n === 1 ? '' : 's'}`
    const undoBtn = card.querySelector<HTMLButtonElement>('.run-undo')!
    undoBtn.disabled = readOnly || n === 0
    const code = rec?.code ?? []
    const codeBox = card.querySelector<HTMLElement>('.run-code')!
    codeBox.hidden = code.length === 0
    codeBox.querySelector('summary')!.textContent = `JavaScript${code.length > 1 ? ` (${code.length} blocks)` : ''}`
    const cl = codeBox.querySelector('.code-list')!
    if (cl.childElementCount !== code.length) {
      cl.replaceChildren(...code.map((c) => { const pre = document.createElement('pre'); pre.textContent = c.replace(/^\s*\n/, '').trimEnd(); return pre }))
    }
    const calls = rec?.calls ?? []
    const callsBox = card.querySelector<HTMLElement>('.run-calls')!
    callsBox.hidden = calls.length === 0
    callsBox.querySelector('summary')!.textContent = `${calls.length} call${calls.length === 1 ? '' : 's'}`
    const ol = callsBox.querySelector('.calls-list')!
    if (ol.childElementCount !== calls.length) {
      ol.replaceChildren(...calls.map((c) => { const li = document.createElement('li'); li.textContent = describeCall(c); return li }))
    }
    const err = card.querySelector<HTMLElement>('.run-error')!
    const errs = rec?.errors ?? []
    err.hidden = errs.length === 0
    err.textContent = errs.join('\n')
    card.dataset.status = status
    if (rec?.undone) card.dataset.undone = 'server'
  }

  // ---- messages ---------------------------------------------------------
  const render = () => {
    const seenRuns = new Set<string>()
    const items: HTMLElement[] = []
    for (const m of msgs.toArray()) {
      if (!isMessage(m)) continue
      items.push(messageEl(m, seenRuns))
    }
    if (items.length === 0) {
      const li = document.createElement('li')
      li.className = 'empty'
      li.innerHTML = `<p>No messages yet.</p><p>Say hi, or try <code>@agent draw a house</code>.</p>`
      items.push(li)
    }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40
    list.replaceChildren(...items)
    if (atBottom) list.scrollTop = list.scrollHeight
  }

  const messageEl = (m: Message, seenRuns: Set<string>) => {
    const li = document.createElement('li')
    const agent = m.kind === 'agent'
    li.className = 'msg' + (agent ? ' agent' : '') + (m.author === d.me().name ? ' mine' : '')
    li.dataset.testid = 'message'
    li.dataset.kind = agent ? 'agent' : 'human'
    if (m.run) li.dataset.run = String(m.run)
    const head = document.createElement('div')
    head.className = 'msg-head'
    const av = document.createElement('span')
    av.className = 'mini-avatar'
    if (agent) av.innerHTML = ROBOT; else av.textContent = initials(m.author)
    const name = document.createElement('span')
    name.className = 'author'
    name.textContent = m.author
    head.append(av, name)
    if (agent) { const b = document.createElement('span'); b.className = 'badge'; b.textContent = 'agent'; head.append(b) }
    if (typeof m.t === 'number') { const t = document.createElement('time'); t.textContent = fmtTime(m.t); head.append(t) }
    const body = document.createElement('div')
    body.className = 'text'
    body.dataset.testid = 'message-text'
    body.textContent = m.text
    li.append(head, body)
    if (m.run && !seenRuns.has(String(m.run))) {
      seenRuns.add(String(m.run))
      li.append(runCard(String(m.run)))
    } else if (m.run && agent) {
      poll(String(m.run)) // an agent update: refresh the run's status
    }
    return li
  }

  msgs.observe(() => render())
  doc.getMap('strokes').observe(() => { for (const id of runs.keys()) updateCard(id) })
  render()

  // ---- prompt box -------------------------------------------------------
  const submit = async () => {
    const text = input.value.trim()
    if (!text) return
    // Viewers may still ask the agent: the server grants such a run read-only access.
    if (readOnly && !AGENT_RE.test(text)) { input.placeholder = 'View only — only @agent questions can be sent'; return }
    input.value = ''
    const author = d.me().name
    if (AGENT_RE.test(text)) {
      form.classList.add('sending')
      try {
        const r = await sendPrompt(d.cfg, { text, author })
        // On success the agent echoes the prompt into 'messages' (with its run id) itself.
        // Without an agent (or a server), the prompt is kept as a plain chat message.
        if (!r.ok && !readOnly) {
          if (![0, 404, 405].includes(r.status)) console.warn('inhabit: prompt endpoint answered', r.status)
          postMessage(doc, { author, kind: 'human', text })
        }
      } finally { form.classList.remove('sending') }
    } else {
      postMessage(doc, { author, kind: 'human', text })
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); submit() })

  return {
    /** Send what is in the prompt box (Enter; see shortcuts.ts). */
    submit,
    setReadOnly(ro: boolean) {
      readOnly = ro
      input.placeholder = ro ? 'View only — ask @agent a question (it may read, not draw)' : 'Chat, or type @agent to ask the agent to draw…'
      for (const id of runs.keys()) updateCard(id)
    },
    refreshRun: (id: string) => poll(id),
  }
}

/** `canvas.draw({...})  ✗ error`, cut to fit one line of the card. */
function describeCall(c: CallRecord): string {
  let args = c.args == null ? '' : JSON.stringify(c.args).replace(/^\[|\]$/g, '')
  if (args.length > 160) args = args.slice(0, 157) + '…'
  return `${c.name}(${args})${c.error ? `  ✗ ${c.error.slice(0, 120)}` : ''}`
}
