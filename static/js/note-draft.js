// Note drafts: kept in this tab's sessionStorage on every keystroke and saved to the server a few
// seconds after typing stops, so text survives a session that times out (sign in again and the
// draft is restored from the tab and saved again).
(function () {
  "use strict";
  var form = document.getElementById("note-form");
  if (!form || !form.getAttribute("data-autosave-url")) return;
  var title = form.querySelector("[name=title]");
  var text = form.querySelector("[name=text]");
  var status = document.getElementById("autosave-status");
  var key = form.getAttribute("data-draft-key");
  var timer = null;
  var lastSaved = text.defaultValue + "\u0000" + title.defaultValue; // what the server holds

  function keep() {
    try { window.sessionStorage.setItem(key, JSON.stringify({ title: title.value, text: text.value, at: Date.now() })); } catch (e) { /* storage full or disabled: the server copy still works */ }
  }
  function forget() { try { window.sessionStorage.removeItem(key); } catch (e) { /* nothing kept */ } }

  try {
    var kept = JSON.parse(window.sessionStorage.getItem(key) || "null");
    if (kept && kept.text && kept.text !== text.value) {
      text.value = kept.text;
      title.value = kept.title || title.value;
      status.textContent = "Restored text typed before your session ended; saving it now.";
      window.setTimeout(save, 300);
    }
  } catch (e) { /* nothing to restore */ }

  function save() {
    var current = text.value + "\u0000" + title.value;
    if (!text.value.trim() || current === lastSaved) return;
    var body = new FormData(form);
    body.delete("sign");
    status.textContent = "Saving draft…";
    fetch(form.getAttribute("data-autosave-url"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-Autosave": "1", Accept: "application/json" },
    }).then(function (r) {
      var json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (!r.ok || r.redirected || !json) throw new Error("not saved");
      return r.json();
    }).then(function (d) {
      lastSaved = current;
      status.className = "autosave";
      var url = form.getAttribute("data-edit-url-template").replace(/\/0\/edit\/$/, "/" + d.note_id + "/edit/");
      if (form.getAttribute("data-autosave-url") !== url) {
        form.setAttribute("data-autosave-url", url);
        form.setAttribute("action", url);
        forget();
        key = key.replace(/-new$/, "-" + d.note_id);
        window.history.replaceState(null, "", url);
      }
      keep();
      status.textContent = "Draft saved at " + d.saved_at + ".";
      document.dispatchEvent(new CustomEvent("twinportal:server-touched"));
    }).catch(function () {
      status.className = "autosave failed";
      status.textContent = "Not saved to the server (your session may have ended). The text is kept in this tab: ";
      var link = document.createElement("a");
      link.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
      link.textContent = "sign in again";
      status.appendChild(link);
      status.appendChild(document.createTextNode(" and it is restored and saved."));
    });
  }
  function changed() {
    keep();
    status.textContent = "Unsaved changes…";
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(save, 2500);
  }
  text.addEventListener("input", changed);
  title.addEventListener("input", changed);
  // text typed before this script ran (a slow connection) has fired no input event: save it too
  if (status.textContent === "" && (text.value !== text.defaultValue || title.value !== title.defaultValue)) changed();
  form.addEventListener("submit", function () { keep(); });
})();
