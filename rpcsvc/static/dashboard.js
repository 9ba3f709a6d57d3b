// rpcsvc dashboard: polls POST /rpc with one JSON-RPC batch every REFRESH_MS.
// Everything shown comes from the same methods any client calls (service.stats, task.list,
// task.status, task.cancel). Data is put in the page with textContent only, never as HTML.
"use strict";

const REFRESH_MS = 2000;
const LIST_LIMIT = 30;
const RESULT_PREVIEW_CHARS = 20000;
const FINISHED = new Set(["completed", "failed", "cancelled"]);
const TOKEN_KEY = "rpcsvc-token";

const state = {
  status: null,          // state filter of the list (a card's data-status)
  type: "",              // type filter of the list
  selected: null,        // task id shown in the detail pane
  detail: null,          // its last record
  token: sessionStorage.getItem(TOKEN_KEY),
  timer: null,
  knownTypes: "",
};

const $ = (selector, root = document) => root.querySelector(selector);

class AuthError extends Error {}

async function rpcBatch(calls) {
  const body = calls.map(([method, params], id) => ({ jsonrpc: "2.0", id, method, params }));
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch("/rpc", { method: "POST", headers, body: JSON.stringify(body) });
  if (response.status === 401) throw new AuthError("token refused");
  const answers = await response.json();
  if (!Array.isArray(answers)) throw new Error(answers.error ? answers.error.message : "bad answer");
  const byId = new Map(answers.map((a) => [a.id, a]));
  return calls.map((_, id) => byId.get(id));
}

function unwrap(answer) {
  if (!answer) throw new Error("no answer");
  if (answer.error) throw new Error(`${answer.error.message} (${answer.error.code})`);
  return answer.result;
}

// --- formatting -------------------------------------------------------------------------

function ago(iso) {
  if (!iso) return "–";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

function duration(task) {
  if (!task.started_at) return "–";
  const end = task.finished_at ? Date.parse(task.finished_at) : Date.now();
  const seconds = Math.max(0, (end - Date.parse(task.started_at)) / 1000);
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function timestamp(iso) {
  return iso ? `${new Date(iso).toLocaleString()} (${ago(iso)})` : "–";
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") node.setAttribute("style", value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function badge(status) {
  return el("span", { className: "badge", textContent: status, dataset: { status } });
}

function progressBar(task) {
  const bar = el("div", { className: "bar" });
  const track = el("div", { className: "track" });
  const fill = el("div", { className: "fill" });
  fill.style.setProperty("--c", `var(--${task.status})`);
  let label = "";
  if (task.progress && task.progress.total > 0) {
    const pct = Math.min(100, (100 * task.progress.done) / task.progress.total);
    fill.style.width = `${pct}%`;
    label = `${Math.floor(pct)}%`;
  } else if (task.status === "running") {
    fill.classList.add("indeterminate");
  } else {
    fill.style.width = task.status === "pending" ? "0%" : "100%";
    label = task.status === "completed" ? "100%" : "";
  }
  track.append(fill);
  bar.append(track, el("span", { className: "pct", textContent: label }));
  return bar;
}

// --- rendering --------------------------------------------------------------------------

function renderStats(stats) {
  $("#version").textContent = `v${stats.version}`;
  for (const card of document.querySelectorAll(".card[data-status]")) {
    const status = card.dataset.status;
    $(".count", card).textContent = String(stats.tasks[status] ?? 0);
    card.classList.toggle("active", state.status === status);
  }
  const workers = stats.workers;
  $("#workers-alive").textContent = String(workers.alive);
  $("#workers-configured").textContent = String(workers.configured);
  $("#workers-busy").textContent = String(workers.busy);
  $("#workers-restarts").textContent = String(workers.restarts);
  const pool = $("#workers-pool");
  pool.replaceChildren();
  for (let i = 0; i < workers.configured; i += 1) {
    const className = i >= workers.alive ? "down" : i < workers.busy ? "busy" : "";
    pool.append(el("i", { className }));
  }
  const types = stats.task_types.join(",");
  if (types !== state.knownTypes) {
    state.knownTypes = types;
    const select = $("#type-filter");
    select.replaceChildren(el("option", { value: "", textContent: "All types" }));
    for (const name of stats.task_types) select.append(el("option", { value: name, textContent: name }));
    select.value = state.type;
  }
}

function renderTasks(page) {
  const rows = page.tasks.map((task) =>
    el(
      "tr",
      { dataset: { taskId: task.task_id, status: task.status }, className: task.task_id === state.selected ? "selected" : "" },
      el("td", {}, el("span", { className: "type", textContent: task.type }),
        el("span", { className: "task-id", textContent: task.task_id.slice(0, 8) })),
      el("td", {}, badge(task.status)),
      el("td", {}, el("span", { className: "priority", textContent: task.priority, dataset: { priority: task.priority } })),
      el("td", {}, progressBar(task)),
      el("td", { className: "time", textContent: ago(task.created_at), title: task.created_at }),
      el("td", { className: "num time", textContent: duration(task) }),
    ),
  );
  $("#task-rows").replaceChildren(...rows);
  $("#empty").hidden = rows.length > 0 || Boolean(state.status || state.type);
  const chip = $("#status-filter");
  chip.hidden = !state.status;
  $("#status-filter-text").textContent = state.status ? `${state.status} only` : "";
}

function renderDetail(task) {
  const pane = $("#detail");
  pane.hidden = !task;
  $(".panes").classList.toggle("with-detail", Boolean(task));
  if (!task) return;
  const field = (name) => $(`[data-field="${name}"]`, pane);
  field("type").textContent = task.type;
  const status = field("status");
  status.textContent = task.status;
  status.dataset.status = task.status;
  field("task_id").textContent = task.task_id;
  field("priority").textContent = task.priority;
  field("created_at").textContent = timestamp(task.created_at);
  field("started_at").textContent = timestamp(task.started_at);
  field("finished_at").textContent = timestamp(task.finished_at);
  field("duration").textContent = duration(task);
  const progress = field("progress");
  if (task.progress) {
    const { done, total } = task.progress;
    progress.replaceChildren(`${done.toLocaleString()} of ${total.toLocaleString()}`, progressBar(task));
  } else {
    progress.replaceChildren(task.status === "running" ? progressBar(task) : "–");
  }
  const error = field("error");
  error.hidden = !task.error;
  if (task.error) {
    error.replaceChildren(el("strong", { textContent: task.error.type }), task.error.message);
  }
  $("#cancel-task").hidden = FINISHED.has(task.status);
  $("#cancel-task").disabled = false;
  const report = $("#report-link");
  report.hidden = !(task.type === "generate_report" && task.status === "completed");
  report.href = `/reports/${encodeURIComponent(task.task_id)}`;
  field("params").textContent = JSON.stringify(task.params, null, 2);
  const hasResult = task.status === "completed" && "result" in task;
  field("result-title").hidden = !hasResult;
  field("result").hidden = !hasResult;
  if (hasResult) {
    let text = JSON.stringify(task.result, null, 2);
    if (text.length > RESULT_PREVIEW_CHARS) {
      text = `${text.slice(0, RESULT_PREVIEW_CHARS)}\n… (${text.length.toLocaleString()} characters in all; fetch it with task.status)`;
    }
    field("result").textContent = text;
  }
}

function setConnection(kind, text) {
  $("#connection").dataset.state = kind;
  $("#connection-text").textContent = text;
}

// --- the refresh loop -------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  const listParams = { limit: LIST_LIMIT };
  if (state.status) listParams.status = state.status;
  if (state.type) listParams.type = state.type;
  const calls = [["service.stats", {}], ["task.list", listParams]];
  // A finished task never changes again: fetch its record (and possibly large result) once.
  const selected = state.selected;
  const fetchDetail = selected && !(state.detail && FINISHED.has(state.detail.status));
  if (fetchDetail) calls.push(["task.status", { task_id: selected }]);
  try {
    const answers = await rpcBatch(calls);
    renderStats(unwrap(answers[0]));
    renderTasks(unwrap(answers[1]));
    if (fetchDetail && state.selected === selected) {
      // A task evicted since it was clicked closes its detail rather than the whole page.
      const answer = answers[2];
      state.detail = answer && answer.result ? answer.result : null;
      if (!state.detail) state.selected = null;
    }
    renderDetail(state.selected ? state.detail : null);
    setConnection("live", `Live · updated ${new Date().toLocaleTimeString()}`);
    $("#token-dialog").hidden = true;
  } catch (error) {
    if (error instanceof AuthError) {
      setConnection("auth", "Token needed");
      $("#token-error").hidden = !state.token;
      $("#token-dialog").hidden = false;
      $("#token-input").focus();
      return; // resumes when a token is entered
    }
    setConnection("offline", `Offline · ${error.message} · retrying`);
  }
  if (!document.hidden) state.timer = setTimeout(refresh, REFRESH_MS);
}

function select(taskId) {
  state.selected = taskId;
  state.detail = null;
  refresh();
}

async function cancelSelected() {
  const button = $("#cancel-task");
  button.disabled = true;
  try {
    const [answer] = await rpcBatch([["task.cancel", { task_id: state.selected }]]);
    state.detail = unwrap(answer);
  } catch (error) {
    setConnection("offline", `Cancel failed: ${error.message}`);
  }
  refresh();
}

function wire() {
  for (const card of document.querySelectorAll(".card[data-status]")) {
    card.addEventListener("click", () => {
      state.status = state.status === card.dataset.status ? null : card.dataset.status;
      refresh();
    });
  }
  $("#clear-filter").addEventListener("click", () => { state.status = null; refresh(); });
  $("#type-filter").addEventListener("change", (event) => { state.type = event.target.value; refresh(); });
  $("#task-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-task-id]");
    if (row) select(row.dataset.taskId);
  });
  $("#close-detail").addEventListener("click", () => select(null));
  $("#cancel-task").addEventListener("click", cancelSelected);
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token-input").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    refresh();
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
}

wire();
