// The dashboard's calls to its own daemon: same origin, the session cookie travels by itself,
// and every state-changing call carries the session's CSRF value in X-Deaddrop-CSRF.
let csrf = null;

/** Loads the session; resolves false when this browser is not signed in. */
export async function loadSession() {
  const res = await fetch('/dashboard/session', { credentials: 'same-origin' });
  if (res.status !== 200) return false;
  csrf = (await res.json()).csrf;
  return csrf !== null;
}

async function answer(res) {
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text };
  }
  if (!res.ok) throw Object.assign(new Error(body.message ?? `HTTP ${res.status}`), { code: body.error });
  return body;
}

/** GET a JSON route. */
export async function get(path) {
  return answer(await fetch(path, { credentials: 'same-origin' }));
}

/** POST JSON to a route. */
export async function post(path, body) {
  return answer(await fetch(path, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-deaddrop-csrf': csrf ?? '' },
    body: JSON.stringify(body ?? {}),
  }));
}

/** POST raw bytes (the PayPub upload route). */
export async function upload(path, bytes) {
  return answer(await fetch(path, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/octet-stream', 'x-deaddrop-csrf': csrf ?? '' },
    body: bytes,
  }));
}

/**
 * POST raw bytes with upload progress (fetch reports none): `onSent(sent, total)` follows the
 * browser-to-daemon transfer. Resolves with the JSON answer.
 */
export function uploadWithProgress(path, bytes, onSent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('x-deaddrop-csrf', csrf ?? '');
    xhr.upload.addEventListener('progress', (e) => onSent(e.loaded, e.lengthComputable ? e.total : bytes.byteLength));
    xhr.addEventListener('error', () => reject(new Error('the upload to the daemon failed')));
    xhr.addEventListener('load', () => {
      let body;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = { message: xhr.responseText };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(Object.assign(new Error(body.message ?? `HTTP ${xhr.status}`), { code: body.error }));
    });
    xhr.send(bytes);
  });
}

/** The live event stream; `onEvent` gets each event, reconnecting after a drop. */
export function connectEvents(onEvent, onState) {
  const open = () => {
    const ws = new WebSocket(`ws://${location.host}/events`);
    ws.addEventListener('open', () => onState('live'));
    ws.addEventListener('message', (m) => {
      try {
        onEvent(JSON.parse(m.data));
      } catch {
        // not JSON: ignore
      }
    });
    ws.addEventListener('close', () => {
      onState('reconnecting');
      setTimeout(open, 2000);
    });
  };
  open();
}
