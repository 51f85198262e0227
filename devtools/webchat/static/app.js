// The page: Microsoft Web Chat on this local Direct Line channel, and the "another system" panel.
// Each tab is one user (kept in sessionStorage, so a reload resumes the same conversation).
'use strict';

const DIRECT_LINE = `${location.origin}/v3/directline`;
const NAMES = ['Ada', 'Grace', 'Alan', 'Barbara', 'Dennis', 'Frances', 'Ken', 'Margaret', 'Linus', 'Radia'];

function tabUser() {
  const requested = new URLSearchParams(location.search).get('name');
  let user = JSON.parse(sessionStorage.getItem('user') || 'null');
  if (!user) {
    const suffix = Math.random().toString(16).slice(2, 10);
    // Not "dl_...": Direct Line reserves that prefix for ids it makes up itself.
    user = { id: `user-${suffix}`, name: NAMES[parseInt(suffix.slice(0, 4), 16) % NAMES.length] };
  }
  if (requested) user.name = requested;
  sessionStorage.setItem('user', JSON.stringify(user));
  return user;
}

async function post(url, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  let payload = null;
  try { payload = await response.json(); } catch (_) { /* empty or not JSON */ }
  return { ok: response.ok, status: response.status, payload };
}

// Resume this tab's conversation if the channel still knows it, else open a new one.
async function connect(user, timeZone, locale) {
  const saved = JSON.parse(sessionStorage.getItem('conversation') || 'null');
  if (saved) {
    const check = await fetch(`${DIRECT_LINE}/conversations/${encodeURIComponent(saved.conversationId)}`, {
      headers: { Authorization: `Bearer ${saved.token}` }
    });
    if (check.ok) return { ...saved, resume: true };
  }
  const generated = await post(`${DIRECT_LINE}/tokens/generate`, { user, locale, localTimezone: timeZone });
  if (!generated.ok) throw new Error(`tokens/generate answered ${generated.status}`);
  const conversation = { conversationId: generated.payload.conversationId, token: generated.payload.token };
  sessionStorage.setItem('conversation', JSON.stringify(conversation));
  return { ...conversation, resume: false };
}

function log(text, kind) {
  const item = document.createElement('li');
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = new Date().toLocaleTimeString();
  const body = document.createElement('span');
  body.textContent = text;
  if (kind) body.className = kind;
  item.append(time, body);
  const list = document.getElementById('log');
  list.prepend(item);
}

function describeReceipt(receipt) {
  if (receipt.via === 'queue') {
    return `queued on "${receipt.detail.queue}" as ${receipt.id}; no status from a queue, watch the chat`;
  }
  const detail = receipt.detail && typeof receipt.detail === 'object' ? JSON.stringify(receipt.detail) : receipt.detail;
  return `${receipt.status} from the front door for ${receipt.id}: ${detail || '(empty)'}`;
}

// The front door reports delivery per recipient: follow it until the notification is done.
function summarize(status) {
  if (!status || !status.counts) return JSON.stringify(status);
  const c = status.counts;
  return `${status.state}: ${c.sent} sent, ${c.failed} failed, ${c.gone} gone, ${c.skipped} skipped, ` +
    `${c.pending} pending of ${c.recipients}` + (c.throttledRetries ? `, ${c.throttledRetries} throttled retries` : '') +
    (status.note ? ` (${status.note})` : '');
}

async function followStatus(id) {
  let last = '';
  for (let attempt = 0; attempt < 30; attempt += 1) {
    await new Promise(resolve => setTimeout(resolve, 500));
    const response = await fetch(`/panel/notifications/${encodeURIComponent(id)}`);
    if (response.status === 404) return;
    const receipt = await response.json();
    const line = summarize(receipt.detail);
    if (line !== last) log(`status of ${id}: ${line}`, receipt.accepted ? 'ok' : 'failed');
    last = line;
    if (receipt.detail && receipt.detail.state === 'done') return;
  }
}

function setUpPanel(user) {
  const text = document.getElementById('notification-text');
  const buttons = {
    me: document.getElementById('send-me'),
    everyone: document.getElementById('send-everyone'),
    timer: document.getElementById('run-timer')
  };
  async function send(audience) {
    buttons[audience].disabled = true;
    try {
      const result = await post('/panel/notifications', { audience, userId: user.id, text: text.value });
      if (!result.ok) {
        log(`notification to ${audience} not sent: ${(result.payload && result.payload.error) || result.status}`, 'failed');
        return;
      }
      log(`notification to ${audience}: ${describeReceipt(result.payload)}`, 'ok');
      if (result.payload.via !== 'queue') followStatus(result.payload.id);
    } catch (error) {
      log(`notification to ${audience} not sent: ${error}`, 'failed');
    } finally {
      buttons[audience].disabled = false;
    }
  }
  buttons.me.addEventListener('click', () => send('me'));
  buttons.everyone.addEventListener('click', () => send('everyone'));
  buttons.timer.addEventListener('click', async () => {
    buttons.timer.disabled = true;
    try {
      const result = await post('/panel/timer', {});
      log(result.ok ? `timer run started (host answered ${result.payload.status})`
                    : `timer not run: ${(result.payload && result.payload.error) || result.status}`,
          result.ok ? 'ok' : 'failed');
    } finally {
      buttons.timer.disabled = false;
    }
  });
}

async function main() {
  const user = tabUser();
  const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const locale = navigator.language || 'en-US';
  document.getElementById('who').textContent = `You are ${user.name} (${user.id}), time zone ${timeZone}`;
  setUpPanel(user);
  const session = await connect(user, timeZone, locale);
  const directLine = window.WebChat.createDirectLine({
    domain: DIRECT_LINE,
    token: session.token,
    ...(session.resume ? { conversationId: session.conversationId } : {})
  });
  window.WebChat.renderWebChat(
    {
      directLine,
      userID: user.id,
      username: user.name,
      locale,
      styleOptions: {
        botAvatarInitials: 'PB',
        userAvatarInitials: user.name.slice(0, 2).toUpperCase(),
        hideUploadButton: true
      }
    },
    document.getElementById('webchat')
  );
  document.querySelector('#webchat [data-id="webchat-sendbox-input"]')?.focus();
}

main().catch(error => {
  document.getElementById('who').textContent = `Could not connect: ${error.message}`;
  log(`could not connect: ${error}`, 'failed');
});
